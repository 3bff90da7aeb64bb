"""HTTP header helpers shared by the cache and the proxy: field lists, directives, dates, validators.

Headers are kept as ordered ``(name, value)`` string pairs in their original case, because caches must
forward what the origin sent (order and case included), while lookups are case-insensitive.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable

Headers = list[tuple[str, str]]

# RFC 9110 7.6.1 hop-by-hop fields, plus the legacy ones proxies still see.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    }
)

MAX_DELTA = 2147483648  # RFC 9111 1.2.2: overflowing delta-seconds means "2^31"


def get(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The combined value of every field called ``name`` (comma-joined), or None if absent."""
    name = name.lower()
    values = [v for k, v in headers if k.lower() == name]
    if not values:
        return None
    return ", ".join(values)


def get_all(headers: Iterable[tuple[str, str]], name: str) -> list[str]:
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


def has(headers: Iterable[tuple[str, str]], name: str) -> bool:
    name = name.lower()
    return any(k.lower() == name for k, _ in headers)


def remove(headers: Headers, names: Iterable[str]) -> Headers:
    drop = {n.lower() for n in names}
    return [(k, v) for k, v in headers if k.lower() not in drop]


def split_list(value: str | None) -> list[str]:
    """Split a comma-separated field value into trimmed, non-empty members (quotes respected)."""
    if not value:
        return []
    out: list[str] = []
    cur: list[str] = []
    quoted = False
    escaped = False
    for ch in value:
        if escaped:
            cur.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            cur.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif ch == "," and not quoted:
            member = "".join(cur).strip()
            if member:
                out.append(member)
            cur = []
        else:
            cur.append(ch)
    member = "".join(cur).strip()
    if member:
        out.append(member)
    return out


def connection_tokens(headers: Headers) -> set[str]:
    """Field names listed in Connection: they are hop-by-hop for this message only."""
    return {t.lower() for t in split_list(get(headers, "connection"))}


def strip_hop_by_hop(headers: Headers) -> Headers:
    drop = HOP_BY_HOP | connection_tokens(headers)
    return [(k, v) for k, v in headers if k.lower() not in drop]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def parse_directives(value: str | None) -> dict[str, str | None]:
    """Parse Cache-Control-style directives into ``{name: argument-or-None}``.

    Names are lowercased; the first occurrence of a duplicated directive wins, except that a caller
    checking delta-seconds sees the invalid marker for conflicting duplicates (see ``delta``).
    """
    out: dict[str, str | None] = {}
    for member in split_list(value):
        name, eq, arg = member.partition("=")
        name = name.strip().lower()
        if not name:
            continue
        parsed: str | None = _unquote(arg.strip()) if eq else None
        if name in out:
            if out[name] != parsed:
                # Conflicting duplicates of a valued directive: treat as invalid (RFC 9111 4.2.1 says
                # a cache should consider such a response stale), which `delta` reports as 0.
                out[name] = "\x00conflict" if parsed is not None or out[name] is not None else None
            continue
        out[name] = parsed
    return out


def delta(directives: dict[str, str | None], name: str) -> int | None:
    """The delta-seconds argument of ``name``; None if absent; 0 if present but invalid."""
    if name not in directives:
        return None
    arg = directives[name]
    if arg is None or not arg.isdigit() or not arg.isascii():
        return 0
    n = int(arg)
    return min(n, MAX_DELTA)


_MONTHS = {
    m: i
    for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)
}
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WEEKDAYS_LONG = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_IMF = re.compile(r"^([A-Za-z]{3}), (\d{2}) ([A-Za-z]{3}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$")
_RFC850 = re.compile(r"^([A-Za-z]{6,9}), (\d{2})-([A-Za-z]{3})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$")
_ASCTIME = re.compile(r"^([A-Za-z]{3}) ([A-Za-z]{3}) ([ \d]\d) (\d{2}):(\d{2}):(\d{2}) (\d{4})$")


def _mk(year: int, month: int, day: int, hh: int, mm: int, ss: int) -> float | None:
    if not (1 <= day <= 31 and hh < 24 and mm < 60 and ss < 61):
        return None
    try:
        return float(calendar.timegm((year, month, day, hh, mm, ss, 0, 0, 0)))
    except (ValueError, OverflowError):
        return None


def parse_http_date(value: str | None) -> float | None:
    """Parse an HTTP-date (IMF-fixdate, RFC 850 or asctime) into a UNIX time; None if invalid."""
    if value is None:
        return None
    value = value.strip()
    m = _IMF.match(value)
    if m:
        wd, d, mon, y, hh, mi, ss = m.groups()
        month = _MONTHS.get(mon.lower())
        if wd.lower() not in _WEEKDAYS or month is None or mon[0].islower():
            return None
        return _mk(int(y), month, int(d), int(hh), int(mi), int(ss))
    m = _RFC850.match(value)
    if m:
        wd, d, mon, yy, hh, mi, ss = m.groups()
        month = _MONTHS.get(mon.lower())
        if wd.lower() not in _WEEKDAYS_LONG or month is None:
            return None
        # RFC 9110 5.6.7: a two-digit year more than 50 years in the future is in the past century.
        year = 2000 + int(yy)
        if year > time.gmtime().tm_year + 50:
            year -= 100
        return _mk(year, month, int(d), int(hh), int(mi), int(ss))
    m = _ASCTIME.match(value)
    if m:
        wd, mon, d, hh, mi, ss, y = m.groups()
        month = _MONTHS.get(mon.lower())
        if wd.lower() not in _WEEKDAYS or month is None:
            return None
        return _mk(int(y), month, int(d.strip()), int(hh), int(mi), int(ss))
    return None


def http_date(ts: float) -> str:
    """Format a UNIX time as an IMF-fixdate."""
    t = time.gmtime(ts)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (  # noqa: UP031 - hot-ish path, fixed widths
        ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[t.tm_wday],
        t.tm_mday,
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


def parse_etags(value: str | None) -> list[str] | None:
    """Entity tags of If-None-Match / If-Match; ``None`` for a missing field, ``["*"]`` for any."""
    if value is None:
        return None
    if value.strip() == "*":
        return ["*"]
    return re.findall(r'(?:W/)?"[^"]*"', value)


def weak_match(a: str, b: str) -> bool:
    """RFC 9110 8.8.3.2 weak comparison: the opaque tags match, W/ ignored."""
    return a.removeprefix("W/") == b.removeprefix("W/")
