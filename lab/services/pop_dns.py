"""A PoP's identity over DNS, on the anycast address and the PoP's unicast one: the answer names the PoP that
received the query.

CHAOS TXT `id.server` and `hostname.bind` (RFC 4892) return the PoP code, and so does EDNS0 NSID
(RFC 5001), over UDP and TCP. Probes use it to see which PoP a client lands on.

Run inside a PoP's namespace: `python -m anycastlab.services.pop_dns --pop fra --listen 198.51.100.10
--listen 192.0.2.1` (each `--listen` address gets UDP and TCP).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
from typing import cast

from dnslib import CLASS, EDNS0, QTYPE, RCODE, RR, TXT, DNSRecord, EDNSOption

IDENTITY_NAMES = {"id.server.", "hostname.bind."}
NSID = 3
MAX_TCP_MESSAGE = 4096


def answer(query_bytes: bytes, pop: str) -> bytes | None:
    """The reply to one DNS message, or None when it is not a DNS query at all."""
    try:
        query = DNSRecord.parse(query_bytes)
    except Exception:  # dnslib raises several types for malformed input; all mean "not DNS"
        return None
    if query.header.qr:
        return None
    reply = query.reply()
    if not query.questions:
        reply.header.rcode = RCODE.FORMERR
        return bytes(reply.pack())
    q = query.q
    qname = str(q.qname).lower()
    if q.qclass == CLASS.CH and q.qtype in (QTYPE.TXT, QTYPE.ANY) and qname in IDENTITY_NAMES:
        reply.add_answer(RR(q.qname, QTYPE.TXT, CLASS.CH, ttl=0, rdata=TXT(pop)))
    else:
        reply.header.rcode = RCODE.REFUSED
    opt = next((rr for rr in query.ar if rr.rtype == QTYPE.OPT), None)
    if opt is not None:
        # NSID goes to every EDNS query: dnslib drops an empty NSID request when it is the last option, so
        # "was it asked for" cannot be told reliably, and an unasked-for NSID is harmless.
        reply.ar = [r for r in reply.ar if r.rtype != QTYPE.OPT]
        reply.add_ar(EDNS0(udp_len=1232, opts=[EDNSOption(NSID, pop.encode())]))
    return bytes(reply.pack())


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, pop: str) -> None:
        self.pop = pop
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        reply = answer(data, self.pop)
        if reply is not None and self.transport is not None:
            self.transport.sendto(reply, addr)


async def _tcp_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pop: str) -> None:
    try:
        while True:
            header = await asyncio.wait_for(reader.readexactly(2), timeout=10)
            (length,) = struct.unpack("!H", header)
            if length > MAX_TCP_MESSAGE:
                break
            reply = answer(await asyncio.wait_for(reader.readexactly(length), timeout=10), pop)
            if reply is None:
                break
            writer.write(struct.pack("!H", len(reply)) + reply)
            await writer.drain()
    except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(pop: str, hosts: list[str], port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    udps: list[asyncio.DatagramTransport] = []
    tcps: list[asyncio.Server] = []
    try:
        for host in hosts:
            udp, _ = await loop.create_datagram_endpoint(lambda: _Udp(pop), local_addr=(host, port))
            udps.append(udp)
            tcps.append(await asyncio.start_server(lambda r, w: _tcp_client(r, w, pop), host, port))
        await stop.wait()
    finally:
        for udp in udps:
            udp.close()
        for tcp in tcps:
            tcp.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pop", required=True)
    parser.add_argument("--listen", required=True, action="append", help="an address to answer on (repeatable)")
    parser.add_argument("--port", type=int, default=53)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.pop, args.listen, args.port))


if __name__ == "__main__":
    main()
