"""Turning the probe timeline into what a drill reports: per-client PoPs, outages, flips, convergence."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


class Probe(Protocol):
    @property
    def t(self) -> float: ...
    @property
    def client(self) -> str: ...
    @property
    def seq(self) -> int: ...
    @property
    def pop(self) -> str | None: ...
    @property
    def rtt_ms(self) -> float | None: ...


@dataclass
class ClientResult:
    name: str
    pop_before: str | None
    pop_after: str | None  # where it settled while the fault was in place
    pop_end: str | None  # where it was at the end of the drill (after restore)
    outage_s: float  # the longest run of lost probes after the fault: first answer after - last answer before
    outage_window: list[float] | None  # [last answer before, first answer after], seconds from the fault
    lost_probes: int  # from the fault to the end of the drill
    flips: int  # PoP changes among answered probes, from the fault to the end
    transient_pops: list[str]
    convergence_s: float | None  # fault -> last change (loss or PoP) before the fault's restore; None if unaffected
    restore_convergence_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Timeline:
    clients: list[ClientResult] = field(default_factory=list)

    @property
    def affected(self) -> list[ClientResult]:
        return [c for c in self.clients if c.convergence_s is not None]

    def convergence(self) -> dict[str, float | None]:
        return stats([c.convergence_s for c in self.affected if c.convergence_s is not None])

    def restore_convergence(self) -> dict[str, float | None]:
        return stats([c.restore_convergence_s for c in self.clients if c.restore_convergence_s is not None])


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0, "n": 0}
    return {"p50": round(percentile(values, 50), 3), "p95": round(percentile(values, 95), 3),
            "max": round(max(values), 3), "n": len(values)}


def _majority(pops: list[str]) -> str | None:
    return Counter(pops).most_common(1)[0][0] if pops else None


def _last_change(probes: list[Probe], settled: str | None) -> float | None:
    """Time of the last probe that was lost or answered by a PoP other than `settled`, or None."""
    last = None
    for p in probes:
        if p.pop is None or p.pop != settled:
            last = p.t
    return last


def analyse(records: Sequence[Probe], clients: list[str], fault_t: float, restore_t: float | None,
            interval: float) -> Timeline:
    """`fault_t`: when the first fault went in; `restore_t`: when it was undone (None: never, in the run)."""
    timeline = Timeline()
    by_client: dict[str, list[Probe]] = {c: [] for c in clients}
    for r in sorted(records, key=lambda r: (r.t, r.seq)):
        if r.client in by_client:
            by_client[r.client].append(r)
    end_fault = restore_t if restore_t is not None else math.inf
    for name, probes in by_client.items():
        before = [p for p in probes if p.t < fault_t]
        during = [p for p in probes if fault_t <= p.t < end_fault]
        after = [p for p in probes if p.t >= end_fault]
        since = during + after
        pop_before = _majority([p.pop for p in before[-40:] if p.pop is not None])
        answered_during = [p.pop for p in during if p.pop is not None]
        pop_after = answered_during[-1] if answered_during else None
        answered_end = [p.pop for p in since if p.pop is not None]
        pop_end = answered_end[-1] if answered_end else None

        lost = sum(1 for p in since if p.pop is None)
        # The longest run of lost probes after the fault.
        outage, window = 0.0, None
        # The last answer before the fault, even when the probes just before it were already lost.
        last_ok = next((p.t for p in reversed(before) if p.pop is not None), None)
        run_start: float | None = None
        for p in since:
            if p.pop is None:
                if run_start is None:
                    run_start = last_ok if last_ok is not None else p.t
            else:
                if run_start is not None:
                    gap = p.t - run_start
                    if gap > outage:
                        outage, window = gap, [round(run_start - fault_t, 3), round(p.t - fault_t, 3)]
                    run_start = None
                last_ok = p.t
        if run_start is not None and since:
            gap = since[-1].t + interval - run_start
            if gap > outage:
                outage, window = gap, [round(run_start - fault_t, 3), None]  # type: ignore[list-item]

        flips = 0
        prev = pop_before
        seen: list[str] = []
        for p in since:
            if p.pop is None:
                continue
            if prev is not None and p.pop != prev:
                flips += 1
            prev = p.pop
            if p.pop not in seen:
                seen.append(p.pop)
        transient = [x for x in seen if x not in (pop_before, pop_after, pop_end)]

        changed = _last_change(during, pop_after)
        convergence = None if changed is None else round(changed - fault_t + interval, 3)
        restored = _last_change(after, pop_end) if after else None
        restore_conv = None if restored is None or restore_t is None else round(restored - restore_t + interval, 3)
        timeline.clients.append(ClientResult(
            name=name, pop_before=pop_before, pop_after=pop_after, pop_end=pop_end, outage_s=round(outage, 3),
            outage_window=window, lost_probes=lost, flips=flips, transient_pops=transient,
            convergence_s=convergence, restore_convergence_s=restore_conv,
        ))
    return timeline
