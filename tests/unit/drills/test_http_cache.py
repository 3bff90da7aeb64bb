"""The drill's HTTP client (response parsing, error classes) and the cache/origin arithmetic, without a lab."""

from __future__ import annotations

import asyncio
import ssl

import h11
import pytest
from anycastlab.drills.edgestats import Snapshot, hit_ratio, origin_rps, summarise
from anycastlab.drills.http_load import RequestFailed, Response, classify, new_parser, read_response
from anycastlab.drills.model import Http
from pydantic import ValidationError


def exchange(raw: bytes, requests: int = 1) -> tuple[list[Response], h11.Connection]:
    """What the drill's client reads from `raw` after sending `requests` GETs on one connection."""
    async def go() -> tuple[list[Response], h11.Connection]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        parser = new_parser()
        responses = []
        for _ in range(requests):
            if parser.our_state is h11.DONE and parser.their_state is h11.DONE:
                parser.start_next_cycle()
            parser.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
            parser.send(h11.EndOfMessage())
            responses.append(await read_response(reader, parser))
        return responses, parser

    return asyncio.run(go())


def test_content_length_body_is_consumed_and_the_next_response_is_read_on_the_same_connection() -> None:
    (first, second), _ = exchange(b"HTTP/1.1 200 OK\r\ncf-pop: fra\r\nContent-Length: 3\r\n\r\nabc"
                                  b"HTTP/1.1 404 Not Found\r\ncf-pop: fra\r\nContent-Length: 0\r\n\r\n", 2)
    assert (first.status, first.headers["cf-pop"], first.close) == (200, "fra", False)
    assert (second.status, second.close) == (404, False)


def test_chunked_body_with_trailers_and_connection_close() -> None:
    raw = (b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
           b"3\r\nabc\r\n0\r\nServer-Timing: origin;dur=12\r\n\r\n")
    (resp,), _ = exchange(raw)
    assert (resp.status, resp.close, resp.trailers) == (502, True, {"server-timing": "origin;dur=12"})


def test_a_field_sent_twice_keeps_both_values() -> None:
    (resp,), _ = exchange(b"HTTP/1.1 200 OK\r\nCache-Control: public\r\ncache-control: max-age=60\r\n"
                          b"Content-Length: 0\r\n\r\n")
    assert resp.headers["cache-control"] == "public, max-age=60"


def test_a_body_until_close_ends_the_connection() -> None:
    (resp,), _ = exchange(b"HTTP/1.1 200 OK\r\ncf-pop: sin\r\n\r\nall of it")
    assert (resp.status, resp.headers["cf-pop"], resp.close) == (200, "sin", True)


def test_truncated_body_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError) as info:
        exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert classify(info.value, handshaking=False) == "reset"


def test_no_answer_at_all_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError):
        exchange(b"")


def test_a_malformed_response_is_an_answered_failure() -> None:
    with pytest.raises(RequestFailed) as info:
        exchange(b"HTTP/1.1 2x0 Nope\r\n\r\n")
    assert (info.value.kind, info.value.answered) == ("other", True)


@pytest.mark.parametrize(("exc", "handshaking", "kind"), [
    (TimeoutError(), False, "timeout"),
    (ConnectionRefusedError(), True, "refused"),
    (ConnectionResetError(), False, "reset"),
    (BrokenPipeError(), False, "reset"),
    (ssl.SSLCertVerificationError("bad cert"), True, "tls"),
    (ssl.SSLEOFError("eof"), True, "tls"),
    (ssl.SSLEOFError("eof"), False, "reset"),
    (OSError(113, "No route to host"), False, "unreachable"),
])
def test_error_classes(exc: BaseException, handshaking: bool, kind: str) -> None:
    assert classify(exc, handshaking) == kind


def snap(t: float, origin: int | None, **pops: dict[str, int] | None) -> Snapshot:
    return Snapshot(t, dict(pops), origin)


def test_hit_ratio_counts_stale_as_cached_and_skips_restarted_proxies() -> None:
    a = snap(0, 10, sin={"HIT": 10, "MISS": 2}, fra={"HIT": 50})
    b = snap(2, 30, sin={"HIT": 16, "MISS": 4, "STALE": 2}, fra={"HIT": 3})  # fra restarted: counters fell
    assert hit_ratio(a, b, ["sin", "fra"]) == (0.8, 10)
    assert hit_ratio(a, b, ["fra"]) == (None, 0)
    assert origin_rps(a, b) == 10.0
    assert origin_rps(a, snap(2, None)) is None


def test_summary_uses_receiving_pops_else_serving_ones() -> None:
    start = snap(0, 0, sin={"HIT": 0}, fra={"HIT": 0})
    fault = snap(1, 0, sin={"HIT": 5}, fra={"HIT": 5})
    end = snap(3, 4, sin={"HIT": 9, "MISS": 1}, fra={"HIT": 5, "STALE": 2})
    moved = summarise(start, fault, end, receiving=["sin"], serving=["fra", "sin"])
    assert (moved["pops"], moved["hit_ratio_before"], moved["hit_ratio_after"]) == (["sin"], 1.0, 0.8)
    assert (moved["origin_rps_before"], moved["origin_rps_after"], moved["stale_served_during_fault"]) == (0.0, 2.0, 2)
    still = summarise(start, fault, end, receiving=[], serving=["fra", "sin"])
    assert still["pops_are"].startswith("serving") and still["hit_ratio_after"] == pytest.approx(6 / 7, abs=1e-4)
    assert summarise(None, fault, end, [], [])["available"] is False


def test_http_section_defaults_and_bad_paths() -> None:
    spec = Http()
    assert spec.keepalive and spec.rate_hz > 0 and all(p.startswith("/") for p in spec.paths)
    with pytest.raises(ValidationError):
        Http(paths=["no-slash"])
    with pytest.raises(ValidationError):
        Http(rate_hz=0)
