"""The PoP identity answers: CHAOS TXT names and NSID carry the PoP code; anything else is refused."""

from __future__ import annotations

from anycastlab.services.pop_dns import answer
from dnslib import CLASS, EDNS0, QTYPE, RCODE, DNSRecord, EDNSOption


def ask(name: str, qtype: str = "TXT", qclass: str = "CH", nsid: bool = False) -> DNSRecord:
    query = DNSRecord.question(name, qtype, qclass)
    if nsid:
        query.add_ar(EDNS0(opts=[EDNSOption(3, b"")]))
    reply = answer(bytes(query.pack()), "fra")
    assert reply is not None
    return DNSRecord.parse(reply)


def test_id_server_and_hostname_bind() -> None:
    for name in ("id.server", "hostname.bind", "ID.SERVER"):
        reply = ask(name)
        assert reply.header.rcode == RCODE.NOERROR
        assert [str(rr.rdata) for rr in reply.rr] == ['"fra"'] and reply.rr[0].rclass == CLASS.CH


def test_nsid_even_when_it_is_the_only_option() -> None:
    reply = ask("id.server", nsid=True)
    opt = next(rr for rr in reply.ar if rr.rtype == QTYPE.OPT)
    assert [(o.code, o.data) for o in opt.rdata] == [(3, b"fra")]


def test_other_questions_are_refused() -> None:
    assert ask("example.com", "A", "IN").header.rcode == RCODE.REFUSED


def test_garbage_and_replies_get_no_answer() -> None:
    assert answer(b"\x00\x01garbage", "fra") is None
    reply = bytes(DNSRecord.question("id.server", "TXT", "CH").reply().pack())
    assert answer(reply, "fra") is None
