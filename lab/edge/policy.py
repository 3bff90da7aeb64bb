"""The edge's cache policy: what a request is answered with, what is stored, revalidated or fetched.

``CachePolicy`` answers the three questions a connection asks (lab/edge/connection.py): ``fast_hit``, a
plain request for a fresh stored response, serialised in one go without building a request object;
``respond_now``, anything else answerable without the origin (hits with conditionals or ranges,
stale-while-revalidate, the trace page); ``respond``, the rest (misses, revalidation, pass-through, with a
cache lock so concurrent misses make one origin fetch). The RFC 9111 rules themselves are in
lab/edge/cache.py; byte ranges, keys and an entry's wire form in lab/edge/stored.py.

``fast_hit`` and the general path give the same bytes (apart from Age and the ray id): the store's one
``fresh`` lookup decides for both, and tests/integration/test_proxy_loopback.py compares them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

import httptools
from anycastlab.edge import headers as h
from anycastlab.edge.cache import (
    INTERNAL_FIELDS,
    NOT_STORED,
    PLAIN_REQUEST,
    SAFE_METHODS,
    CachePhase,
    Entry,
    RequestDirectives,
    Reuse,
    client_not_modified,
    make_entry,
    may_serve_stale_on_error,
    merge_304,
    reuse,
    storability,
    validators,
)
from anycastlab.edge.config import ProxyConfig
from anycastlab.edge.headers import Headers
from anycastlab.edge.identity import TRACE_PATH, RayIds, TraceInfo, trace_body
from anycastlab.edge.messages import (
    NO_BODY_STATUSES,
    PHASE_LINES,
    Request,
    Response,
    error_response,
    header_fields,
)
from anycastlab.edge.metrics import Metrics
from anycastlab.edge.store import CacheLock, CacheStore
from anycastlab.edge.stored import NOT_FROM_ENTRY, entry_wire, host_key, range_response
from anycastlab.edge.upstream import OriginError, OriginResponse, Upstream

log = logging.getLogger("anycastlab.edge.proxy")

# Request fields that need the general path (they change how a stored response may be used or sent).
_RAY_MASK = RayIds.MASK  # a module global: one lookup less per inline hit
_SLOW_REQUEST_FIELDS = frozenset({
    b"cache-control", b"pragma", b"if-none-match", b"if-modified-since", b"if-match", b"if-unmodified-since",
    b"range", b"if-range", b"content-length", b"transfer-encoding", b"expect", b"upgrade",
})


class RawFields:
    """A request's fields as the general path's lowercase map would give them (cache.Fields), decoded
    only if someone reads one: only an entry with Vary needs the request's fields."""

    __slots__ = ("decoded", "raw")

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.raw = raw
        self.decoded: dict[str, str] | None = None

    def get(self, name: str, /) -> str | None:
        if self.decoded is None:
            self.decoded = header_fields(self.raw)[1]
        return self.decoded.get(name)


class CachePolicy:
    """One PoP's cache in front of its origin: the store, the cache lock and the origin pool."""

    def __init__(self, config: ProxyConfig, metrics: Metrics, rays: RayIds, identity: bytes,
                 ray_header: bytes) -> None:
        self.config = config
        self.metrics = metrics
        self.rays = rays
        self.identity = identity
        self.store = CacheStore(config.cache_bytes, config.max_object_bytes)
        self.lock = CacheLock(timeout=config.lock_timeout)
        self.upstream = Upstream(config.origin, connect_timeout=config.origin_connect_timeout,
                                 read_timeout=config.origin_read_timeout)
        self.background: set[asyncio.Task[Any]] = set()
        self._fast_hosts: dict[bytes, str] = {}
        self._fields = RawFields([])
        # An inline HIT is `wire, Age, identity + ray header, ray id, tail`, in the order the general path
        # writes it; the tail (the ray's PoP, cf-cache-status, Connection) is one of three, made once.
        self._before_ray = identity + ray_header + b": "
        after_ray = b"-" + config.pop.encode() + b"\r\n" + PHASE_LINES[CachePhase.HIT]
        self._tail_keep_alive = after_ray + b"\r\n"
        self._tail_http10 = after_ray + b"Connection: keep-alive\r\n\r\n"
        self._tail_close = after_ray + b"Connection: close\r\n\r\n"

    # ---------------------------------------------------------------- answering without the origin

    def fast_hit(self, parser: httptools.HttpRequestParser, url: bytes,
                 raw_headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """The hot path: a plain GET/HEAD for a fresh entry, serialised in one go.

        Anything this does not handle (conditionals, ranges, request directives, bodies, stale entries,
        trace) returns None and takes the general path, which gives the same answer slower.
        """
        method = parser.get_method()
        if (method != b"GET" and method != b"HEAD") or url[:1] != b"/" or url.startswith(b"/cdn-cgi/"):
            return None
        host = b""
        for name, value in raw_headers:
            lname = name.lower()
            if lname == b"host":
                host = value
            elif lname in _SLOW_REQUEST_FIELDS:
                return None
        hkey = self._fast_hosts.get(host)
        if hkey is None:
            if len(self._fast_hosts) > 1024:
                self._fast_hosts.clear()
            hkey = self._fast_hosts[host] = host_key(host.decode("latin-1"))
        now = time.time()
        fields = self._fields  # one view, re-pointed per request: the store does not keep it
        fields.raw = raw_headers
        fields.decoded = None
        entry = self.store.fresh(hkey + url.decode("latin-1"), fields, now)
        if entry is None:
            return None
        metrics = self.metrics
        metrics.requests += 1
        metrics.fast_hits += 1
        rays = self.rays
        ray = rays.value = (rays.value + 1) & _RAY_MASK
        if not parser.should_keep_alive():
            tail = self._tail_close
        elif parser.get_http_version() == "1.0":
            tail = self._tail_http10
        else:
            tail = self._tail_keep_alive
        elapsed = now - entry.response_time
        age = entry.corrected_initial_age + (elapsed if elapsed > 0.0 else 0.0)  # Entry.age, inlined; %d truncates
        out = b"%sAge: %d\r\n%s%016x%s" % (entry.wire or entry_wire(entry), age, self._before_ray, ray, tail)
        if method == b"GET":
            out += entry.body
        metrics.bytes_out += len(out)
        return out

    def key(self, req: Request) -> str:
        return host_key(req.hmap.get("host", "")) + req.target

    def respond_now(self, req: Request) -> Response | None:
        """Answer without the origin if we can (hits, trace); None means "needs the async path"."""
        if req.target.startswith("/cdn-cgi/"):
            return self._cdn_cgi(req)
        if req.method != "GET" and req.method != "HEAD":
            return None
        hmap = req.hmap
        entry = self.store.lookup(self.key(req), hmap)
        if entry is None:
            return None
        rq = RequestDirectives.parse(hmap) if ("cache-control" in hmap or "pragma" in hmap) else PLAIN_REQUEST
        return self._serve_stored(entry, req, rq)

    def _serve_stored(self, entry: Entry, req: Request, rq: RequestDirectives) -> Response | None:
        """A HIT, or stale-while-revalidate's UPDATING; None when the origin must be asked first."""
        now = time.time()
        decision = reuse(entry, rq, now)
        if decision is Reuse.FRESH or decision is Reuse.STALE_OK:
            return self._from_entry(entry, req, CachePhase.HIT, now)
        if decision is Reuse.SWR:
            self._start_refresh(entry, req)
            return self._from_entry(entry, req, CachePhase.STALE_UPDATING, now)
        return None

    def _cdn_cgi(self, req: Request) -> Response:
        path = req.target.split("?", 1)[0]
        if path != TRACE_PATH:
            return Response(404, "Not Found", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")],
                            b"not found\n")
        conn = req.conn
        ray = self.rays.next()
        info = TraceInfo(
            pop=self.config.pop, client_ip=conn.client_ip, host=req.hmap.get("host", ""), path=path,
            user_agent=req.hmap.get("user-agent", ""), http=f"http/{req.http_version}",
            tls=conn.tls_version, sni=conn.sni, ray=ray, scheme=conn.scheme,
        )
        return Response(200, "OK", [("Content-Type", "text/plain"), ("Cache-Control", "no-store")],
                        trace_body(info), ray=ray)

    def _from_entry(self, entry: Entry, req: Request, phase: CachePhase, now: float) -> Response:
        age = int(entry.age(now))
        hmap = req.hmap
        if entry.status == 200 and ("if-none-match" in hmap or "if-modified-since" in hmap) \
                and client_not_modified(entry.headers, hmap):
            hdrs = [(k, v) for k, v in entry.headers if k.lower() not in NOT_FROM_ENTRY]
            return Response(304, "Not Modified", hdrs, phase=phase, age=age)
        if "range" in hmap and entry.status == 200 and req.method == "GET":
            ranged = range_response(entry, hmap)
            if ranged is not None:
                ranged.phase = phase
                ranged.age = age
                return ranged
        return Response(entry.status, entry.reason, body=entry.body, wire=entry.wire or entry_wire(entry),
                        phase=phase, age=age)

    # ---------------------------------------------------------------- asking the origin

    async def respond(self, req: Request) -> Response:
        if req.method != "GET" and req.method != "HEAD":
            return await self._pass(req)
        key = self.key(req)
        hmap = req.hmap
        rq = RequestDirectives.parse(hmap)
        entry = self.store.lookup(key, hmap)
        if entry is None and rq.only_if_cached:
            return error_response(504)
        if entry is not None:
            stored = self._serve_stored(entry, req, rq)
            if stored is not None:
                return stored
        if self.lock.lead(key):
            try:
                return await self._fetch(req, key, entry, rq)
            finally:
                self.lock.release(key)
        self.metrics.coalesced += 1
        await self.lock.wait(key)
        entry = self.store.lookup(key, hmap)
        if entry is not None:
            now = time.time()
            if reuse(entry, rq, now) in (Reuse.FRESH, Reuse.STALE_OK):
                return self._from_entry(entry, req, CachePhase.HIT, now)
        return await self._fetch(req, key, entry, rq)

    def _start_refresh(self, entry: Entry, req: Request) -> None:
        key = entry.key
        if entry.refreshing or self.lock.locked(key):
            return
        entry.refreshing = True
        task = asyncio.get_running_loop().create_task(self._refresh(entry, req))
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def _refresh(self, entry: Entry, req: Request) -> None:
        key = entry.key
        try:
            if not self.lock.lead(key):
                return
            try:
                fetch_req = Request("GET", req.target, req.headers, req.hmap, b"", req.http_version, True,
                                    req.conn)
                resp = await self._fetch(fetch_req, key, entry, PLAIN_REQUEST)
                if resp.stream is not None:
                    async with contextlib.aclosing(resp.stream) as stream:
                        async for _ in stream:
                            pass
            finally:
                self.lock.release(key)
        except Exception:
            log.exception("background refresh of %s failed", key)
        finally:
            entry.refreshing = False

    def forward_headers(self, req: Request, *, strip_conditionals: bool) -> Headers:
        drop = set(h.HOP_BY_HOP) | h.connection_tokens(req.headers) | {"host", "x-forwarded-for",
                                                                        "surrogate-capability"}
        if strip_conditionals:
            drop |= {"if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range",
                     "range"}
        out = [(k, v) for k, v in req.headers if k.lower() not in drop]
        host = req.hmap.get("host")
        out.append(("Host", host if (self.config.preserve_host and host) else self.upstream.host_header))
        xff = req.hmap.get("x-forwarded-for")
        ip = req.conn.client_ip
        out.append(("X-Forwarded-For", f"{xff}, {ip}" if xff else ip))
        out.append(("X-Forwarded-Proto", req.conn.scheme))
        out.append(("Surrogate-Capability", f'{self.config.surrogate_id}="Surrogate/1.0"'))
        via = req.hmap.get("via")
        out = [(k, v) for k, v in out if k.lower() != "via"]
        out.append(("Via", f"{via}, 1.1 {self.config.pop}" if via else f"1.1 {self.config.pop}"))
        return out

    def _plain_headers(self, up: OriginResponse, keep_length: bool) -> Headers:
        drop = h.connection_tokens(up.headers) | INTERNAL_FIELDS | (NOT_STORED - {"age"})
        if not keep_length:
            drop = drop | {"content-length"}
        return [(k, v) for k, v in up.headers if k.lower() not in drop]

    async def _body(self, up: OriginResponse, limit: int) -> tuple[bytes, AsyncGenerator[bytes, None] | None]:
        data, complete = await up.read_up_to(limit)
        if complete:
            up.release()
            self.metrics.bytes_from_origin += len(data)
            return data, None

        async def rest() -> AsyncGenerator[bytes, None]:
            self.metrics.bytes_from_origin += len(data)
            yield data
            async for chunk in up.iter_rest():
                self.metrics.bytes_from_origin += len(chunk)
                yield chunk

        return b"", rest()

    def _origin_failed(self, exc: OriginError) -> Response:
        self.metrics.origin_errors += 1
        if exc.timeout:
            self.metrics.errors_504 += 1
            return error_response(504)
        self.metrics.errors_502 += 1
        return error_response(502)

    async def _fetch(self, req: Request, key: str, entry: Entry | None, rq: RequestDirectives) -> Response:
        """Miss or revalidation: one origin request, then store / merge / fall back to stale."""
        cfg = self.config
        conditional = entry is not None and req.method == "GET" and (
            entry.etag is not None or entry.last_modified is not None)
        fwd = self.forward_headers(req, strip_conditionals=entry is not None)
        if conditional:
            assert entry is not None
            fwd.extend(validators(entry))
        request_time = time.time()
        self.metrics.origin_fetches += 1
        try:
            up = await self.upstream.request(req.method, req.target, fwd, b"")
        except OriginError as exc:
            now = time.time()
            if entry is not None and may_serve_stale_on_error(entry, rq, now, True, cfg.max_disconnected_stale):
                self.metrics.origin_errors += 1
                return self._from_entry(entry, req, CachePhase.STALE, now)
            return self._origin_failed(exc)
        response_time = time.time()
        try:
            if up.status == 304 and conditional:
                assert entry is not None
                return self._revalidated(req, key, entry, up, request_time, response_time)
            if up.status >= 500 and entry is not None and may_serve_stale_on_error(
                    entry, rq, response_time, False, cfg.max_disconnected_stale):
                up.release()
                return self._from_entry(entry, req, CachePhase.STALE, response_time)
            return await self._fetched(req, key, entry, up, request_time, response_time)
        except OriginError as exc:
            return self._origin_failed(exc)

    def _revalidated(self, req: Request, key: str, entry: Entry, up: OriginResponse, request_time: float,
                     response_time: float) -> Response:
        """The origin's 304 refreshes what we stored (RFC 9111 4.3.4)."""
        up.release()
        old_size = entry.size
        merge_304(entry, up.headers, request_time, response_time, self.config.surrogate_id)
        if entry in (self.store.lookup(key, req.hmap),):
            self.store.resize(entry, old_size)
        else:
            self.store.put(entry)
        return self._from_entry(entry, req, CachePhase.REVALIDATED, response_time)

    async def _fetched(self, req: Request, key: str, entry: Entry | None, up: OriginResponse,
                       request_time: float, response_time: float) -> Response:
        """A full origin response: stored if it may be, then sent (buffered or streamed)."""
        cfg = self.config
        verdict = storability("GET", up.status, req.hmap, up.headers, response_time, cfg.surrogate_id)
        store = verdict.store and req.method == "GET"
        limit = self.store.max_object_bytes if store else cfg.buffer_bytes
        body, stream = await self._body(up, limit)
        phase = (CachePhase.EXPIRED if entry is not None else CachePhase.MISS) if verdict.store \
            else verdict.phase
        if stream is None and store:
            new = make_entry(key, up.status, up.reason, up.headers, body, req.hmap, request_time,
                             response_time, verdict.lifetime, cfg.surrogate_id)
            if self.store.put(new):
                if new.directives.stripped_fields():
                    # Fields named by no-cache="..."/private="..." go to this client, not to later ones.
                    return Response(up.status, up.reason, self._plain_headers(up, False), body, phase=phase)
                return self._from_entry(new, req, phase, response_time)
        elif entry is not None and req.method == "GET" and up.status < 500:
            self.store.remove(entry)  # superseded by a response we will not keep
        keep_length = req.method == "HEAD" or up.status in NO_BODY_STATUSES
        hdrs = self._plain_headers(up, keep_length or stream is not None)
        if stream is not None:
            hdrs = [(k, v) for k, v in hdrs if k.lower() != "content-length"]
            return Response(up.status, up.reason, hdrs, phase=phase, stream=stream,
                            length=up.content_length)
        return Response(up.status, up.reason, hdrs, body, phase=phase)

    async def _pass(self, req: Request) -> Response:
        """Unsafe and other non-cacheable methods: forward, then invalidate what they changed."""
        fwd = self.forward_headers(req, strip_conditionals=False)
        self.metrics.origin_fetches += 1
        try:
            up = await self.upstream.request(req.method, req.target, fwd, req.body)
        except OriginError as exc:
            return self._origin_failed(exc)
        try:
            if req.method not in SAFE_METHODS and 200 <= up.status < 400:
                self._invalidate_after_unsafe(req, up.headers)
            body, stream = await self._body(up, self.config.buffer_bytes)
        except OriginError as exc:
            return self._origin_failed(exc)
        keep_length = up.status in NO_BODY_STATUSES
        hdrs = self._plain_headers(up, keep_length)
        if stream is not None:
            return Response(up.status, up.reason, hdrs, phase=CachePhase.DYNAMIC, stream=stream,
                            length=up.content_length)
        return Response(up.status, up.reason, hdrs, body, phase=CachePhase.DYNAMIC)

    def _invalidate_after_unsafe(self, req: Request, resp_headers: Headers) -> None:
        """RFC 9111 4.4: invalidate the target URI, and Location / Content-Location on the same host."""
        host = host_key(req.hmap.get("host", ""))
        self.store.invalidate(host + req.target)
        for name in ("location", "content-location"):
            value = h.get(resp_headers, name)
            if not value:
                continue
            parts = urlsplit(value)
            if parts.netloc and host_key(parts.netloc) != host:
                continue
            path = parts.path or "/"
            if not path.startswith("/"):
                base = req.target.split("?", 1)[0]
                path = base.rsplit("/", 1)[0] + "/" + path
            self.store.invalidate(host + path + ("?" + parts.query if parts.query else ""))
