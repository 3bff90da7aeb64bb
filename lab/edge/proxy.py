"""The edge proxy server: HTTP/1.1 (and HTTPS) on uvloop + httptools, cache in front, origin behind.

The client side is a hand-written asyncio Protocol because that is what makes a cache hit cheap: a hit
is answered synchronously inside ``data_received`` (no task, no await) from a pre-serialised header
block. Only misses, revalidations and pass-through requests become tasks that talk to the origin.

Bad input is answered, never fatal: malformed -> 400, oversized head -> 431, long URL -> 414, big body
-> 413, slow client -> 408 and close, broken origin -> 502, origin timeout -> 504. Memory is bounded by
the header/body limits per connection, a connection cap, a pipelining cap, write-side backpressure and
the cache's byte budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
from anycastlab.edge import headers as h
from anycastlab.edge.cache import (
    INTERNAL_FIELDS,
    NOT_STORED,
    SAFE_METHODS,
    SURROGATE_ID,
    CacheLock,
    CachePhase,
    CacheStore,
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
from anycastlab.edge.headers import Headers
from anycastlab.edge.identity import RAY_HEADER, TRACE_PATH, RayIds, TraceInfo, static_header_block, trace_body
from anycastlab.edge.metrics import Metrics
from anycastlab.edge.runner import serve
from anycastlab.edge.tls import SniContexts, sni_of
from anycastlab.edge.upstream import OriginError, OriginResponse, Upstream

log = logging.getLogger("anycastlab.edge.proxy")

NO_BODY_STATUSES = frozenset({204, 304})
_NO_DIRECTIVES = RequestDirectives()
_PHASE_LINES = {p: f"cf-cache-status: {p.cf_status}\r\n".encode() for p in CachePhase}
_INF = float("inf")
# Request fields that need the general path (they change how a stored response may be used or sent).
_SLOW_REQUEST_FIELDS = frozenset({
    b"cache-control", b"pragma", b"if-none-match", b"if-modified-since", b"if-match", b"if-unmodified-since",
    b"range", b"if-range", b"content-length", b"transfer-encoding", b"expect", b"upgrade",
})
# Framing is recomputed per response; internal fields (Surrogate-Control, Cache-Tag) stay in the PoP.
_NOT_FROM_ENTRY = INTERNAL_FIELDS | {"content-length", "transfer-encoding"}


@dataclass
class ProxyConfig:
    """Everything one proxy instance needs; the CLI and the lab both build one of these."""

    origin: str
    pop: str = "LAB"
    listen: list[tuple[str, int]] = field(default_factory=list)
    tls_listen: list[tuple[str, int]] = field(default_factory=list)
    tls: SniContexts | None = None
    mgmt_socket: Path | None = None
    cache_bytes: int = 256 << 20
    max_object_bytes: int = 16 << 20
    buffer_bytes: int = 1 << 20  # uncacheable bodies larger than this are streamed, not buffered
    max_header_bytes: int = 16384
    max_url_bytes: int = 8192
    max_headers: int = 100
    max_body_bytes: int = 8 << 20
    max_pipeline: int = 32
    max_connections: int = 8192
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 30.0
    origin_connect_timeout: float = 3.0
    origin_read_timeout: float = 30.0
    lock_timeout: float = 10.0
    max_disconnected_stale: float = 86400.0
    preserve_host: bool = True
    surrogate_id: str = SURROGATE_ID
    reuse_port: bool = False


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: Headers
    hmap: dict[str, str]
    body: bytes
    http_version: str
    keep_alive: bool
    conn: ClientConnection


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    entry: Entry | None = None  # served from storage: the head comes from the entry's wire cache
    phase: CachePhase | None = None
    age: int | None = None
    stream: AsyncGenerator[bytes, None] | None = None
    length: int | None = None  # declared Content-Length of a streamed body, None for chunked
    close: bool = False
    ray: str | None = None  # set when the body already quotes the ray id (trace)


# A Host value (RFC 9110 7.2 uri-host [":" port]): reg-name, IPv4 or an IP-literal; empty is allowed.
_HOST_VALUE = re.compile(rb"^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$")


class _Reject(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
            431: "Request Header Fields Too Large", 501: "Not Implemented", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def error_response(status: int, close: bool = False) -> Response:
    reason = _REASONS.get(status, "Error")
    return Response(status, reason, [("Content-Type", "text/plain"), ("Cache-Control", "no-store")],
                    f"{status} {reason}\n".encode(), close=close)


def _entry_wire(entry: Entry) -> bytes:
    parts = [f"HTTP/1.1 {entry.status} {entry.reason}\r\n"]
    parts.extend(f"{k}: {v}\r\n" for k, v in entry.headers if k.lower() not in _NOT_FROM_ENTRY)
    if entry.status not in NO_BODY_STATUSES:
        parts.append(f"Content-Length: {len(entry.body)}\r\n")
    wire = "".join(parts).encode("latin-1", "replace")
    entry.wire = wire
    return wire


class ClientConnection(asyncio.Protocol):
    """One client connection: parse with httptools, answer hits inline, queue the rest in order."""

    def __init__(self, proxy: EdgeProxy, scheme: str) -> None:
        self.proxy = proxy
        self.scheme = scheme
        self.cfg = proxy.config
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.client_ip = ""
        self.tls_version = "off"
        self.sni = "off"
        self.deadline = _INF
        self.in_message = False
        self.busy = False
        self.closed = False
        self.write_paused = False
        self.drained: asyncio.Event | None = None
        self.queue: deque[Request] = deque()
        self.task: asyncio.Task[None] | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._hosts = 0  # Host fields in the current request
        self._in_head = True
        self._head_bytes = 0
        self._field_bytes = 0
        self.pending_reject = 0
        self._body: list[bytes] = []
        self._body_bytes = 0

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        proxy = self.proxy
        metrics = proxy.metrics
        metrics.connections += 1
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client_ip = str(peer[0])
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None:
            metrics.tls_handshakes += 1
            if sslobj.session_reused:
                metrics.tls_resumptions += 1
            self.tls_version = sslobj.version() or "off"
            self.sni = sni_of(sslobj) or "off"
        if len(proxy.connections) >= self.cfg.max_connections:
            transport.abort()
            self.closed = True
            return
        proxy.connections.add(self)
        self.deadline = proxy.coarse_now + self.cfg.header_timeout

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.proxy.connections.discard(self)
        if self.task is not None and not self.task.done():
            self.task.cancel()
        if self.drained is not None:
            self.drained.set()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.transport is not None:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drained is not None:
            self.drained.set()
        if not self.busy and not self.closed and self.transport is not None:
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if self._in_head:
            # Bound what httptools buffers for an unfinished head (it keeps partial fields itself).
            self._head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            ctx = exc.__context__
            status = ctx.status if isinstance(ctx, _Reject) else 400
            self._reject(status)
        except httptools.HttpParserUpgrade:
            self._reject(400)
        except httptools.HttpParserError:
            self._reject(400)
        else:
            if self._in_head and self._head_bytes > self.cfg.max_header_bytes + self.cfg.max_url_bytes:
                self._reject(431)

    def eof_received(self) -> bool | None:
        return None

    # ---------------------------------------------------------------- httptools callbacks

    def on_message_begin(self) -> None:
        self.in_message = True
        self._url = b""
        self._headers = []
        self._hosts = 0
        self._field_bytes = 0
        self._body = []
        self._body_bytes = 0
        self.deadline = self.proxy.coarse_now + self.cfg.header_timeout

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.cfg.max_url_bytes:
            raise _Reject(414)

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        headers.append((name, value))
        if len(name) == 4 and name.lower() == b"host":
            self._hosts += 1
            if self._hosts > 1 or not _HOST_VALUE.match(value):
                raise _Reject(400)  # RFC 9112 3.2: more than one Host, or an invalid one
        self._field_bytes += len(name) + len(value) + 4
        if len(headers) > self.cfg.max_headers or self._field_bytes > self.cfg.max_header_bytes:
            raise _Reject(431)

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self._hosts and self.parser.get_http_version() == "1.1":
            raise _Reject(400)  # RFC 9112 3.2: an HTTP/1.1 request must carry Host
        # The body gets its own deadline, counted once: a trickling upload cannot extend it.
        self.deadline = self.proxy.coarse_now + self.cfg.body_timeout

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.cfg.max_body_bytes:
            raise _Reject(413)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self.in_message = False
        self._in_head = True
        self._head_bytes = 0
        parser = self.parser
        if not self.busy and not self.queue:
            wire = self.proxy.fast_hit(parser, self._url, self._headers)
            if wire is not None:
                transport = self.transport
                if transport is not None:
                    transport.write(wire)
                    if not parser.should_keep_alive():
                        self.close()
                    else:
                        self.deadline = self.proxy.coarse_now + self.cfg.keepalive_timeout
                return
        hdrs: Headers = []
        hmap: dict[str, str] = {}
        for n, v in self._headers:
            name = n.decode("latin-1")
            value = v.decode("latin-1")
            hdrs.append((name, value))
            key = name.lower()
            if key in hmap:
                hmap[key] = hmap[key] + ", " + value
            else:
                hmap[key] = value
        method = parser.get_method().decode("ascii", "replace")
        target = self._url.decode("latin-1")
        if not target.startswith("/"):
            # absolute-form (RFC 9112 3.2.2): the authority replaces Host
            parts = urlsplit(target)
            if parts.netloc:
                hmap["host"] = parts.netloc
                target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            elif target != "*":
                raise _Reject(400)
        req = Request(method, target, hdrs, hmap, b"".join(self._body) if self._body else b"",
                      parser.get_http_version(), parser.should_keep_alive(), self)
        self.deadline = _INF
        if self.busy or self.queue:
            if len(self.queue) >= self.cfg.max_pipeline:
                raise _Reject(400)
            self.queue.append(req)
            return
        self._dispatch(req)

    # ---------------------------------------------------------------- request flow

    def _dispatch(self, req: Request) -> None:
        proxy = self.proxy
        proxy.metrics.requests += 1
        try:
            resp = proxy.respond_now(req)
        except Exception:
            log.exception("respond_now failed")
            resp = error_response(502)
        if resp is not None:
            self._send(req, resp)
            return
        self.busy = True
        assert self.transport is not None
        self.transport.pause_reading()
        self.task = proxy.loop.create_task(self._run(req))

    async def _run(self, req: Request) -> None:
        try:
            try:
                resp = await self.proxy.respond(req)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("respond failed for %s %s", req.method, req.target)
                resp = error_response(502)
            if resp.stream is not None:
                await self._send_stream(req, resp)
            else:
                self._send(req, resp)
        finally:
            self.task = None
            self.busy = False
        if self.pending_reject:
            self._reject(self.pending_reject)
            return
        while self.queue and not self.busy and not self.closed:
            self._dispatch(self.queue.popleft())
        if not self.busy and not self.closed and not self.write_paused and self.transport is not None:
            self.transport.resume_reading()

    def _head(self, req: Request, resp: Response, framing: bytes) -> bytes:
        proxy = self.proxy
        parts: list[bytes] = []
        entry = resp.entry
        if entry is not None:
            parts.append(entry.wire or _entry_wire(entry))
        else:
            parts.append(f"HTTP/1.1 {resp.status} {resp.reason}\r\n".encode("latin-1", "replace"))
            parts.append("".join(f"{k}: {v}\r\n" for k, v in resp.headers).encode("latin-1", "replace"))
            parts.append(framing)
        if resp.age is not None:
            parts.append(b"Age: %d\r\n" % resp.age)
        parts.append(proxy.identity)
        ray = resp.ray or proxy.rays.next()
        parts.append(b"%s: %s\r\n" % (proxy.ray_header, ray.encode()))
        if resp.phase is not None:
            parts.append(_PHASE_LINES[resp.phase])
            proxy.metrics.count_status(resp.phase.value)
        if resp.close or not req.keep_alive:
            parts.append(b"Connection: close\r\n")
        elif req.http_version == "1.0":
            parts.append(b"Connection: keep-alive\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)

    def _send(self, req: Request, resp: Response) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        head_only = req.method == "HEAD" or resp.status in NO_BODY_STATUSES or resp.status < 200
        body = resp.entry.body if resp.entry is not None else resp.body
        framing = b"" if head_only else b"Content-Length: %d\r\n" % len(body)
        data = self._head(req, resp, framing)
        if not head_only:
            data += body
        self.proxy.metrics.bytes_out += len(data)
        transport.write(data)
        self._after_response(req, resp)

    async def _send_stream(self, req: Request, resp: Response) -> None:
        transport = self.transport
        assert resp.stream is not None
        async with contextlib.aclosing(resp.stream) as stream:
            if transport is None or self.closed:
                return
            chunked = resp.length is None
            framing = (b"Transfer-Encoding: chunked\r\n" if resp.length is None
                       else b"Content-Length: %d\r\n" % resp.length)
            transport.write(self._head(req, resp, framing))
            try:
                async for chunk in stream:
                    if self.closed:
                        return
                    self.proxy.metrics.bytes_out += len(chunk)
                    transport.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                    if self.write_paused:
                        self.drained = asyncio.Event()
                        try:
                            await asyncio.wait_for(self.drained.wait(), self.cfg.keepalive_timeout)
                        except TimeoutError:
                            # A client that stops reading does not get to hold the origin body open.
                            self.proxy.metrics.timeouts += 1
                            transport.abort()
                            self.closed = True
                            return
                        self.drained = None
            except OriginError:
                # The body is cut short: the only honest signal left is to drop the connection.
                self.proxy.metrics.errors_502 += 1
                transport.abort()
                self.closed = True
                return
            if chunked:
                transport.write(b"0\r\n\r\n")
        self._after_response(req, resp)

    def _after_response(self, req: Request, resp: Response) -> None:
        if resp.close or not req.keep_alive:
            self.close()
        elif not self.busy:
            self.deadline = self.proxy.coarse_now + self.cfg.keepalive_timeout

    def _reject(self, status: int) -> None:
        """Answer a request we could not parse or accept, then close: the stream is out of sync."""
        self.queue.clear()
        if self.busy:
            # A response is still being produced for an earlier request: answer after it, then close.
            self.pending_reject = status
            if self.transport is not None:
                self.transport.pause_reading()
            return
        metrics = self.proxy.metrics
        if status == 400:
            metrics.errors_400 += 1
        elif status == 413:
            metrics.errors_413 += 1
        elif status == 414:
            metrics.errors_414 += 1
        elif status == 431:
            metrics.errors_431 += 1
        if self.transport is not None and not self.closed:
            resp = error_response(status, close=True)
            dummy = Request("GET", "/", [], {}, b"", "1.1", False, self)
            self._send(dummy, resp)
        self.close()

    def timed_out(self) -> None:
        self.proxy.metrics.timeouts += 1
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size() > 0:
            # It is not reading what we already sent: close() would wait for it forever.
            transport.abort()
            self.closed = True
            self.proxy.connections.discard(self)
            return
        if self.in_message and transport is not None and not self.busy:
            resp = error_response(408, close=True)
            dummy = Request("GET", "/", [], {}, b"", "1.1", False, self)
            self._send(dummy, resp)
        self.close()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
        self.proxy.connections.discard(self)


class EdgeProxy:
    """One PoP's proxy: listeners, cache, origin pool, counters and the management API."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.store = CacheStore(config.cache_bytes, config.max_object_bytes)
        self.lock = CacheLock(timeout=config.lock_timeout)
        self.metrics = Metrics()
        self.rays = RayIds(config.pop)
        self.identity = static_header_block(config.pop)
        self.ray_header = RAY_HEADER.encode()
        self.upstream = Upstream(config.origin, connect_timeout=config.origin_connect_timeout,
                                 read_timeout=config.origin_read_timeout)
        self.connections: set[ClientConnection] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.bound: list[tuple[str, str, int]] = []  # (scheme, host, port)
        self._background: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._mgmt: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # loop.time() refreshed by the sweeper: deadlines need ~0.5 s precision, not a clock call per request
        self.coarse_now = 0.0
        self._fast_hosts: dict[bytes, str] = {}
        self._ray_suffix = b"-" + config.pop.encode() + b"\r\n"
        self._hit_tail = _PHASE_LINES[CachePhase.HIT] + b"\r\n"

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.coarse_now = self._loop.time()
        cfg = self.config
        for scheme, addrs in (("http", cfg.listen), ("https", cfg.tls_listen)):
            for host, port in addrs:
                ssl_ctx = None
                if scheme == "https":
                    if cfg.tls is None:
                        raise ValueError("TLS listener configured without certificates")
                    ssl_ctx = cfg.tls.default
                server = await self.loop.create_server(
                    self._factory(scheme), host, port, ssl=ssl_ctx, backlog=1024,
                    reuse_address=True, reuse_port=cfg.reuse_port or None,
                    ssl_handshake_timeout=cfg.header_timeout if ssl_ctx else None,
                )
                self.servers.append(server)
                for sock in server.sockets:
                    name = sock.getsockname()
                    self.bound.append((scheme, str(name[0]), int(name[1])))
        if cfg.mgmt_socket is not None:
            from anycastlab.edge.mgmt import start_mgmt  # aiohttp: only for a proxy with a management socket

            self._mgmt = await start_mgmt(self, cfg.mgmt_socket)
        self._sweeper = self.loop.create_task(self._sweep())

    def _factory(self, scheme: str) -> Callable[[], ClientConnection]:
        return lambda: ClientConnection(self, scheme)

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in list(self.connections):
            conn.close()
        for task in list(self._background):
            task.cancel()
        if self._mgmt is not None:
            await self._mgmt.cleanup()
        await self.upstream.close()
        for server in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _sweep(self) -> None:
        """Close connections past their deadline once a second (cheaper than a timer per request)."""
        while True:
            await asyncio.sleep(0.5)
            now = self.coarse_now = self.loop.time()
            for conn in [c for c in self.connections if c.deadline < now]:
                conn.timed_out()

    def health(self) -> dict[str, Any]:
        return {
            "ok": bool(self.servers) and all(s.is_serving() for s in self.servers),
            "pop": self.config.pop,
            "listeners": [f"{s}://{host}:{port}" for s, host, port in self.bound],
            "origin": self.config.origin,
            "connections": len(self.connections),
        }

    def stats(self) -> dict[str, Any]:
        data = self.metrics.snapshot()
        data["pop"] = self.config.pop
        data["cache"] = {
            "entries": self.store.stats.entries,
            "bytes": self.store.stats.bytes,
            "max_bytes": self.store.max_bytes,
            "evictions": self.store.stats.evictions,
            "purged": self.store.stats.purged,
        }
        data["connections_open"] = len(self.connections)
        return data

    def set_origin(self, origin: str) -> str:
        """Send later misses to another upstream (the lab's tiered cache repoints lower tiers at runtime).
        Returns the origin now in use.

        Requests already talking to the old upstream finish there; its idle connections are closed."""
        old = self.upstream
        self.upstream = Upstream(origin, connect_timeout=self.config.origin_connect_timeout,
                                 read_timeout=self.config.origin_read_timeout)
        self.config.origin = origin
        task = self.loop.create_task(old.drain())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return origin

    # ---------------------------------------------------------------- purge

    def purge_url(self, url: str) -> int:
        """Purge one URL; a bare path (`/static/app.js`) is purged under every Host the cache holds it for."""
        self.metrics.purges += 1
        if url.startswith("/"):
            target = url_key("x" + url)[1:]  # the path and query as a cache key has them
            cached = self.store.keys()
            keys = [k for k in cached if k.endswith(target) and "/" not in k[:len(k) - len(target)]]
            return sum(self.store.purge_key(k) for k in keys)
        return self.store.purge_key(url_key(url))

    def purge_tag(self, tag: str) -> int:
        self.metrics.purges += 1
        return self.store.purge_tag(tag)

    def purge_all(self) -> int:
        self.metrics.purges += 1
        return self.store.purge_all()

    # ---------------------------------------------------------------- responding

    def fast_hit(self, parser: Any, url: bytes, raw_headers: list[tuple[bytes, bytes]]) -> bytes | None:
        """The hot path: a plain GET/HEAD for a fresh, Vary-free entry, serialised in one go.

        Anything this does not handle (conditionals, ranges, request directives, Vary, bodies, stale
        entries, trace) returns None and takes the general path, which gives the same answer slower.
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
        key = hkey + url.decode("latin-1")
        variants = self.store._entries.get(key)
        if variants is None or len(variants) != 1:
            return None
        entry = variants[0]
        if entry.vary or entry.directives.no_cache:
            return None
        age = entry.corrected_initial_age + (time.time() - entry.response_time)
        if age >= entry.lifetime or age < 0:
            return None
        self.store._entries.move_to_end(key)
        metrics = self.metrics
        metrics.requests += 1
        metrics.fast_hits += 1
        rays = self.rays
        ray = rays.value = (rays.value + 1) & 0xFFFFFFFFFFFFFFFF
        head = b"%sAge: %d\r\n%scf-ray: %016x%s" % (
            entry.wire or _entry_wire(entry), age, self.identity, ray, self._ray_suffix)
        if parser.should_keep_alive():
            if parser.get_http_version() == "1.0":
                head += b"Connection: keep-alive\r\n"
        else:
            head += b"Connection: close\r\n"
        out = head + self._hit_tail
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
        rq = RequestDirectives.parse(hmap) if ("cache-control" in hmap or "pragma" in hmap) else _NO_DIRECTIVES
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
            hdrs = [(k, v) for k, v in entry.headers if k.lower() not in _NOT_FROM_ENTRY]
            return Response(304, "Not Modified", hdrs, phase=phase, age=age)
        if "range" in hmap and entry.status == 200 and req.method == "GET":
            ranged = _range_response(entry, hmap)
            if ranged is not None:
                ranged.phase = phase
                ranged.age = age
                return ranged
        return Response(entry.status, entry.reason, entry=entry, phase=phase, age=age)

    def _start_refresh(self, entry: Entry, req: Request) -> None:
        key = entry.key
        if entry.refreshing or self.lock.locked(key):
            return
        entry.refreshing = True
        task = self.loop.create_task(self._refresh(entry, req))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh(self, entry: Entry, req: Request) -> None:
        key = entry.key
        try:
            if not self.lock.lead(key):
                return
            try:
                fetch_req = Request("GET", req.target, req.headers, req.hmap, b"", req.http_version, True,
                                    req.conn)
                resp = await self._fetch(fetch_req, key, entry, _NO_DIRECTIVES)
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
                up.release()
                old_size = entry.size
                merge_304(entry, up.headers, request_time, response_time, cfg.surrogate_id)
                if entry in (self.store.lookup(key, req.hmap),):
                    self.store.resize(entry, old_size)
                else:
                    self.store.put(entry)
                return self._from_entry(entry, req, CachePhase.REVALIDATED, response_time)
            if up.status >= 500 and entry is not None and may_serve_stale_on_error(
                    entry, rq, response_time, False, cfg.max_disconnected_stale):
                up.release()
                return self._from_entry(entry, req, CachePhase.STALE, response_time)
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
        except OriginError as exc:
            return self._origin_failed(exc)

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


def host_key(host: str) -> str:
    """The host part of a cache key: lowercased, default ports dropped (http and https share entries)."""
    host = host.strip().lower()
    if host.endswith(":80"):
        return host[:-3]
    if host.endswith(":443"):
        return host[:-4]
    return host


def url_key(url: str) -> str:
    """The cache key for a purge URL (``http://host/path?q``, ``https://...`` or ``host/path``)."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    return host_key(parts.netloc) + (parts.path or "/") + ("?" + parts.query if parts.query else "")


def _range_response(entry: Entry, hmap: dict[str, str]) -> Response | None:
    """Serve a single byte range from a stored full response (RFC 9110 14); None = send it all."""
    if_range = hmap.get("if-range")
    if if_range is not None:
        etag = entry.etag
        if if_range.startswith('"') or if_range.startswith("W/"):
            if etag is None or etag.startswith("W/") or etag != if_range:
                return None
        elif if_range != entry.last_modified:
            return None
    spec = hmap["range"].strip()
    if not spec.lower().startswith("bytes=") or "," in spec:
        return None
    first, dash, last = spec[6:].strip().partition("-")
    size = len(entry.body)
    if not dash:
        return None
    try:
        if first == "":
            n = int(last)
            start, end = max(0, size - n), size - 1
            if n == 0:
                start = size
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if end < start:
                return None
    except ValueError:
        return None
    hdrs = [(k, v) for k, v in entry.headers if k.lower() not in _NOT_FROM_ENTRY | {"content-range"}]
    if start >= size:
        return Response(416, "Range Not Satisfiable", [*hdrs, ("Content-Range", f"bytes */{size}")])
    return Response(206, "Partial Content", [*hdrs, ("Content-Range", f"bytes {start}-{end}/{size}")],
                    entry.body[start:end + 1])


async def run_proxy(config: ProxyConfig, ready: Callable[[EdgeProxy], None] | None = None) -> None:
    """Run one proxy until cancelled (the CLI cancels on SIGINT/SIGTERM)."""
    await serve(EdgeProxy(config), ready)
