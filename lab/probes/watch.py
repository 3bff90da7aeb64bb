"""Continuous mode: every client asks the anycast address who it is, `rate_hz` times a second, for a while.

Each probe is a sequence-numbered DNS CHAOS TXT id.server query (crafted once with scapy, the sequence
number patched into the DNS id) from a UDP socket inside the client's namespace. Each answer, or each
loss (no answer within `timeout_s`), is one record: t (Unix time the probe left), client, seq, pop (None
when lost), rtt_ms. The drill runner reads this timeline to see what clients saw during a failure.

    stop = threading.Event()
    for record in watch(lab, rate_hz=20, duration_s=10, stop=stop):
        ...

Bounded: it sends int(rate_hz * duration_s) probes per client (at least one) and then waits at most
`timeout_s` for the last answers; setting `stop` ends sending at once and likewise waits at most
`timeout_s`. Probes of different clients are spread evenly over each period, so the PoPs see a steady
load rather than bursts.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass

from ..errors import LabError
from ..runtime import nsock
from ..runtime.state import RunningLab
from . import packets
from .probe import resolve_clients

MAX_RATE_HZ = 2000.0
MAX_DURATION_S = 24 * 3600.0
DNS_PORT = 53


@dataclass(frozen=True)
class ProbeRecord:
    t: float
    client: str
    seq: int
    pop: str | None
    rtt_ms: float | None

    def to_json(self) -> dict[str, object]:
        out = asdict(self)
        out["t"] = round(self.t, 6)
        out["rtt_ms"] = None if self.rtt_ms is None else round(self.rtt_ms, 3)
        return out


def check_bounds(rate_hz: float, duration_s: float, timeout_s: float) -> None:
    if not 0 < rate_hz <= MAX_RATE_HZ:
        raise LabError(f"--rate must be above 0 and at most {MAX_RATE_HZ:g} probes a second per client")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise LabError(f"--duration must be above 0 and at most {MAX_DURATION_S:g} s")
    if not 0 < timeout_s <= 10:
        raise LabError("the loss timeout must be above 0 and at most 10 s")


def watch(lab: RunningLab, rate_hz: float, duration_s: float, clients: list[str] | None = None,
          stop: threading.Event | None = None, timeout_s: float = 1.0) -> Generator[ProbeRecord, None, None]:
    check_bounds(rate_hz, duration_s, timeout_s)
    nodes = resolve_clients(lab, clients)
    anycast = (str(lab.plan.topology.anycast.ip), DNS_PORT)
    names = [n.name for n in nodes]
    count = len(nodes)
    per_client = max(1, int(rate_hz * duration_s))
    total = per_client * count
    spacing = 1.0 / (rate_hz * count)
    template = bytearray(packets.dns_identity_query(0, nsid=False))
    socks: list[socket.socket] = []
    sel = selectors.DefaultSelector()
    # (client index, dns id) -> (seq, wall-clock send time, monotonic send time)
    pending: dict[tuple[int, int], tuple[int, float, float]] = {}
    expiry: deque[tuple[float, int, int]] = deque()  # (deadline, client index, dns id), in send order
    try:
        for index, node in enumerate(nodes):
            sock = nsock.udp_in(lab.pid(node.name))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            socks.append(sock)
            sel.register(sock, selectors.EVENT_READ, index)
        sent = 0
        stopping = False
        t0 = time.monotonic()
        hard_end = t0 + per_client / rate_hz + timeout_s + 1.0
        while True:
            now = time.monotonic()
            if not stopping and stop is not None and stop.is_set():
                stopping = True
            while not stopping and sent < total and t0 + sent * spacing <= now:
                index, seq = sent % count, sent // count
                qid = seq & 0xFFFF
                template[0], template[1] = qid >> 8, qid & 0xFF
                mono = time.monotonic()
                pending[(index, qid)] = (seq, time.time(), mono)
                expiry.append((mono + timeout_s, index, qid))
                with contextlib.suppress(OSError):  # a failed send is counted as lost when it times out
                    socks[index].sendto(template, anycast)
                sent += 1
            while expiry and (expiry[0][0] <= now or now >= hard_end):
                _deadline, index, qid = expiry.popleft()
                probe = pending.pop((index, qid), None)
                if probe is not None:
                    yield ProbeRecord(probe[1], names[index], probe[0], None, None)
            if (sent >= total or stopping) and not pending:
                return
            if now >= hard_end:
                return
            wake = hard_end
            if not stopping and sent < total:
                wake = min(wake, t0 + sent * spacing)
            if expiry:
                wake = min(wake, expiry[0][0])
            for key, _ in sel.select(max(0.0, wake - time.monotonic())):
                yield from _drain(key.fileobj, key.data, names, pending)  # type: ignore[arg-type]
    finally:
        sel.close()
        for sock in socks:
            sock.close()


def _drain(sock: socket.socket, index: int, names: list[str],
           pending: dict[tuple[int, int], tuple[int, float, float]]) -> Iterator[ProbeRecord]:
    for _ in range(1024):
        try:
            data, ancillary, _flags, _addr = sock.recvmsg(2048, nsock.ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            continue  # an ICMP error reported on the socket: the probe it concerns times out as lost
        arrived = nsock.received_at(ancillary) or time.time()
        parsed = packets.fast_dns_txt(data)
        if parsed is None:
            continue
        qid, txt = parsed
        probe = pending.pop((index, qid), None)
        if probe is None:
            continue  # a late answer to a probe already counted as lost
        seq, wall, _mono = probe
        yield ProbeRecord(wall, names[index], seq, txt, max(0.0, arrived - wall) * 1000)
