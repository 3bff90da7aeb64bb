"""One client's HTTP/1.1 connection: httptools parsing, request limits, pipelining, keep-alive, timeouts,
and writing responses.

It is a hand-written asyncio Protocol because that is what makes a cache hit cheap: the edge's
``fast_hit`` may answer a request synchronously inside ``data_received`` (no task, no await). Everything
else goes to the edge's ``respond_now`` (synchronous answers) or ``respond`` (a task that may talk to the
origin), in request order. What to answer is the edge's business (lab/edge/policy.py); this module only
knows the ``Edge`` protocol below, so it never imports the policy or the proxy. Requests and responses
are the plain data of lab/edge/messages.py.

Bad input is answered, never fatal: malformed -> 400, oversized head -> 431, long URL -> 414, big body
-> 413, slow client -> 408 and close. Memory is bounded by the header/body limits, the pipelining cap and
write-side backpressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools
from anycastlab.edge.config import ProxyConfig
from anycastlab.edge.identity import RayIds
from anycastlab.edge.messages import (
    NO_BODY_STATUSES,
    PHASE_LINES,
    Request,
    Response,
    error_response,
    header_fields,
)
from anycastlab.edge.metrics import Metrics
from anycastlab.edge.tls import sni_of
from anycastlab.edge.upstream import OriginError

log = logging.getLogger("anycastlab.edge.proxy")

_INF = float("inf")
# A Host value (RFC 9110 7.2 uri-host [":" port]): reg-name, IPv4 or an IP-literal; empty is allowed.
_HOST_VALUE = re.compile(rb"^(?:[A-Za-z0-9\-._~!$&'()*+,;=%]*|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$")


# (parser, url, raw header fields) -> the whole response, or None
FastHit = Callable[[httptools.HttpRequestParser, bytes, list[tuple[bytes, bytes]]], bytes | None]


class Edge(Protocol):
    """What a connection needs of its proxy: the proxy imports this module, never the reverse."""

    config: ProxyConfig
    metrics: Metrics
    rays: RayIds
    identity: bytes  # the PoP's fixed identity fields, pre-encoded
    ray_header: bytes
    connections: set[ClientConnection]
    coarse_now: float  # loop.time(), refreshed twice a second

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    # The whole response to a plain request the edge can answer inline, or None. An attribute, not a
    # method, so the proxy can hand over its policy's bound method: no extra call on the hot path.
    fast_hit: FastHit

    def respond_now(self, req: Request) -> Response | None:
        """A response without waiting on anything, or None: then ``respond`` is awaited."""

    async def respond(self, req: Request) -> Response: ...


class _Reject(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status



_ERROR_COUNTERS = {400: "errors_400", 413: "errors_413", 414: "errors_414", 431: "errors_431"}


class ClientConnection(asyncio.Protocol):
    """One client connection: parse with httptools, answer hits inline, queue the rest in order."""

    def __init__(self, proxy: Edge, scheme: str) -> None:
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

    def connection_lost(self, _exc: Exception | None) -> None:
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
        req = self._request()
        self.deadline = _INF
        if self.busy or self.queue:
            if len(self.queue) >= self.cfg.max_pipeline:
                raise _Reject(400)
            self.queue.append(req)
            return
        self._dispatch(req)

    def _request(self) -> Request:
        parser = self.parser
        hdrs, hmap = header_fields(self._headers)
        target = self._url.decode("latin-1")
        if not target.startswith("/"):
            # absolute-form (RFC 9112 3.2.2): the authority replaces Host
            parts = urlsplit(target)
            if parts.netloc:
                hmap["host"] = parts.netloc
                target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
            elif target != "*":
                raise _Reject(400)
        return Request(parser.get_method().decode("ascii", "replace"), target, hdrs, hmap,
                       b"".join(self._body) if self._body else b"", parser.get_http_version(),
                       parser.should_keep_alive(), self)

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
        """The status line and fields; the edge's Age, identity, ray and cache status come last."""
        proxy = self.proxy
        parts: list[bytes] = []
        if resp.wire is not None:
            parts.append(resp.wire)
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
            parts.append(PHASE_LINES[resp.phase])
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
        body = resp.body
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
                    if self.write_paused and not await self._drained(transport):
                        return
            except OriginError:
                # The body is cut short: the only honest signal left is to drop the connection.
                self.proxy.metrics.errors_502 += 1
                transport.abort()
                self.closed = True
                return
            if chunked:
                transport.write(b"0\r\n\r\n")
        self._after_response(req, resp)

    async def _drained(self, transport: asyncio.Transport) -> bool:
        """Wait for the client to read what we wrote; False (connection aborted) if it does not in time."""
        self.drained = asyncio.Event()
        try:
            await asyncio.wait_for(self.drained.wait(), self.cfg.keepalive_timeout)
        except TimeoutError:
            # A client that stops reading does not get to hold the origin body open.
            self.proxy.metrics.timeouts += 1
            transport.abort()
            self.closed = True
            return False
        self.drained = None
        return True

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
        counter = _ERROR_COUNTERS.get(status)
        if counter is not None:
            metrics = self.proxy.metrics
            setattr(metrics, counter, getattr(metrics, counter) + 1)
        if self.transport is not None and not self.closed:
            self._send_error(status)
        self.close()

    def _send_error(self, status: int) -> None:
        dummy = Request("GET", "/", [], {}, b"", "1.1", False, self)
        self._send(dummy, error_response(status, close=True))

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
            self._send_error(408)
        self.close()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()
        self.proxy.connections.discard(self)
