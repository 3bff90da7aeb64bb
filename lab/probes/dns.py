"""The dns method: from each client's namespace, ask the anycast address (or another service address) who it is
(CHAOS + NSID).

One UDP socket per client, opened inside the client's namespace; the scapy-crafted query leaves from all
of them at once and one selector collects the answers. A client that has not answered gets its query
again (up to `tries` times), so a single lost packet does not count as a miss.
"""

from __future__ import annotations

import selectors
import socket
import time

from ..plan import Node
from ..runtime import nsock
from ..runtime.state import RunningLab
from . import packets
from .results import MethodResult

DNS_PORT = 53


def measure(lab: RunningLab, clients: list[Node], timeout_s: float = 1.0, tries: int = 3,
            target: str | None = None) -> dict[str, MethodResult]:
    """Each client's answer from `target` (default: the anycast address; a PoP's unicast address names that
    PoP when it is reachable)."""
    anycast = target or str(lab.plan.topology.anycast.ip)
    socks: dict[str, socket.socket] = {}
    sel = selectors.DefaultSelector()
    results: dict[str, MethodResult] = {}
    sent_at: dict[str, float] = {}
    errors: dict[str, str] = {}
    try:
        for client in clients:
            sock = nsock.udp_in(lab.pid(client.name))
            socks[client.name] = sock
            sel.register(sock, selectors.EVENT_READ, client.name)
        for attempt in range(tries):
            if len(results) == len(clients):
                break
            # craft first, then send in one burst: RTTs must not include scapy's time for later queries
            burst = [(client, packets.dns_identity_query(qid=(index * tries + attempt) & 0xFFFF))
                     for index, client in enumerate(clients) if client.name not in results]
            for client, query in burst:
                sent_at[client.name] = time.time()
                try:
                    socks[client.name].sendto(query, (anycast, DNS_PORT))
                except OSError as exc:  # e.g. no route: note it, try again next round
                    errors[client.name] = f"send failed: {exc}"
            nsock.wait_for_replies(sel, timeout_s, lambda: len(results) == len(clients), lambda key: _read(
                key.fileobj, key.data, sent_at, results, errors))  # type: ignore[arg-type]
        for client in clients:
            why = errors.get(client.name, "no answer")
            results.setdefault(client.name, MethodResult(None, error=f"{why} (after {tries} tries)"))
        return {c.name: results[c.name] for c in clients}
    finally:
        sel.close()
        for sock in socks.values():
            sock.close()


def _read(sock: socket.socket, name: str, sent_at: dict[str, float],
          results: dict[str, MethodResult], errors: dict[str, str]) -> None:
    while True:
        try:
            data, ancillary, _flags, _addr = sock.recvmsg(4096, nsock.ANCILLARY_SPACE)
        except BlockingIOError:
            return
        except OSError as exc:  # ICMP unreachable surfaces as ECONNREFUSED on the next read
            errors[name] = f"receive failed: {exc}"
            return
        rtt = ((nsock.received_at(ancillary) or time.time()) - sent_at[name]) * 1000
        ident = packets.parse_dns_identity(data)
        if ident is None or ident.txt is None:
            continue
        ttl = nsock.received_ttl(ancillary)
        detail = {"txt": ident.txt, "nsid": ident.nsid}
        error = None
        if ident.nsid is not None and ident.nsid != ident.txt:
            error = f"id.server says {ident.txt!r} but NSID says {ident.nsid!r}"
        results[name] = MethodResult(ident.txt, rtt_ms=rtt, hops=packets.hops_from_ttl(ttl) if ttl else None,
                                     error=error, detail=detail)
