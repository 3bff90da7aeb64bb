"""From measured backbone RTTs to OSPF interface costs, with hysteresis so jitter does not move paths.

A link's cost is its RTT in tenths of a millisecond plus a small per-hop constant: OSPF then sums RTTs
along each path, so the lowest-latency path wins, and near-ties still favour fewer hops (fewer proxies
and queues). A new cost is applied only when it differs from the one in force by more than a margin,
on several evaluations in a row: one slow probe or a brief spike never moves traffic. One estimate serves
both ends of a link (both probe into it), so both directions always get the same cost: separate
hysteresis per end could leave them on either side of a margin, and requests and responses on
different paths.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

COST_PER_MS = 10  # one cost unit = 0.1 ms of RTT
HOP_COST = 10  # a hop costs as much as 1 ms of RTT
MIN_COST, MAX_COST = 1, 65535  # OSPF's interface cost range
REL_MARGIN = 0.10  # change only when the new cost differs by more than 10% ...
ABS_MARGIN = 10  # ... and by more than 1 ms of RTT (absolute noise of a userspace delay path)
CONFIRMATIONS = 2  # ... on this many evaluations in a row
WINDOW = 24  # samples per link in the median (3 s of both ends' probes at 4/s each)
MIN_SAMPLES = 3  # fewer replies than this in the window: no opinion about the link


def cost_of(rtt_ms: float) -> int:
    """The OSPF cost for a link with this RTT."""
    return max(MIN_COST, min(MAX_COST, HOP_COST + round(rtt_ms * COST_PER_MS)))


def significant(current: int, proposed: int) -> bool:
    """Whether a proposed cost differs enough from the one in force to be worth a path change."""
    diff = abs(proposed - current)
    return diff > ABS_MARGIN and diff > REL_MARGIN * current


@dataclass
class LinkEstimate:
    """One backbone link, probed from both ends: recent RTT samples and the cost decided for it."""

    samples: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    sent: deque[bool] = field(default_factory=lambda: deque(maxlen=WINDOW))  # answered or not, per probe
    applied: int | None = None  # the cost decided for both ends, None for OSPF's default
    pending: int = 0  # evaluations in a row that asked for a change

    def record(self, rtt_ms: float | None) -> None:
        """One probe's outcome: its RTT, or None when no reply came in time."""
        self.sent.append(rtt_ms is not None)
        if rtt_ms is not None:
            self.samples.append(rtt_ms)

    @property
    def rtt_ms(self) -> float | None:
        if len(self.samples) < MIN_SAMPLES:
            return None
        return statistics.median(self.samples)

    @property
    def loss(self) -> float:
        return 0.0 if not self.sent else 1.0 - sum(self.sent) / len(self.sent)

    def decide(self) -> int | None:
        """The cost to apply now, or None to leave things as they are (the hysteresis lives here)."""
        rtt = self.rtt_ms
        if rtt is None:
            self.pending = 0
            return None
        proposed = cost_of(rtt)
        if self.applied is None:
            return proposed
        if not significant(self.applied, proposed):
            self.pending = 0
            return None
        self.pending += 1
        if self.pending < CONFIRMATIONS:
            return None
        self.pending = 0
        return proposed
