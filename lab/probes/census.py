"""The census method, Verfploeter-style: one sweep from one PoP maps every client, with no client agent.

One PoP (the sender) sends each client an ICMP echo request whose source is the anycast address and whose
payload carries a measurement id and the client's index. Each client's kernel answers to the anycast
address, so BGP carries the reply to that client's catchment PoP. Every PoP listens on a raw ICMP socket
that the kernel hands echo replies only (ICMP_FILTER); the PoP whose socket gets a client's reply is that
client's PoP. One sender socket and one listener per PoP make a sweep of 1,000 clients a matter of
milliseconds; clients that did not answer are asked again, up to `tries` sweeps.
"""

from __future__ import annotations

import functools
import secrets
import selectors
import socket
import time

from ..errors import LabError
from ..plan import Node, client_address
from ..runtime import nsock
from ..runtime.state import RunningLab
from . import packets
from .results import MethodResult


def measure(lab: RunningLab, clients: list[Node], timeout_s: float = 1.0, tries: int = 3,
            sender: str | None = None) -> dict[str, MethodResult]:
    plan = lab.plan
    pops = [p.name for p in plan.pops]
    if not pops:
        raise LabError("the lab has no PoP to run a census from")
    senders = [sender] if sender else pops
    if sender is not None and sender not in pops:
        raise LabError(f"census sender {sender!r} is not a PoP (PoPs: {', '.join(pops)})")
    anycast = str(plan.topology.anycast.ip)
    measurement = secrets.randbits(32)
    sel = selectors.DefaultSelector()
    listeners: list[socket.socket] = []
    tx_socks: dict[str, socket.socket] = {}
    found: dict[int, MethodResult] = {}
    sent_at: dict[int, float] = {}
    errors: dict[int, str] = {}
    try:
        for pop in pops:
            sock = nsock.icmp_listener_in(lab.pid(pop), (packets.ICMP_ECHO_REPLY,))
            listeners.append(sock)
            sel.register(sock, selectors.EVENT_READ, pop)
        started = time.perf_counter()
        for attempt in range(tries):
            missing = [i for i in range(len(clients)) if i not in found]
            if not missing:
                break
            origin = senders[attempt % len(senders)]
            tx = tx_socks.get(origin)
            if tx is None:
                tx = nsock.open_in(lab.pid(origin), socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                tx.setblocking(True)
                tx.bind((anycast, 0))
                tx_socks[origin] = tx
            burst = [(i, packets.census_request(measurement, i), str(client_address(clients[i]))) for i in missing]
            for i, request, address in burst:
                sent_at[i] = time.time()
                try:
                    tx.sendto(request, (address, 0))
                except OSError as exc:  # no route from this sender: the next sweep tries another PoP
                    errors[i] = f"send from {origin} failed: {exc}"
            sweep = functools.partial(_drain, measurement=measurement, clients=clients, sent_at=sent_at,
                                      found=found, origin=origin)
            nsock.wait_for_replies(sel, timeout_s, lambda: len(found) == len(clients),
                                   lambda key: sweep(key.fileobj, key.data))  # type: ignore[arg-type]  # noqa: B023
        elapsed = time.perf_counter() - started
        out: dict[str, MethodResult] = {}
        for i, client in enumerate(clients):
            if i in found:
                found[i].detail["sweep_s"] = round(elapsed, 4)
                out[client.name] = found[i]
            else:
                why = errors.get(i, "no echo reply reached any PoP")
                out[client.name] = MethodResult(None, error=f"{why} (after {tries} sweeps)")
        return out
    finally:
        sel.close()
        for sock in [*listeners, *tx_socks.values()]:
            sock.close()


def _drain(sock: socket.socket, pop: str, measurement: int, clients: list[Node], sent_at: dict[int, float],
           found: dict[int, MethodResult], origin: str) -> None:
    for _ in range(4096):  # bounded: at most one socket buffer's worth per wake-up
        try:
            data, ancillary, _flags, _addr = sock.recvmsg(2048, nsock.ANCILLARY_SPACE)
        except BlockingIOError:
            return
        now = nsock.received_at(ancillary) or time.time()
        reply = packets.parse_census_reply(data)
        if reply is None or reply.measurement != measurement or reply.index >= len(clients):
            continue
        expected = str(client_address(clients[reply.index]))
        if reply.source != expected or reply.index in found:
            continue
        found[reply.index] = MethodResult(
            pop, rtt_ms=(now - sent_at[reply.index]) * 1000, hops=packets.hops_from_ttl(reply.ttl),
            detail={"sender": origin})
