"""A stand-in for `anycastlab.probes.watch.watch` until the probes package lands (same signature).

Module-private and minimal: one UDP socket per client, opened inside the client's namespace, sends a
CHAOS TXT id.server query to the anycast address at `rate_hz`; the answer names the PoP. A query with
no answer within `timeout` is a lost probe (pop None). Bounded by `duration_s` and by `stop`.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from dnslib import CLASS, QTYPE, DNSRecord

from ..runtime.netns import entered
from ..runtime.state import RunningLab


@dataclass(frozen=True)
class ProbeRecord:
    t: float  # wall-clock time the query was sent
    client: str
    seq: int
    pop: str | None  # None when lost
    rtt_ms: float | None


def _query(seq: int) -> bytes:
    q = DNSRecord.question("id.server", "TXT", "CH")
    q.header.id = seq & 0xFFFF
    return bytes(q.pack())


def watch(lab: RunningLab, rate_hz: float, duration_s: float, clients: list[str] | None = None,
          stop: threading.Event | None = None, timeout_s: float = 1.0) -> Iterator[ProbeRecord]:
    names = clients if clients is not None else [c.name for c in lab.plan.clients]
    target = (str(lab.plan.topology.anycast.ip), 53)
    socks: dict[str, socket.socket] = {}
    try:
        for name in names:
            with entered(lab.pid(name)):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.setblocking(False)
            socks[name] = sock
        by_fd = {s.fileno(): n for n, s in socks.items()}
        pending: dict[tuple[str, int], tuple[int, float, float]] = {}  # (client, id) -> (seq, wall, mono)
        interval = 1.0 / rate_hz
        start = time.monotonic()
        end = start + duration_s
        seq = 0
        next_send = start
        while True:
            now = time.monotonic()
            stopping = now >= end or (stop is not None and stop.is_set())
            if not stopping and now >= next_send:
                wall = time.time()
                for name, sock in socks.items():
                    try:
                        sock.sendto(_query(seq), target)
                    except OSError:
                        pass  # no route right now: the probe is simply lost
                    pending[(name, seq & 0xFFFF)] = (seq, wall, now)
                seq += 1
                next_send += interval
                if next_send < now:  # fell behind (a slow step): skip rather than burst
                    next_send = now + interval
            for key, (s, wall, sent) in list(pending.items()):
                if now - sent >= timeout_s:
                    del pending[key]
                    yield ProbeRecord(wall, key[0], s, None, None)
            if stopping and not pending:
                return
            ready, _, _ = select.select(list(socks.values()), [], [], max(0.0, min(0.02, next_send - now)))
            for sock in ready:
                name = by_fd[sock.fileno()]
                while True:
                    try:
                        data = sock.recv(2048)
                    except (BlockingIOError, ConnectionRefusedError, OSError):
                        break
                    try:
                        reply = DNSRecord.parse(data)
                    except Exception:  # not a DNS answer: ignore it
                        continue
                    entry = pending.pop((name, reply.header.id), None)
                    if entry is None or not reply.rr or reply.rr[0].rclass != CLASS.CH or \
                            reply.rr[0].rtype != QTYPE.TXT:
                        continue
                    pop = b"".join(reply.rr[0].rdata.data).decode(errors="replace")
                    yield ProbeRecord(entry[1], name, entry[0], pop, (time.monotonic() - entry[2]) * 1000)
    finally:
        for sock in socks.values():
            sock.close()
