"""One DNS A query from inside a node's namespace (dnslib builds and parses it): what the gate, the resolver
watch and the clients' stub resolver ask. Bounded by a timeout and a number of tries."""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
import selectors
import struct
import time
from dataclasses import dataclass

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord, EDNSOption

from ..runtime import nsock
from .plan import DNS_PORT


@dataclass(frozen=True)
class Answer:
    addresses: tuple[str, ...]  # the A records, in the order given
    ttl: int  # the smallest TTL among them
    rcode: str
    ms: float

    @property
    def address(self) -> str | None:
        return self.addresses[0] if self.addresses else None


ECS = 8  # EDNS client-subnet (RFC 7871)


def _query(name: str, subnet: ipaddress.IPv4Network | None = None) -> tuple[bytes, int]:
    qid = secrets.randbelow(0x10000)
    q = DNSRecord.question(name, "A")
    q.header.id = qid
    if subnet is not None:  # ask as if from `subnet` (gdnsd answers for it, with the scope it used)
        length = subnet.prefixlen
        address = subnet.network_address.packed[: (length + 7) // 8]
        q.add_ar(EDNS0(udp_len=1232, opts=[EDNSOption(ECS, struct.pack("!HBB", 1, length, 0) + address)]))
    return bytes(q.pack()), qid


def _parse(data: bytes, qid: int, started: float) -> Answer | None:
    try:
        reply = DNSRecord.parse(data)
    except Exception:  # dnslib raises several types on garbage; not our answer
        return None
    if reply.header.id != qid or not reply.header.qr:
        return None
    a = [rr for rr in reply.rr if rr.rtype == QTYPE.A]
    return Answer(tuple(str(rr.rdata) for rr in a), min((rr.ttl for rr in a), default=0),
                  RCODE.get(reply.header.rcode), (time.monotonic() - started) * 1000)


def query(pid: int, server: str, name: str, timeout_s: float = 1.0, tries: int = 2,
          subnet: ipaddress.IPv4Network | None = None) -> Answer | None:
    """Ask `server` for `name`'s A records from the namespace of `pid` (on behalf of `subnet`, by EDNS
    client-subnet, when given); None when nothing answered."""
    sock = nsock.open_in(pid, 2, 2)  # AF_INET, SOCK_DGRAM
    sel = selectors.DefaultSelector()
    try:
        sel.register(sock, selectors.EVENT_READ)
        for _ in range(tries):
            data, qid = _query(name, subnet)
            started = time.monotonic()
            try:
                sock.sendto(data, (server, DNS_PORT))
            except OSError:
                time.sleep(min(timeout_s, 0.2))
                continue
            deadline = started + timeout_s
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(left):
                    break
                try:
                    reply = sock.recv(4096)
                except OSError:
                    break
                answer = _parse(reply, qid, started)
                if answer is not None:
                    return answer
        return None
    finally:
        sel.close()
        sock.close()


async def query_async(pid: int, server: str, name: str, timeout_s: float = 1.0, tries: int = 2) -> Answer | None:
    """The same from an asyncio loop (the HTTP load's): the socket is created in the namespace, then driven
    by the loop."""
    loop = asyncio.get_running_loop()
    sock = nsock.open_in(pid, 2, 2)
    try:
        for _ in range(tries):
            data, qid = _query(name)
            started = time.monotonic()
            try:
                await loop.sock_sendto(sock, data, (server, DNS_PORT))
                async with asyncio.timeout(timeout_s):
                    while True:
                        answer = _parse(await loop.sock_recv(sock, 4096), qid, started)
                        if answer is not None:
                            return answer
            except (TimeoutError, OSError):
                continue
        return None
    finally:
        sock.close()
