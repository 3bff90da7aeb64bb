"""Background HTTP load for a drill: HTTPS from each client's namespace to the anycast address, through
whichever PoP BGP picks, on one long-lived keep-alive connection per client plus fresh connections.

Why a small HTTP/1.1 client of our own rather than curl: a keep-alive connection has to outlive the
fault to tell whether it survived, and each error is classified from the exception itself (reset,
timeout, TLS failure, 5xx, ...). Every socket is created inside its client's namespace (nsock.open_in)
and all of them are driven by one asyncio loop in one thread.

A GET whose connection was reset or refused before any byte of the answer arrived is retried once on a
new connection, as HTTP clients do for idempotent requests (RFC 9110 9.2.2): that is how a kept-alive
connection to a PoP the client no longer reaches shows up (reset on reuse), and how a handshake caught
mid-way by a route change does. The first failures are reported by class (`retried`), the broken
connections too (keep-alive survival); a request counts as failed only if its retry fails as well.
Timeouts and TLS failures are never retried.

Bounded: requests are paced by rate, every request has a timeout, and the load stops by itself after
`max_s` seconds or `max_requests` requests, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h11

from ..runtime import nsock
from ..runtime.state import RunningLab

HTTPS_PORT = 443
MAX_HEADER_BYTES = 64 * 1024
MAX_BODY_BYTES = 4 << 20
CLASSES = ("reset", "timeout", "tls", "5xx")  # always reported, even when zero
RETRYABLE = {"reset", "refused"}  # failed before any answer: a client may safely try a GET again


@dataclass(frozen=True)
class HttpRecord:
    """One request as the client saw it. `error` is None for an answer below 500."""

    t: float  # Unix time the request started
    client: str
    conn: str  # "keepalive" or "new"
    path: str
    status: int | None
    error: str | None
    pop: str | None  # the answering PoP (cf-pop)
    cache: str | None  # cf-cache-status
    ms: float
    retried: bool = False
    stage: str | None = None  # where a failed request stopped: connect, tls, request (sending) or response

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "t": round(self.t, 4), "ms": round(self.ms, 2)}


@dataclass
class KeepAlive:
    """One long-lived connection: when it opened and, if it broke, when and how."""

    client: str
    opened: float
    requests: int = 0
    broken: float | None = None
    reason: str | None = None
    pop: str | None = None


@dataclass
class Progress:
    """How far one attempt got, so a failure says where it happened."""

    stage: str = "connect"


class RequestFailed(Exception):
    def __init__(self, kind: str, detail: str, answered: bool = False) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind, self.answered = kind, answered


def classify(exc: BaseException, handshaking: bool) -> str:
    """The error class of a failed request, from what the client saw."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError | asyncio.IncompleteReadError | EOFError):
        return "reset"
    if isinstance(exc, ssl.SSLError):
        # An EOF mid-stream after the handshake is a dropped connection, not a TLS problem.
        return "tls" if handshaking or not isinstance(exc, ssl.SSLEOFError) else "reset"
    if isinstance(exc, OSError):
        return "unreachable" if exc.errno in (101, 113) else "other"
    return "other"


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-cased names; a field sent several times is joined with ", " (RFC 9110 5.3)
    close: bool  # the connection cannot carry another request
    trailers: dict[str, str] = field(default_factory=dict)


def new_parser() -> h11.Connection:
    """The client side of one HTTP/1.1 connection (h11: framing, keep-alive and trailers as RFC 9112 says)."""
    return h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)


def _fields(pairs: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for raw_name, raw_value in pairs:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        fields[name] = f"{fields[name]}, {value}" if name in fields else value
    return fields


async def read_response(reader: asyncio.StreamReader, parser: h11.Connection) -> Response:
    """Read one response to the request `parser` sent, dropping its body. A connection that ends mid-response
    raises IncompleteReadError (a reset, to `classify`); a malformed one is a failed, answered request."""
    head: h11.Response | None = None
    body = 0
    eof = False
    while True:
        try:
            event = parser.next_event()
        except h11.RemoteProtocolError as exc:
            if eof:
                raise asyncio.IncompleteReadError(b"", None) from exc
            raise RequestFailed("other", f"malformed response: {exc}", answered=True) from exc
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            eof = not data
            parser.receive_data(data)
        elif isinstance(event, h11.Response):
            head = event
        elif isinstance(event, h11.Data):
            body += len(event.data)
            if body > MAX_BODY_BYTES:
                raise RequestFailed("other", "response body too large", answered=True)
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            # MUST_CLOSE (Connection: close) or a body that ran until the server closed: no next request here
            close = eof or not (parser.our_state is h11.DONE and parser.their_state is h11.DONE)
            return Response(head.status_code, _fields(head.headers), close, _fields(event.headers))
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            raise asyncio.IncompleteReadError(b"", None)
        # an InformationalResponse (1xx) comes before the real one: read on


class Connection:
    """One TLS connection from a client's namespace to the anycast address."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = new_parser()
        self.used = 0

    @classmethod
    async def open(cls, pid: int, address: str, ctx: ssl.SSLContext, sni: str, progress: Progress) -> Connection:
        progress.stage = "connect"
        sock = nsock.open_in(pid, socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            await asyncio.get_running_loop().sock_connect(sock, (address, HTTPS_PORT))
        except BaseException:
            sock.close()
            raise
        progress.stage = "tls"
        try:
            reader, writer = await asyncio.open_connection(sock=sock, ssl=ctx, server_hostname=sni,
                                                           limit=MAX_HEADER_BYTES)
        except asyncio.CancelledError:  # a timeout: asyncio.timeout() turns it into TimeoutError
            sock.close()
            raise
        except Exception as exc:
            sock.close()
            kind = classify(exc, handshaking=True)
            raise RequestFailed(kind, str(exc) or type(exc).__name__) from exc
        return cls(reader, writer)

    async def get(self, host: str, path: str, close: bool, progress: Progress) -> Response:
        progress.stage = "request"
        if self.parser.our_state is h11.DONE and self.parser.their_state is h11.DONE:
            self.parser.start_next_cycle()  # the previous exchange ended cleanly: reuse the connection
        request = h11.Request(method="GET", target=path, headers=[
            ("Host", host), ("User-Agent", "anycastlab-drill"), ("Accept", "*/*"),
            ("Connection", "close" if close else "keep-alive")])
        self.writer.write((self.parser.send(request) or b"") + (self.parser.send(h11.EndOfMessage()) or b""))
        await self.writer.drain()
        self.used += 1
        progress.stage = "response"
        return await read_response(self.reader, self.parser)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        with contextlib.suppress(Exception):
            transport = self.writer.transport
            transport.abort()


@dataclass
class LoadSettings:
    clients: list[str]
    paths: list[str]
    keepalive_hz: float  # requests per client per second on its keep-alive connection (0: none)
    new_conn_hz: float  # requests per client per second, each on a new connection (0: none)
    timeout_s: float = 2.0
    max_s: float = 900.0
    max_requests: int = 500_000


@dataclass
class HttpLoad:
    """Runs the load in its own thread; `records` and `keepalives` fill in as it goes."""

    lab: RunningLab
    settings: LoadSettings
    ca: Path | None
    records: list[HttpRecord] = field(default_factory=list)
    keepalives: list[KeepAlive] = field(default_factory=list)
    first_try_failures: Counter[str] = field(default_factory=Counter)
    error: BaseException | None = None
    started: float = 0.0
    # Where each new connection of a client goes; None: the anycast address. DNS steering's experiment gives
    # a stub resolver here (lab/steering/stub.py), which raises RequestFailed("dns", ...) when it has nothing.
    resolve: Callable[[str], Awaitable[str]] | None = None

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="drill-http", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.host = self.lab.plan.topology.hostnames[0] if self.lab.plan.topology.hostnames else "localhost"
        self.address = str(self.lab.plan.topology.anycast.ip)
        self.run_token = secrets.token_hex(4)

    @property
    def warmup_s(self) -> float:
        """Long enough for every client to have asked for every path once (plus a margin)."""
        rate = self.settings.keepalive_hz + self.settings.new_conn_hz
        return len(self.settings.paths) / rate + 1.0 if rate > 0 else 0.0

    def start(self) -> None:
        self.started = time.time()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)
        self._thread.join(self.settings.timeout_s + 5)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by the runner
            self.error = exc

    def _context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca) if self.ca else None)
        if self.ca is None:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        ctx = self._context()
        deadline = time.monotonic() + self.settings.max_s
        tasks = []
        n = len(self.settings.clients)
        for i, client in enumerate(self.settings.clients):
            pid = self.lab.pid(client)
            offset = i / max(1, n)  # spread the clients over each period
            if self.settings.keepalive_hz > 0:
                tasks.append(asyncio.create_task(self._keepalive(client, pid, ctx, deadline, offset)))
            if self.settings.new_conn_hz > 0:
                tasks.append(asyncio.create_task(self._fresh(client, pid, ctx, deadline, offset)))
        if self._stop.is_set():  # stop() came before the loop had its event
            self._wake.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), max(0.0, deadline - time.monotonic()))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _budget_left(self) -> bool:
        return not self._stop.is_set() and len(self.records) < self.settings.max_requests

    async def _paced(self, hz: float, deadline: float, offset: float) -> AsyncIterator[int]:
        """Yield tick numbers at `hz`, skipping ticks missed while a request was slow; stop at the bounds."""
        period = 1.0 / hz
        start = time.monotonic() + offset * period
        tick = 0
        while self._budget_left():
            due = start + tick * period
            now = time.monotonic()
            if due >= deadline:
                return
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > period:
                tick = int((now - start) / period)  # missed ticks are skipped, not bunched up
                continue
            if not self._budget_left():
                return
            yield tick
            tick += 1

    def _path(self, client: str, tick: int) -> str:
        template = self.settings.paths[tick % len(self.settings.paths)]
        return template.replace("{client}", client).replace("{run}", self.run_token)

    async def _request(self, conn: Connection, path: str, close: bool, progress: Progress) -> Response:
        async with asyncio.timeout(self.settings.timeout_s):
            return await conn.get(self.host, path, close, progress)

    def _failure(self, exc: Exception, handshaking: bool) -> tuple[str, bool]:
        """(error class, whether a retry on a new connection is allowed)."""
        kind = exc.kind if isinstance(exc, RequestFailed) else classify(exc, handshaking)
        answered = (isinstance(exc, RequestFailed) and exc.answered) or (
            isinstance(exc, asyncio.IncompleteReadError) and bool(exc.partial))
        return kind, kind in RETRYABLE and not answered

    async def _keepalive(self, client: str, pid: int, ctx: ssl.SSLContext, deadline: float, offset: float) -> None:
        conn: Connection | None = None
        state: KeepAlive | None = None
        try:
            async for tick in self._paced(self.settings.keepalive_hz, deadline, offset):
                path = self._path(client, tick)
                t, mono = time.time(), time.monotonic()
                for attempt in (0, 1):
                    opening = conn is None
                    progress = Progress()
                    try:
                        if conn is None:
                            conn, state = await self._open_keepalive(client, pid, ctx, progress)
                        resp = await self._request(conn, path, close=False, progress=progress)
                    except Exception as exc:
                        kind, retry = self._failure(exc, opening)
                        if state is not None and state.broken is None and not opening:
                            state.broken, state.reason = time.time(), kind
                        if conn is not None:
                            conn.close()
                        conn = None
                        if attempt == 0 and retry:
                            self.first_try_failures[kind] += 1
                            continue
                        self._record(t, client, "keepalive", path, None, kind, mono, attempt == 1, progress.stage)
                        break
                    assert state is not None
                    state.requests += 1
                    state.pop = resp.headers.get("cf-pop", state.pop)
                    self._record(t, client, "keepalive", path, resp, None, mono, attempt == 1)
                    if resp.close:
                        state.broken, state.reason = time.time(), "closed by server"
                        conn.close()
                        conn = None
                    break
        finally:
            if conn is not None:
                conn.close()

    async def _target(self, client: str) -> str:
        return self.address if self.resolve is None else await self.resolve(client)

    async def _open_keepalive(self, client: str, pid: int, ctx: ssl.SSLContext,
                              progress: Progress) -> tuple[Connection, KeepAlive]:
        async with asyncio.timeout(self.settings.timeout_s):
            conn = await Connection.open(pid, await self._target(client), ctx, self.host, progress)
        state = KeepAlive(client, time.time())
        self.keepalives.append(state)
        return conn, state

    async def _fresh(self, client: str, pid: int, ctx: ssl.SSLContext, deadline: float, offset: float) -> None:
        async for tick in self._paced(self.settings.new_conn_hz, deadline, offset + 0.5):
            path = self._path(client, tick + 1)
            t, mono = time.time(), time.monotonic()
            for attempt in (0, 1):
                conn: Connection | None = None
                progress = Progress()
                try:
                    async with asyncio.timeout(self.settings.timeout_s):
                        conn = await Connection.open(pid, await self._target(client), ctx, self.host, progress)
                        resp = await conn.get(self.host, path, close=True, progress=progress)
                except Exception as exc:
                    kind, retry = self._failure(exc, conn is None)
                    if attempt == 0 and retry:
                        self.first_try_failures[kind] += 1
                        continue
                    self._record(t, client, "new", path, None, kind, mono, attempt == 1, progress.stage)
                    break
                finally:
                    if conn is not None:
                        conn.close()
                self._record(t, client, "new", path, resp, None, mono, attempt == 1)
                break

    def _record(self, t: float, client: str, kind: str, path: str, resp: Response | None, error: str | None,
                mono: float, retried: bool, stage: str | None = None) -> None:
        if resp is not None and resp.status >= 500:
            error = "5xx"
        self.records.append(HttpRecord(
            t=t, client=client, conn=kind, path=path, status=None if resp is None else resp.status, error=error,
            pop=None if resp is None else resp.headers.get("cf-pop"),
            cache=None if resp is None else resp.headers.get("cf-cache-status"),
            ms=(time.monotonic() - mono) * 1000, retried=retried, stage=None if error is None else stage))


def summarise(load: HttpLoad, fault_t: float | None, end_t: float | None) -> dict[str, Any]:
    """What report.json says about HTTP: totals, errors by class, keep-alive survival across the fault."""
    records = list(load.records)
    failed = [r for r in records if r.error is not None]
    by_class = dict.fromkeys(CLASSES, 0) | dict(Counter(r.error for r in failed if r.error is not None))
    t0 = fault_t if fault_t is not None else load.started
    # A keep-alive connection "was up at the fault" when it opened before it and had not broken by then.
    at_fault = [k for k in load.keepalives if k.opened <= t0 and (k.broken is None or k.broken >= t0)]
    survived = [k for k in at_fault if k.broken is None or (end_t is not None and k.broken >= end_t)]
    broken = [k for k in at_fault if k not in survived]
    cache = Counter(r.cache for r in records if r.cache is not None)
    return {
        "available": True,
        "requests": len(records),
        "ok": len(records) - len(failed),
        "failed": len(failed),
        "by_class": by_class,
        "by_connection": {kind: {"ok": sum(1 for r in records if r.conn == kind and r.error is None),
                                 "failed": sum(1 for r in records if r.conn == kind and r.error is not None)}
                          for kind in ("keepalive", "new")},
        "retried": {"requests": sum(1 for r in records if r.retried),
                    "first_try_by_class": dict(load.first_try_failures)},
        "keepalive": {"at_fault": len(at_fault), "survived": len(survived),
                      "broken": [{"client": k.client, "pop": k.pop, "t": round(k.broken - t0, 3),
                                  "reason": k.reason} for k in broken if k.broken is not None]},
        "keepalive_survived": None if not at_fault else len(survived) == len(at_fault),
        "cache_status": dict(cache),
        "failures": [{**r.to_json(), "t": round(r.t - t0, 3)} for r in failed[:50]],
        "settings": {"paths": load.settings.paths, "keepalive_hz": load.settings.keepalive_hz,
                     "new_conn_hz": load.settings.new_conn_hz, "timeout_s": load.settings.timeout_s,
                     "clients": len(load.settings.clients)},
    }
