"""Header parsing: directives, HTTP dates, entity tags."""

from __future__ import annotations

import calendar

from anycastlab.edge import headers as h
from hypothesis import given
from hypothesis import strategies as st


def test_directives_parse_names_case_insensitively_and_unquote() -> None:
    d = h.parse_directives('Max-Age=60, no-cache="Set-Cookie, X-A", public')
    assert d == {"max-age": "60", "no-cache": "Set-Cookie, X-A", "public": None}


def test_conflicting_duplicate_directive_is_invalid() -> None:
    d = h.parse_directives("max-age=60, max-age=3600")
    assert h.delta(d, "max-age") == 0
    assert h.delta(h.parse_directives("max-age=60, max-age=60"), "max-age") == 60


def test_delta_seconds_rejects_non_digits_and_caps_overflow() -> None:
    assert h.delta(h.parse_directives("max-age=-1"), "max-age") == 0
    assert h.delta(h.parse_directives("max-age=1.5"), "max-age") == 0
    assert h.delta(h.parse_directives("max-age"), "max-age") == 0
    assert h.delta(h.parse_directives("max-age=99999999999"), "max-age") == h.MAX_DELTA
    assert h.delta(h.parse_directives("public"), "max-age") is None


def test_split_list_respects_quotes() -> None:
    assert h.split_list('a, "b, c", d') == ["a", '"b, c"', "d"]
    assert h.split_list(None) == []


def test_http_date_formats() -> None:
    expected = calendar.timegm((1994, 11, 6, 8, 49, 37, 0, 0, 0))
    assert h.parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == expected
    assert h.parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == expected
    assert h.parse_http_date("Sun Nov  6 08:49:37 1994") == expected


def test_invalid_http_dates() -> None:
    for bad in ("0", "", "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 8:49:37 GMT",
                "Sun 06 Nov 1994 08:49:37 GMT", "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 32 Nov 1994 08:49:37 GMT"):
        assert h.parse_http_date(bad) is None, bad


@given(st.integers(min_value=0, max_value=4_102_444_800))
def test_http_date_round_trips(ts: int) -> None:
    assert h.parse_http_date(h.http_date(ts)) == ts


def test_hop_by_hop_and_connection_listed_fields_are_stripped() -> None:
    hdrs = [("Connection", "X-Private, close"), ("X-Private", "1"), ("Keep-Alive", "5"), ("ETag", '"a"')]
    assert h.strip_hop_by_hop(hdrs) == [("ETag", '"a"')]


def test_etags_and_weak_comparison() -> None:
    assert h.parse_etags('"a", W/"b"') == ['"a"', 'W/"b"']
    assert h.parse_etags("*") == ["*"]
    assert h.parse_etags(None) is None
    assert h.weak_match('W/"b"', '"b"')
    assert not h.weak_match('"a"', '"b"')
