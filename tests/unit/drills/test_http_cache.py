"""The drill's HTTP client (response parsing, error classes) and the cache/origin arithmetic, without a lab."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from anycastlab.drills.edgestats import Snapshot, hit_ratio, origin_rps, summarise
from anycastlab.drills.http_load import classify, read_response
from anycastlab.drills.model import Http
from pydantic import ValidationError


def parse(raw: bytes) -> tuple[int, dict[str, str], bool, bytes]:
    async def go() -> tuple[int, dict[str, str], bool, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        resp = await read_response(reader)
        return resp.status, resp.headers, resp.close, await reader.read()

    return asyncio.run(go())


def test_content_length_body_is_consumed_and_the_next_response_is_left() -> None:
    status, headers, close, rest = parse(b"HTTP/1.1 200 OK\r\ncf-pop: fra\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1")
    assert (status, headers["cf-pop"], close, rest) == (200, "fra", False, b"HTTP/1.1")


def test_chunked_body_and_connection_close() -> None:
    raw = b"HTTP/1.1 502 Bad Gateway\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\nX"
    status, _, close, rest = parse(raw)
    assert (status, close, rest) == (502, True, b"X")


def test_truncated_body_is_an_incomplete_read() -> None:
    with pytest.raises(asyncio.IncompleteReadError) as info:
        parse(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    assert classify(info.value, handshaking=False) == "reset"


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
