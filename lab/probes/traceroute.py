"""The traceroute method: scapy-crafted ICMP echoes with rising TTL, from each client to the anycast address.

Routers on the way answer "time exceeded" (their address names them); the first echo reply marks the end
of the path and its TTL number is the hop count. Which PoP answered cannot be read from the reply's
source (every PoP is the anycast address), so each probe carries an IPv4 Record Route option: routers
record the address of the interface they forward on, and the address recorded just before the first
anycast entry is the last router's egress interface towards the PoP. That link's far end is the PoP.

All TTLs of a client go out at once (one socket pair per client, inside its namespace); at most `window`
clients are in flight, so routers' ICMP rate limits are not hit, and missing hops are asked once more.
"""

from __future__ import annotations

import contextlib
import secrets
import selectors
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from ..plan import Node, client_address
from ..runtime import nsock
from ..runtime.state import RunningLab
from . import packets
from .results import MethodResult

MAX_HOPS = 16


@dataclass
class _Trace:
    client: Node
    ident: int
    tx: socket.socket
    rx: socket.socket
    sent_at: dict[int, float] = field(default_factory=dict)
    hops: dict[int, tuple[str, float]] = field(default_factory=dict)  # ttl -> (address, rtt ms)
    reply: packets.TraceReply | None = None
    reply_rtt: float | None = None
    tries: int = 0

    def wanted(self, max_hops: int) -> list[int]:
        last = self.reply.seq if self.reply else max_hops
        return [t for t in range(1, last + 1) if t not in self.hops and not (self.reply and t == last)]

    def done(self) -> bool:
        return self.reply is not None and not self.wanted(MAX_HOPS)


def measure(lab: RunningLab, clients: list[Node], timeout_s: float = 1.0, tries: int = 2,
            window: int = 32, max_hops: int = MAX_HOPS) -> dict[str, MethodResult]:
    addresses = nsock.AddressMap.of(lab.plan)
    anycast = str(lab.plan.topology.anycast.ip)
    results: dict[str, MethodResult] = {}
    for start in range(0, len(clients), window):
        batch = clients[start:start + window]
        results.update(_batch(lab, batch, anycast, addresses, timeout_s, tries, max_hops))
    return {c.name: results[c.name] for c in clients}


def _batch(lab: RunningLab, clients: list[Node], anycast: str, addresses: nsock.AddressMap,
           timeout_s: float, tries: int, max_hops: int) -> dict[str, MethodResult]:
    sel = selectors.DefaultSelector()
    traces: list[_Trace] = []
    try:
        for client in clients:
            pid = lab.pid(client.name)
            tx = nsock.open_in(pid, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            rx = nsock.icmp_listener_in(pid, (packets.ICMP_ECHO_REPLY, packets.ICMP_DEST_UNREACH,
                                              packets.ICMP_TIME_EXCEEDED))
            trace = _Trace(client, secrets.randbits(16), tx, rx)
            traces.append(trace)
            sel.register(rx, selectors.EVENT_READ, trace)
        for _attempt in range(tries):
            pending = [t for t in traces if not t.done()]
            if not pending:
                break
            # craft everything first (scapy takes about a millisecond a packet), then send in one burst,
            # so that no reply waits behind the crafting of later probes and RTTs stay honest
            burst = [(trace, ttl, packets.traceroute_probe(str(client_address(trace.client)), anycast, ttl,
                                                           trace.ident))
                     for trace in pending for ttl in trace.wanted(max_hops)]
            for trace, ttl, probe in burst:
                trace.sent_at[ttl] = time.time()
                with contextlib.suppress(OSError):  # no route yet: the hop stays unanswered
                    trace.tx.sendto(probe, (anycast, 0))
            nsock.wait_for_replies(sel, timeout_s, lambda: all(t.done() for t in traces),
                                   lambda key: _drain(key.data))
        return {t.client.name: _result(t, anycast, addresses, lab) for t in traces}
    finally:
        sel.close()
        for trace in traces:
            trace.tx.close()
            trace.rx.close()


def _drain(trace: _Trace) -> None:
    for _ in range(256):
        try:
            data, ancillary, _flags, _addr = trace.rx.recvmsg(4096, nsock.ANCILLARY_SPACE)
        except BlockingIOError:
            return
        now = nsock.received_at(ancillary) or time.time()
        reply = packets.parse_trace_reply(data, trace.ident)
        if reply is None or reply.seq not in trace.sent_at:
            continue
        rtt = (now - trace.sent_at[reply.seq]) * 1000
        if reply.kind == "reply":
            if trace.reply is None or reply.seq < trace.reply.seq:
                trace.reply, trace.reply_rtt = reply, rtt
        elif reply.kind == "hop":
            trace.hops.setdefault(reply.seq, (reply.source, rtt))


def _result(trace: _Trace, anycast: str, addresses: nsock.AddressMap, lab: RunningLab) -> MethodResult:
    last = trace.reply.seq if trace.reply else max([0, *trace.hops])
    path: list[dict[str, Any]] = []
    for ttl in range(1, last + 1):
        if trace.reply is not None and ttl == trace.reply.seq:
            path.append({"ttl": ttl, "address": anycast, "node": None, "rtt_ms": _r(trace.reply_rtt)})
        elif ttl in trace.hops:
            address, rtt = trace.hops[ttl]
            path.append({"ttl": ttl, "address": address, "node": addresses.owner.get(address), "rtt_ms": _r(rtt)})
        else:
            path.append({"ttl": ttl, "address": None, "node": None, "rtt_ms": None})
    if trace.reply is None:
        return MethodResult(None, error="the anycast address never answered", detail={"path": path})
    pop, how = _pop_from_record_route(trace.reply.recorded, anycast, addresses, lab)
    if pop is None:
        pop, how = _pop_from_last_hop(path, lab)
    if path:
        path[-1]["node"] = pop
    error = None if pop else "could not tell which PoP answered (Record Route full and last hop ambiguous)"
    return MethodResult(pop, rtt_ms=trace.reply_rtt, hops=trace.reply.seq, error=error,
                        detail={"path": path, "pop_from": how,
                                "routers": [h["node"] or h["address"] or "*" for h in path]})


def _pop_from_record_route(recorded: tuple[str, ...], anycast: str, addresses: nsock.AddressMap,
                           lab: RunningLab) -> tuple[str | None, str | None]:
    if anycast not in recorded:
        return None, None
    position = recorded.index(anycast)
    if position == 0:
        return None, None
    far = addresses.far_end.get(recorded[position - 1])
    if far is not None and lab.plan.nodes[far].role == "pop":
        return far, "record-route"
    return None, None


def _pop_from_last_hop(path: list[dict[str, Any]], lab: RunningLab) -> tuple[str | None, str | None]:
    """Fallback: the last router seen has exactly one PoP neighbour (the topology says which)."""
    routers = [h["node"] for h in path[:-1] if h["node"]]
    if not routers:
        return None, None
    node = lab.plan.nodes[routers[-1]]
    if node.role == "pop":
        return None, None
    pops = {i.peer for i in node.interfaces if lab.plan.nodes[i.peer].role == "pop"}
    return (pops.pop(), "last-hop-neighbour") if len(pops) == 1 else (None, None)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
