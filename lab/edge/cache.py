"""The edge cache: RFC 9111 shared-cache semantics plus RFC 5861 stale-* extensions, kept free of I/O.

Everything here takes time as an argument (UNIX seconds) and request headers as a lowercase-keyed
mapping, so the rules can be unit- and property-tested without sockets. The proxy owns the I/O and asks
this module three questions: may I store this response, may I reuse this stored response (and how), and
how does a 304 change what I stored. Where entries are kept (and evicted, purged, coalesced) is
lab/edge/store.py.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from anycastlab.edge import headers as h
from anycastlab.edge.headers import Headers

# RFC 9110 15.1: statuses a cache may store without explicit freshness (heuristically cacheable).
HEURISTIC_STATUSES = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
# Statuses this cache understands (RFC 9111 5.2.2.3 must-understand). Others are stored only with explicit
# freshness; 206 is never stored: partial content is served from full entries.
STORABLE_STATUSES = HEURISTIC_STATUSES | frozenset(
    {302, 303, 307, 400, 401, 403, 406, 408, 409, 411, 412, 413, 415, 416, 417, 421, 426, 429, 431, 451,
     500, 502, 503, 504}
)
HEURISTIC_FRACTION = 0.1
HEURISTIC_CAP = 86400.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# RFC 9111 3.2: fields a 304 must not overwrite (framing belongs to the stored body).
# The validator and digest describe the stored body too: a 304 for a weakly-matching tag must not
# relabel it.
NOT_UPDATED_BY_304 = frozenset(
    {"content-length", "content-encoding", "transfer-encoding", "content-range", "content-md5", "etag"}
)
# Fields never stored: they describe one hop or one delivery (an upper tier's PoP identity included: the
# PoP that answers adds its own).
NOT_STORED = h.HOP_BY_HOP | frozenset({"age", "cf-cache-status", "cf-pop", "x-anycastlab-pop", "cf-ray"})
# Fields stored for this cache's own use but never sent to clients (Cloudflare strips Cache-Tag too).
INTERNAL_FIELDS = frozenset({"surrogate-control", "cache-tag"})
SURROGATE_ID = "anycastlab"


class CachePhase(enum.Enum):
    """Where a request ended up, Pingora-style; ``.value`` is the Cloudflare ``cf-cache-status``."""

    HIT = "HIT"  # fresh stored response
    MISS = "MISS"  # nothing stored; fetched from origin
    EXPIRED = "EXPIRED"  # stored but stale; a full response was fetched
    STALE = "STALE"  # stale response served because the origin failed (stale-if-error / disconnected)
    STALE_UPDATING = "UPDATING"  # stale served while a background refresh runs (stale-while-revalidate)
    REVALIDATED = "REVALIDATED"  # stale, origin answered 304, stored response reused
    BYPASS = "BYPASS"  # request or response told us not to use the cache (no-store, private, ...)
    DYNAMIC = "DYNAMIC"  # not eligible: unsafe method or no freshness information

    @property
    def cf_status(self) -> str:
        return self.value


# --------------------------------------------------------------------------- request side


@dataclass(slots=True)
class RequestDirectives:
    """What a request's Cache-Control (or Pragma) asks of the cache."""

    no_store: bool = False
    no_cache: bool = False
    only_if_cached: bool = False
    max_age: int | None = None
    max_stale: int | None = None  # MAX_DELTA for a bare max-stale
    min_fresh: int | None = None
    stale_if_error: int | None = None

    @classmethod
    def parse(cls, req: Mapping[str, str]) -> RequestDirectives:
        cc_value = req.get("cache-control")
        cc = h.parse_directives(cc_value)
        d = cls()
        d.no_store = "no-store" in cc
        d.no_cache = "no-cache" in cc
        if cc_value is None and "no-cache" in h.parse_directives(req.get("pragma")):
            d.no_cache = True  # RFC 9111 5.4: Pragma only counts when Cache-Control is absent
        d.only_if_cached = "only-if-cached" in cc
        d.max_age = h.delta(cc, "max-age")
        if "max-stale" in cc:
            d.max_stale = h.MAX_DELTA if cc["max-stale"] is None else h.delta(cc, "max-stale")
        d.min_fresh = h.delta(cc, "min-fresh")
        d.stale_if_error = h.delta(cc, "stale-if-error")
        return d


# A request without Cache-Control or Pragma asks nothing of the cache (shared: never mutated).
PLAIN_REQUEST = RequestDirectives()


# --------------------------------------------------------------------------- response side


@dataclass(slots=True)
class ResponseDirectives:
    """The cache-relevant reading of a response's Cache-Control, Surrogate-Control and Expires."""

    cc: dict[str, str | None]
    surrogate: dict[str, str | None]

    @classmethod
    def parse(cls, headers: Headers, surrogate_id: str = SURROGATE_ID) -> ResponseDirectives:
        """Surrogate-Control aimed at us, when present, replaces Cache-Control for this cache."""
        surrogate = _surrogate(headers, surrogate_id)
        cc = dict(surrogate) if surrogate else h.parse_directives(h.get(headers, "cache-control"))
        return cls(cc, surrogate)

    @property
    def no_store(self) -> bool:
        return "no-store" in self.cc or "no-store" in self.surrogate

    @property
    def private(self) -> bool:
        return "private" in self.cc and self.cc["private"] is None

    @property
    def no_cache(self) -> bool:
        return "no-cache" in self.cc and self.cc["no-cache"] is None

    @property
    def public(self) -> bool:
        return "public" in self.cc

    @property
    def must_revalidate(self) -> bool:
        """must-revalidate, proxy-revalidate and s-maxage all forbid serving stale (RFC 9111 5.2.2)."""
        if "max-age" in self.surrogate:
            return False
        return "must-revalidate" in self.cc or "proxy-revalidate" in self.cc or "s-maxage" in self.cc

    @property
    def stale_while_revalidate(self) -> int | None:
        return h.delta(self.cc, "stale-while-revalidate")

    @property
    def stale_if_error(self) -> int | None:
        return h.delta(self.cc, "stale-if-error")

    def stripped_fields(self) -> set[str]:
        """Fields named by qualified private="..." / no-cache="...": a shared cache does not keep them."""
        out: set[str] = set()
        for name in ("private", "no-cache"):
            arg = self.cc.get(name)
            if arg:
                out.update(f.strip().lower() for f in arg.split(",") if f.strip())
        return out


def _surrogate(headers: Headers, surrogate_id: str) -> dict[str, str | None]:
    """Surrogate-Control directives aimed at us: untargeted ones, overridden by ``;<our id>`` ones."""
    general: dict[str, str | None] = {}
    targeted: dict[str, str | None] = {}
    for member in h.split_list(h.get(headers, "surrogate-control")):
        directive, _, target = member.partition(";")
        parsed = h.parse_directives(directive)
        target = target.strip()
        if not target:
            for k, v in parsed.items():
                general.setdefault(k, v)
        elif target == surrogate_id:
            for k, v in parsed.items():
                targeted.setdefault(k, v)
    return targeted or general


def _age_value(headers: Headers) -> int | None:
    """RFC 9111 5.1 Age, read strictly: 0 if absent, None if we cannot trust it.

    One field line of comma-separated digits (the first member counts). Anything else (a sign, a
    fraction, parameters, spaces, a repeated line) is not a usable age; the caller then treats the
    response as stale rather than guess how old it is.
    """
    lines = h.get_all(headers, "age")
    if not lines:
        return 0
    if len(lines) > 1:
        return None
    members = lines[0].strip().split(",")
    if not all(m.isdigit() and m.isascii() for m in members):
        return None
    return min(int(members[0]), h.MAX_DELTA)


def freshness_lifetime(
    status: int, headers: Headers, rd: ResponseDirectives, response_time: float
) -> float | None:
    """Seconds a response stays fresh in a shared cache; None means no freshness information at all.

    Order: Surrogate-Control max-age (aimed at us) > s-maxage > max-age > Expires - Date > heuristic.
    """
    sc = h.delta(rd.surrogate, "max-age")
    if sc is not None:
        return float(sc)
    s_maxage = h.delta(rd.cc, "s-maxage")
    if s_maxage is not None:
        return float(s_maxage)
    max_age = h.delta(rd.cc, "max-age")
    if max_age is not None:
        return float(max_age)
    date = _date_value(headers, response_time)
    expires_fields = h.get_all(headers, "expires")
    if expires_fields:
        expires = h.parse_http_date(expires_fields[0]) if len(expires_fields) == 1 else None
        if expires is None:
            return 0.0  # RFC 9111 5.3: an invalid Expires means "already expired"
        return max(0.0, expires - date)
    last_modified = h.parse_http_date(h.get(headers, "last-modified"))
    if last_modified is not None and (status in HEURISTIC_STATUSES or rd.public):
        return min(HEURISTIC_CAP, max(0.0, (date - last_modified) * HEURISTIC_FRACTION))
    return None


def _date_value(headers: Headers, response_time: float) -> float:
    date = h.parse_http_date(h.get(headers, "date"))
    return response_time if date is None else date


@dataclass(slots=True)
class Verdict:
    """Whether to store a response; if not, the phase to report for it."""

    store: bool
    phase: CachePhase
    lifetime: float = 0.0


def storability(
    method: str,
    status: int,
    req: Mapping[str, str],
    resp_headers: Headers,
    response_time: float,
    surrogate_id: str = SURROGATE_ID,
) -> Verdict:
    """RFC 9111 3: may a shared cache store this response to this request?"""
    if method != "GET" or status < 200 or status in (206, 304):
        return Verdict(False, CachePhase.DYNAMIC)
    rd = ResponseDirectives.parse(resp_headers, surrogate_id)
    rq = RequestDirectives.parse(req)
    if "must-understand" in rd.cc:
        # RFC 9111 5.2.2.3: store only statuses we understand, and then no-store no longer applies.
        if status not in STORABLE_STATUSES:
            return Verdict(False, CachePhase.BYPASS)
    elif rd.no_store:
        return Verdict(False, CachePhase.BYPASS)
    if rq.no_store or rd.private:
        return Verdict(False, CachePhase.BYPASS)
    if "authorization" in req and not (rd.must_revalidate or rd.public or "s-maxage" in rd.cc):
        return Verdict(False, CachePhase.BYPASS)
    if "*" in vary_names(resp_headers):
        return Verdict(False, CachePhase.BYPASS)
    lifetime = freshness_lifetime(status, resp_headers, rd, response_time)
    if lifetime is None:
        has_validator = h.has(resp_headers, "etag") or h.has(resp_headers, "last-modified")
        if rd.no_cache or (status in HEURISTIC_STATUSES and has_validator):
            return Verdict(True, CachePhase.MISS, 0.0)  # stored to be revalidated on every use
        return Verdict(False, CachePhase.DYNAMIC)
    revalidatable = h.has(resp_headers, "etag") or h.has(resp_headers, "last-modified")
    usable_stale = rd.stale_if_error is not None or rd.stale_while_revalidate is not None
    if lifetime <= 0 and not revalidatable and not usable_stale:
        # Already stale and nothing to revalidate with: storing it would only waste memory.
        return Verdict(False, CachePhase.DYNAMIC)
    return Verdict(True, CachePhase.MISS, lifetime)


# --------------------------------------------------------------------------- Vary


def vary_names(headers: Headers) -> tuple[str, ...]:
    names: list[str] = []
    for name in h.split_list(h.get(headers, "vary")):
        name = name.lower()
        if name not in names:
            names.append(name)
    return tuple(sorted(names))


_WS = re.compile(r"\s*,\s*|\s+")


def _normalize(value: str | None) -> str | None:
    """Vary matching normalises list whitespace (RFC 9111 4.1 allows it): 'a, b' matches 'a,b'."""
    if value is None:
        return None
    return _WS.sub(lambda m: "," if "," in m.group() else " ", value.strip())


class Fields(Protocol):
    """Request fields by lowercase name: a dict, or the proxy's lazily decoded view of raw fields."""

    def get(self, name: str, /) -> str | None: ...


def vary_values(names: Iterable[str], req: Fields) -> tuple[str | None, ...]:
    return tuple(_normalize(req.get(n)) for n in names)


# --------------------------------------------------------------------------- stored entries


@dataclass(slots=True, eq=False)
class Entry:
    """One stored response (one variant of one cache key)."""

    key: str
    status: int
    reason: str
    headers: Headers
    body: bytes
    request_time: float
    response_time: float
    corrected_initial_age: float
    lifetime: float
    directives: ResponseDirectives
    vary: tuple[str, ...]
    vary_key: tuple[str | None, ...]
    tags: frozenset[str] = frozenset()
    etag: str | None = None
    last_modified: str | None = None
    # Serialised header block (proxy-owned); reset whenever headers change.
    wire: bytes | None = None
    size: int = 0
    refreshing: bool = False

    def age(self, now: float) -> float:
        return self.corrected_initial_age + max(0.0, now - self.response_time)

    def is_fresh(self, now: float) -> bool:
        return self.age(now) < self.lifetime

    def staleness(self, now: float) -> float:
        return self.age(now) - self.lifetime


def corrected_initial_age(headers: Headers, request_time: float, response_time: float) -> float:
    """RFC 9111 4.2.3: the age of the response when it arrived, from Age, Date and the round trip."""
    apparent = max(0.0, response_time - _date_value(headers, response_time))
    age_value = _age_value(headers)
    if age_value is None:
        return float(h.MAX_DELTA)
    corrected_age_value = age_value + max(0.0, response_time - request_time)
    return max(apparent, corrected_age_value)


def make_entry(
    key: str,
    status: int,
    reason: str,
    resp_headers: Headers,
    body: bytes,
    req: Mapping[str, str],
    request_time: float,
    response_time: float,
    lifetime: float,
    surrogate_id: str = SURROGATE_ID,
) -> Entry:
    rd = ResponseDirectives.parse(resp_headers, surrogate_id)
    drop = NOT_STORED | h.connection_tokens(resp_headers) | rd.stripped_fields()
    stored = [(k, v) for k, v in resp_headers if k.lower() not in drop]
    vary = vary_names(resp_headers)
    tags = frozenset(t.strip().lower() for t in h.split_list(h.get(resp_headers, "cache-tag")) if t.strip())
    size = len(body) + sum(len(k) + len(v) + 4 for k, v in stored) + 256
    return Entry(
        key=key,
        status=status,
        reason=reason,
        headers=stored,
        body=body,
        request_time=request_time,
        response_time=response_time,
        corrected_initial_age=corrected_initial_age(resp_headers, request_time, response_time),
        lifetime=lifetime,
        directives=rd,
        vary=vary,
        vary_key=vary_values(vary, req),
        tags=tags,
        etag=h.get(resp_headers, "etag"),
        last_modified=h.get(resp_headers, "last-modified"),
        size=size,
    )


def merge_304(entry: Entry, resp_headers: Headers, request_time: float, response_time: float,
              surrogate_id: str = SURROGATE_ID) -> Entry:
    """RFC 9111 4.3.4: a 304 replaces the stored fields it carries (framing excepted) and restarts age."""
    drop = NOT_STORED | h.connection_tokens(resp_headers) | NOT_UPDATED_BY_304
    incoming = [(k, v) for k, v in resp_headers if k.lower() not in drop]
    replaced = {k.lower() for k, _ in incoming}
    merged = [(k, v) for k, v in entry.headers if k.lower() not in replaced] + incoming
    # Freshness comes from the merged fields plus the Age of the 304 itself.
    calc = merged + [(k, v) for k, v in resp_headers if k.lower() == "age"]
    rd = ResponseDirectives.parse(calc, surrogate_id)
    lifetime = freshness_lifetime(entry.status, calc, rd, response_time)
    drop_fields = rd.stripped_fields()
    merged = [(k, v) for k, v in merged if k.lower() not in drop_fields]
    entry.headers = merged
    entry.directives = rd
    entry.lifetime = 0.0 if lifetime is None else lifetime
    entry.request_time = request_time
    entry.response_time = response_time
    entry.corrected_initial_age = corrected_initial_age(calc, request_time, response_time)
    entry.etag = h.get(merged, "etag")
    entry.last_modified = h.get(merged, "last-modified")
    entry.tags = frozenset(t.strip().lower() for t in h.split_list(h.get(merged, "cache-tag")) if t.strip())
    entry.wire = None
    return entry


# --------------------------------------------------------------------------- reuse decisions


class Reuse(enum.Enum):
    FRESH = "fresh"  # serve as HIT
    STALE_OK = "stale_ok"  # client's max-stale allows serving it stale (HIT, with a stale Age)
    SWR = "swr"  # serve stale now, refresh in the background (UPDATING)
    VALIDATE = "validate"  # must ask the origin first (conditional if we have validators)


def reuse(entry: Entry, rq: RequestDirectives, now: float) -> Reuse:
    """RFC 9111 4.2 / RFC 5861: how may a stored response answer this request right now?"""
    rd = entry.directives
    if rq.no_cache or rd.no_cache:
        return Reuse.VALIDATE
    age = entry.age(now)
    lifetime = entry.lifetime
    if rq.max_age is not None and age > rq.max_age:
        return Reuse.VALIDATE
    if rq.min_fresh is not None and lifetime - age < rq.min_fresh:
        return Reuse.VALIDATE
    if age < lifetime:
        return Reuse.FRESH
    if rd.must_revalidate:
        return Reuse.VALIDATE
    staleness = age - lifetime
    if rq.max_stale is not None and staleness <= rq.max_stale:
        return Reuse.STALE_OK
    swr = rd.stale_while_revalidate
    if swr is not None and staleness < swr:
        return Reuse.SWR
    return Reuse.VALIDATE


def may_serve_stale_on_error(
    entry: Entry, rq: RequestDirectives, now: float, disconnected: bool, max_disconnected_stale: float
) -> bool:
    """RFC 5861 4 (stale-if-error) and RFC 9111 4.2.4 (a disconnected cache may serve stale)."""
    rd = entry.directives
    if rd.must_revalidate or rd.no_cache or rq.no_cache:
        return False
    staleness = entry.staleness(now)
    windows = [w for w in (rd.stale_if_error, rq.stale_if_error) if w is not None]
    if any(staleness <= w for w in windows):
        return True
    return disconnected and staleness <= max_disconnected_stale


def validators(entry: Entry) -> Headers:
    """Conditional request fields to revalidate ``entry`` (RFC 9111 4.3.1)."""
    out: Headers = []
    if entry.etag is not None:
        out.append(("If-None-Match", entry.etag))
    if entry.last_modified is not None:
        out.append(("If-Modified-Since", entry.last_modified))
    return out


def client_not_modified(entry_headers: Headers, req: Mapping[str, str]) -> bool:
    """RFC 9110 13.1: does the client's own conditional make this a 304 for them?"""
    inm = h.parse_etags(req.get("if-none-match"))
    if inm is not None:
        etag = h.get(entry_headers, "etag")
        if inm == ["*"]:
            return True
        return etag is not None and any(h.weak_match(t, etag) for t in inm)
    ims = h.parse_http_date(req.get("if-modified-since"))
    if ims is not None:
        lm = h.parse_http_date(h.get(entry_headers, "last-modified"))
        if lm is None:
            lm = h.parse_http_date(h.get(entry_headers, "date"))
        return lm is not None and lm <= ims
    return False
