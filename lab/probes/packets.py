"""The probes' packets: crafted with scapy, and read back from the bytes a socket returns.

Everything here is a pure function of its arguments, so it is unit-tested without a lab. The sockets that
send these bytes are opened inside lab namespaces (see `nsock`); scapy is used to build and dissect
packets only, never to route or send them: scapy reads its routing table from the namespace it was
imported in (the host's), which knows nothing of a client's routes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRROPT, EDNS0TLV
from scapy.layers.inet import ICMP, IP, ICMPerror, IPerror, IPOption_RR

IDENTITY_QNAME = "id.server"
NSID = 3
COOKIE = 10
MAGIC = b"anycastlab"
CENSUS_PAYLOAD = struct.Struct("!10sII")  # MAGIC, measurement id, client index
ICMP_ECHO_REPLY, ICMP_DEST_UNREACH, ICMP_ECHO, ICMP_TIME_EXCEEDED = 0, 3, 8, 11
RR_SLOTS = 9  # an IPv4 Record Route option holds at most nine addresses
DEFAULT_TTL = 64


# -- DNS identity (CHAOS TXT id.server + EDNS0 NSID) ------------------------------------------------------

def dns_identity_query(qid: int, nsid: bool = True) -> bytes:
    """CHAOS TXT id.server, optionally asking for the server's NSID (RFC 5001).

    The NSID request is followed by a client COOKIE option (RFC 7873), as dig sends it: some DNS libraries
    (dnslib among them) drop a zero-length option that ends the OPT record, and NSID's request is one.
    """
    query = DNS(id=qid & 0xFFFF, rd=0, qd=DNSQR(qname=IDENTITY_QNAME, qtype="TXT", qclass="CH"))
    if nsid:
        query.ar = DNSRROPT(rclass=1232, z=0, rdata=[EDNS0TLV(optcode=NSID, optlen=0),
                                                      EDNS0TLV(optcode=COOKIE, optdata=MAGIC[:8])])
    return bytes(query)


@dataclass(frozen=True)
class DnsIdentity:
    qid: int
    txt: str | None
    nsid: str | None


def parse_dns_identity(data: bytes) -> DnsIdentity | None:
    """The id.server TXT and the NSID of a DNS reply (scapy), or None when it is not a DNS reply."""
    try:
        msg = DNS(data)
    except Exception:  # scapy raises many types on truncated input; all mean "not a usable reply"
        return None
    if not msg.qr:
        return None
    txt = None
    for rr in _records(msg.an):
        if getattr(rr, "type", None) == 16:  # TXT
            txt = b"".join(rr.rdata).decode(errors="replace") if isinstance(rr.rdata, list) else str(rr.rdata)
            break
    nsid = None
    for rr in _records(msg.ar):
        if getattr(rr, "type", None) == 41:  # OPT
            for opt in rr.rdata or []:
                if getattr(opt, "optcode", None) == NSID:
                    nsid = bytes(opt.optdata).decode(errors="replace")
    return DnsIdentity(int(msg.id), txt, nsid)


def _records(section: Any) -> list[Any]:
    if section is None:
        return []
    if isinstance(section, list):
        return section
    return [section]


def fast_dns_txt(data: bytes) -> tuple[int, str | None] | None:
    """(id, first TXT string) of a DNS reply, read by hand: the continuous mode reads thousands a second.

    Returns None when `data` is not a DNS reply; the TXT is None when the reply carries no TXT answer.
    """
    if len(data) < 12:
        return None
    qid, flags, qdcount, ancount = struct.unpack_from("!HHHH", data)
    if not flags & 0x8000:
        return None
    try:
        pos = 12
        for _ in range(qdcount):
            pos = _skip_name(data, pos) + 4
        for _ in range(ancount):
            pos = _skip_name(data, pos)
            rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", data, pos)
            pos += 10
            if rtype == 16 and rdlen >= 1:
                length = data[pos]
                if pos + 1 + length > len(data):
                    return None
                return qid, data[pos + 1:pos + 1 + length].decode(errors="replace")
            pos += rdlen
    except (IndexError, struct.error):
        return None
    return qid, None


def _skip_name(data: bytes, pos: int) -> int:
    for _ in range(128):  # a name has at most 127 labels
        length = data[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2
        pos += 1 + length
    raise IndexError("name too long")


# -- census (Verfploeter): ICMP echo with the anycast source -------------------------------------------

def census_request(measurement: int, index: int) -> bytes:
    """An ICMP echo request (no IP header: a raw ICMP socket adds it) for client `index` of a measurement."""
    payload = CENSUS_PAYLOAD.pack(MAGIC, measurement & 0xFFFFFFFF, index)
    return bytes(ICMP(type=ICMP_ECHO, id=measurement & 0xFFFF, seq=index & 0xFFFF) / payload)


@dataclass(frozen=True)
class CensusReply:
    source: str
    measurement: int
    index: int
    ttl: int


def parse_census_reply(packet: bytes) -> CensusReply | None:
    """An echo reply to a census request, from the IP packet a raw socket returns; None for anything else."""
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return None
    ihl = (packet[0] & 0x0F) * 4
    icmp = packet[ihl:]
    if len(icmp) < 8 + CENSUS_PAYLOAD.size or icmp[0] != ICMP_ECHO_REPLY:
        return None
    magic, measurement, index = CENSUS_PAYLOAD.unpack_from(icmp, 8)
    if magic != MAGIC:
        return None
    return CensusReply(str(ipaddress.IPv4Address(packet[12:16])), measurement, index, packet[8])


# -- traceroute: ICMP echo with rising TTL and a Record Route option ------------------------------------

def traceroute_probe(src: str, dst: str, ttl: int, ident: int) -> bytes:
    """A whole IP packet (for an IPPROTO_RAW socket): echo request, seq = ttl, with an empty Record Route.

    The echo reply brings the Record Route back: the address recorded just before the first copy of the
    anycast address is the egress interface of the last router, and that link's far end is the PoP.
    """
    packet = IP(src=src, dst=dst, ttl=ttl, id=(ident + ttl) & 0xFFFF,
                options=[IPOption_RR(routers=["0.0.0.0"] * RR_SLOTS)]) / ICMP(
        type=ICMP_ECHO, id=ident & 0xFFFF, seq=ttl) / MAGIC
    return bytes(packet)


@dataclass(frozen=True)
class TraceReply:
    kind: str  # "hop" (time exceeded), "reply" (echo reply) or "unreachable"
    source: str
    seq: int  # the probe's TTL
    ttl: int  # the reply's own TTL, as received
    recorded: tuple[str, ...]  # Record Route addresses (echo replies only)


def parse_trace_reply(packet: bytes, ident: int) -> TraceReply | None:
    """A reply to one of our traceroute probes (matched by ICMP id), or None."""
    try:
        ip = IP(packet)
    except Exception:  # malformed input from the wire: not ours
        return None
    icmp = ip.getlayer(ICMP)
    if icmp is None:
        return None
    if icmp.type == ICMP_ECHO_REPLY:
        if icmp.id != ident & 0xFFFF:
            return None
        recorded: tuple[str, ...] = ()
        for opt in ip.options or []:
            if isinstance(opt, IPOption_RR):
                used = max(0, (opt.pointer - 4) // 4)
                recorded = tuple(str(a) for a in opt.routers[:used])
        return TraceReply("reply", str(ip.src), int(icmp.seq), int(ip.ttl), recorded)
    if icmp.type in (ICMP_TIME_EXCEEDED, ICMP_DEST_UNREACH):
        quoted = ip.getlayer(IPerror)
        inner = ip.getlayer(ICMPerror)
        if quoted is None or inner is None or inner.id != ident & 0xFFFF:
            return None
        kind = "hop" if icmp.type == ICMP_TIME_EXCEEDED else "unreachable"
        return TraceReply(kind, str(ip.src), int(inner.seq), int(ip.ttl), ())
    return None


def hops_from_ttl(ttl: int, initial: int = DEFAULT_TTL) -> int:
    """The traceroute hop number of whoever sent a packet that arrived with `ttl` (sent with `initial`)."""
    return initial - ttl + 1
