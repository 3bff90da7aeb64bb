"""Origin fetches: a small keep-alive HTTP/1.1 client pool built on httptools' response parser.

A proxy needs exact control over what it sends and what it accepts: no added User-Agent or
Accept-Encoding, no decompression, no redirects or cookies, raw header order kept, and tolerance for an
origin that sends bytes past its Content-Length (the response is used, the connection is not reused).
General-purpose clients get in the way of all of these, so this is a purpose-built one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools
from anycastlab.edge.headers import Headers

_HIGH_WATER = 1 << 20  # pause reading the origin once this much body is buffered unread


class OriginError(Exception):
    """The origin could not be reached or sent something that is not HTTP; flags say which."""

    def __init__(self, message: str, *, timeout: bool = False, connect: bool = False) -> None:
        super().__init__(message)
        self.timeout = timeout
        self.connect = connect


class _OriginConnection(asyncio.Protocol):
    """One connection to the origin; carries one request/response at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.reusable = True
        self.head: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.wake: asyncio.Event = asyncio.Event()
        self.done = False
        self.error: OriginError | None = None
        self.head_only = False
        self.received_any = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: Headers = []
        self.length_known = False
        self.headers_done = False

    def start(self, head_only: bool) -> asyncio.Future[None]:
        self._reset()
        self.chunks.clear()
        self.buffered = 0
        self.done = False
        self.error = None
        self.head_only = head_only
        self.received_any = False
        self.wake = asyncio.Event()
        self.head = asyncio.get_running_loop().create_future()
        return self.head

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        if self.done or self.head is None:
            self.reusable = False  # bytes nobody asked for: this connection is out of sync
            self._close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.reusable = False
            if self.headers_done and (self.done or self.head_only):
                self._close()  # garbage after a complete message: keep the message, drop the connection
                return
            self._fail(OriginError(f"malformed origin response: {exc}"))
            self._close()

    def connection_lost(self, _exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self.headers_done and not self.done and not self.length_known:
            self._complete()  # a close-delimited body ends with the connection (RFC 9112 6.3)
        elif not self.done:
            self._fail(OriginError("origin closed the connection", connect=not self.received_any))
        self.wake.set()

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:
            return  # interim response; the final one follows
        self.headers_done = True
        for name, value in self.headers:
            lname = name.lower()
            if lname == "content-length" or (lname == "transfer-encoding" and "chunked" in value.lower()):
                self.length_known = True
        if self.status in (204, 304):
            self.length_known = True
        if not self.parser.should_keep_alive():
            self.reusable = False
        if self.head is not None and not self.head.done():
            self.head.set_result(None)
        if self.head_only:
            # httptools cannot be told "this answers a HEAD": take the head, retire the connection.
            self.reusable = False
            self._complete()

    def on_body(self, body: bytes) -> None:
        if self.head_only:
            return
        self.chunks.append(body)
        self.buffered += len(body)
        self.wake.set()
        if self.buffered > _HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200 and not self.headers_done:
            self._reset()
            return
        self._complete()

    def _complete(self) -> None:
        self.done = True
        self.wake.set()

    def _fail(self, error: OriginError) -> None:
        self.error = error
        if self.head is not None and not self.head.done():
            self.head.set_exception(error)
        self.wake.set()

    def _close(self) -> None:
        if self.transport is not None and not self.closed:
            self.closed = True
            self.transport.close()

    def take(self) -> bytes:
        data = b"".join(self.chunks)
        self.chunks.clear()
        self.buffered = 0
        if self.transport is not None and not self.closed and not self.done:
            self.transport.resume_reading()
        return data


@dataclass
class OriginResponse:
    status: int
    reason: str
    headers: Headers
    _conn: _OriginConnection
    _pool: Upstream
    _released: bool = False

    @property
    def content_length(self) -> int | None:
        for name, value in self.headers:
            if name.lower() == "content-length" and value.strip().isdigit():
                return int(value)
        return None

    async def _next(self) -> bytes:
        conn = self._conn
        while True:
            if conn.chunks:
                return conn.take()
            if conn.done:
                return b""
            if conn.error is not None:
                raise conn.error
            conn.wake.clear()
            try:
                await asyncio.wait_for(conn.wake.wait(), self._pool.read_timeout)
            except TimeoutError as exc:
                conn.reusable = False
                raise OriginError("origin body timed out", timeout=True) from exc

    async def read_up_to(self, limit: int) -> tuple[bytes, bool]:
        """Read the body until its end or until more than ``limit`` bytes; (data, complete)."""
        parts: list[bytes] = []
        total = 0
        try:
            while total <= limit:
                chunk = await self._next()
                if not chunk:
                    self.release()
                    return b"".join(parts), True
                parts.append(chunk)
                total += len(chunk)
        except BaseException:  # OriginError, or the client went away (cancelled): never reuse
            self.release()
            raise
        return b"".join(parts), False

    async def iter_rest(self) -> AsyncGenerator[bytes, None]:
        try:
            while True:
                chunk = await self._next()
                if not chunk:
                    return
                yield chunk
        finally:
            self.release()

    def release(self) -> None:
        """Give the connection back if the message was read completely, else close it."""
        if self._released:
            return
        self._released = True
        self._pool._give_back(self._conn)


class Upstream:
    """A keep-alive connection pool to one origin (``http://host:port[/base]``)."""

    def __init__(
        self,
        origin: str,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 30.0,
        max_idle: int = 64,
    ) -> None:
        parts = urlsplit(origin)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"origin must be an http:// URL with a host, not {origin!r}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.base_path = parts.path.rstrip("/")
        self.host_header = parts.netloc
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_idle = max_idle
        self._idle: list[_OriginConnection] = []

    async def close(self) -> None:
        for conn in self._idle:
            conn._close()
        self._idle.clear()

    def _give_back(self, conn: _OriginConnection) -> None:
        if conn.done and conn.reusable and not conn.closed and len(self._idle) < self.max_idle:
            conn.head = None
            self._idle.append(conn)
        else:
            conn._close()

    async def _connect(self) -> _OriginConnection:
        loop = asyncio.get_running_loop()
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(_OriginConnection, self.host, self.port), self.connect_timeout)
        except TimeoutError as exc:
            raise OriginError("origin connect timed out", timeout=True, connect=True) from exc
        except OSError as exc:
            raise OriginError(f"origin unreachable: {exc}", connect=True) from exc
        return proto

    async def request(self, method: str, target: str, headers: Headers, body: bytes) -> OriginResponse:
        """Send one request and wait for the response head; the body is left to read."""
        lines = [f"{method} {self.base_path}{target} HTTP/1.1\r\n"]
        lines.extend(f"{k}: {v}\r\n" for k, v in headers
                     if k.lower() not in ("content-length", "transfer-encoding", "connection"))
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append("\r\n")
        wire = "".join(lines).encode("latin-1", "replace") + body
        idempotent = method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE")
        while True:
            reused = False
            conn: _OriginConnection | None = None
            while self._idle:
                candidate = self._idle.pop()
                if not candidate.closed:
                    conn, reused = candidate, True
                    break
            if conn is None:
                conn = await self._connect()
            head = conn.start(head_only=method == "HEAD")
            assert conn.transport is not None
            conn.transport.write(wire)
            try:
                await asyncio.wait_for(asyncio.shield(head), self.read_timeout)
            except TimeoutError as exc:
                conn._close()
                raise OriginError("origin response timed out", timeout=True) from exc
            except OriginError:
                conn._close()
                if reused and idempotent and not conn.received_any:
                    continue  # the idle connection had been closed by the origin: retry on a fresh one
                raise
            except asyncio.CancelledError:
                conn._close()  # the response would arrive for nobody
                raise
            return OriginResponse(conn.status, conn.reason, conn.headers, conn, self)

    async def drain(self) -> None:
        """Close idle connections (used by tests that restart the origin)."""
        with contextlib.suppress(Exception):
            await self.close()
