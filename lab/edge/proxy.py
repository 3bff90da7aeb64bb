"""The edge proxy server: HTTP/1.1 (and HTTPS) on uvloop + httptools, cache in front, origin behind.

``EdgeProxy`` wires the parts together and owns what lives as long as the process: the listeners, the
open connections and their deadline sweeper, the counters, the PoP identity and the management API.
Each client connection (lab/edge/connection.py) parses and frames HTTP/1.1 and asks the proxy what to
answer; the proxy hands those questions to its cache policy (lab/edge/policy.py). Only the proxy
imports both: the connection and the policy share the plain data of lab/edge/messages.py, and the
connection sees the proxy through its ``Edge`` protocol.

Bad input is answered, never fatal (see the connection); a broken origin -> 502, an origin timeout
-> 504. Memory is bounded per connection, by a connection cap and by the cache's byte budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from anycastlab.edge.config import ProxyConfig
from anycastlab.edge.connection import ClientConnection, FastHit
from anycastlab.edge.identity import RAY_HEADER, RayIds, static_header_block
from anycastlab.edge.messages import Request, Response
from anycastlab.edge.metrics import Metrics
from anycastlab.edge.policy import CachePolicy
from anycastlab.edge.runner import serve
from anycastlab.edge.stored import url_key
from anycastlab.edge.upstream import Upstream

__all__ = ["EdgeProxy", "ProxyConfig", "run_proxy"]


class EdgeProxy:
    """One PoP's proxy: listeners, connections, cache policy, counters and the management API."""

    def __init__(self, config: ProxyConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.rays = RayIds(config.pop)
        self.identity = static_header_block(config.pop)
        self.ray_header = RAY_HEADER.encode()
        self.policy = CachePolicy(config, self.metrics, self.rays, self.identity, self.ray_header)
        self.store = self.policy.store
        self.fast_hit: FastHit = self.policy.fast_hit
        self.connections: set[ClientConnection] = set()
        self.servers: list[asyncio.AbstractServer] = []
        self.bound: list[tuple[str, str, int]] = []  # (scheme, host, port)
        self._background: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._mgmt: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # loop.time() refreshed by the sweeper: deadlines need ~0.5 s precision, not a clock call per request
        self.coarse_now = 0.0

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    # ---------------------------------------------------------------- what connections ask (connection.Edge)

    def respond_now(self, req: Request) -> Response | None:
        return self.policy.respond_now(req)

    async def respond(self, req: Request) -> Response:
        return await self.policy.respond(req)

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
        for task in [*self._background, *self.policy.background]:
            task.cancel()
        if self._mgmt is not None:
            await self._mgmt.cleanup()
        await self.policy.upstream.close()
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

    # ---------------------------------------------------------------- the management API (mgmt.Managed)

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
        policy = self.policy
        old = policy.upstream
        policy.upstream = Upstream(origin, connect_timeout=self.config.origin_connect_timeout,
                                   read_timeout=self.config.origin_read_timeout)
        self.config.origin = origin
        task = self.loop.create_task(old.drain())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return origin

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


async def run_proxy(config: ProxyConfig, ready: Callable[[EdgeProxy], None] | None = None) -> None:
    """Run one proxy until cancelled (the CLI cancels on SIGINT/SIGTERM)."""
    await serve(EdgeProxy(config), ready)
