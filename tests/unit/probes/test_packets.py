"""Probe packets: what scapy crafts is what the lab's responders understand, and replies parse back."""

from __future__ import annotations

from anycastlab.probes import packets
from anycastlab.services.pop_dns import answer
from hypothesis import given
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, IPOption_RR


def test_identity_query_is_answered_by_the_pop_dns_with_txt_and_nsid() -> None:
    reply = answer(packets.dns_identity_query(0x1234), "fra")
    assert reply is not None
    ident = packets.parse_dns_identity(reply)
    assert ident == packets.DnsIdentity(0x1234, "fra", "fra")


def test_identity_query_without_nsid_gets_txt_only() -> None:
    reply = answer(packets.dns_identity_query(7, nsid=False), "syd")
    assert reply is not None
    assert packets.parse_dns_identity(reply) == packets.DnsIdentity(7, "syd", None)


def test_a_query_is_not_taken_for_a_reply() -> None:
    query = packets.dns_identity_query(1)
    assert packets.parse_dns_identity(query) is None
    assert packets.fast_dns_txt(query) is None


@given(qid=st.integers(0, 0xFFFF), pop=st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=40),
       nsid=st.booleans())
def test_fast_parser_agrees_with_scapy(qid: int, pop: str, nsid: bool) -> None:
    reply = answer(packets.dns_identity_query(qid, nsid=nsid), pop)
    assert reply is not None
    assert packets.fast_dns_txt(reply) == (qid, pop)
    ident = packets.parse_dns_identity(reply)
    assert ident is not None and (ident.qid, ident.txt) == (qid, pop)


def test_fast_parser_reads_a_refusal_as_no_txt() -> None:
    other = bytes(DNS(id=9, rd=0, qd=DNSQR(qname="example.com", qtype="A")))
    reply = answer(other, "fra")
    assert reply is not None
    assert packets.fast_dns_txt(reply) == (9, None)


@given(st.binary(max_size=300))
def test_fast_parser_never_raises_on_garbage(data: bytes) -> None:
    result = packets.fast_dns_txt(data)
    assert result is None or isinstance(result[0], int)


@given(st.binary(max_size=300))
def test_census_parser_never_raises_on_garbage(data: bytes) -> None:
    packets.parse_census_reply(data)


def _echo_reply_to(request: bytes, src: str, ttl: int) -> bytes:
    """What a client's kernel sends back: the same id, seq and payload, as an echo reply."""
    echo = ICMP(request)
    return bytes(IP(src=src, dst="198.51.100.10", ttl=ttl) / ICMP(type=0, id=echo.id, seq=echo.seq) /
                 bytes(echo.payload))


def test_census_request_round_trips_through_an_echo_reply() -> None:
    request = packets.census_request(0xDEADBEEF, 70000)
    assert ICMP(request).type == 8
    parsed = packets.parse_census_reply(_echo_reply_to(request, "100.64.0.1", 61))
    assert parsed == packets.CensusReply("100.64.0.1", 0xDEADBEEF, 70000, 61)


def test_census_ignores_other_echo_replies() -> None:
    ping = bytes(IP(src="100.64.0.1", dst="198.51.100.10") / ICMP(type=0, id=1, seq=1) / (b"x" * 40))
    assert packets.parse_census_reply(ping) is None
    request = packets.census_request(5, 3)
    echo_request = bytes(IP(src="100.64.0.1", dst="198.51.100.10") / ICMP(request))
    assert packets.parse_census_reply(echo_request) is None  # a request, not a reply


def test_traceroute_probe_carries_ttl_ident_and_an_empty_record_route() -> None:
    probe = IP(packets.traceroute_probe("100.64.0.1", "198.51.100.10", 5, 0xBEEF))
    assert (probe.src, probe.dst, probe.ttl) == ("100.64.0.1", "198.51.100.10", 5)
    assert (probe[ICMP].type, probe[ICMP].id, probe[ICMP].seq) == (8, 0xBEEF, 5)
    rr = probe.options[0]
    assert isinstance(rr, IPOption_RR) and rr.pointer == 4 and len(rr.routers) == packets.RR_SLOTS


def test_time_exceeded_names_the_hop_and_the_probe() -> None:
    probe = IP(packets.traceroute_probe("100.64.0.1", "198.51.100.10", 2, 0x0102))
    probe.ttl = 0
    reply = bytes(IP(src="10.0.0.9", dst="100.64.0.1", ttl=63) / ICMP(type=11, code=0) / bytes(probe)[:28 + 40])
    parsed = packets.parse_trace_reply(reply, 0x0102)
    assert parsed is not None
    assert (parsed.kind, parsed.source, parsed.seq, parsed.ttl) == ("hop", "10.0.0.9", 2, 63)
    assert packets.parse_trace_reply(reply, 0x0103) is None  # someone else's traceroute


def test_echo_reply_brings_back_the_recorded_route() -> None:
    recorded = ["10.0.0.8", "10.0.0.3", "198.51.100.10", "198.51.100.10", "10.0.0.9"]
    rr = IPOption_RR(routers=recorded + ["0.0.0.0"] * 4, pointer=4 + 4 * len(recorded))
    reply = bytes(IP(src="198.51.100.10", dst="100.64.0.1", ttl=62, options=[rr]) /
                  ICMP(type=0, id=0x0102, seq=7) / packets.MAGIC)
    parsed = packets.parse_trace_reply(reply, 0x0102)
    assert parsed is not None
    assert (parsed.kind, parsed.seq, parsed.recorded) == ("reply", 7, tuple(recorded))


def test_hops_from_ttl() -> None:
    assert packets.hops_from_ttl(64) == 1
    assert packets.hops_from_ttl(62) == 3
