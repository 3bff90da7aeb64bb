"""The management API: HTTP over a unix socket, so purge and stats are reachable only from the host side.

Protocol (JSON bodies, ``curl --unix-socket SOCK http://pop/...`` works too):

- ``GET /health`` -> 200 ``{"ok": true, "pop": ..., "listeners": [...]}``, or 503 when not serving.
- ``GET /stats`` -> 200 counters (requests, cache_status{HIT,MISS,...}, origin_fetches, bytes_out,
  tls_handshakes, tls_resumptions, errors, cache{entries,bytes,...}).
- ``POST /purge`` with one of ``{"url": "http://host/path"}``, ``{"tag": "T"}``, ``{"all": true}``
  -> 200 ``{"purged": N}``; 400 for anything else.
- ``POST /origin`` with ``{"url": "http://host:port"}``: later misses go there (the tiered cache's switch).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
from pathlib import Path
from typing import Any, Literal, Protocol

from aiohttp import web


class Managed(Protocol):
    """What the management API needs of a proxy: the proxy imports this module, never the reverse."""

    def health(self) -> dict[str, Any]: ...
    def stats(self) -> dict[str, Any]: ...
    def purge_url(self, url: str) -> int: ...
    def purge_tag(self, tag: str) -> int: ...
    def purge_all(self) -> int: ...
    def set_origin(self, origin: str) -> str: ...


def build_app(proxy: Managed) -> web.Application:
    async def health(_: web.Request) -> web.Response:
        data = proxy.health()
        return web.json_response(data, status=200 if data["ok"] else 503)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(proxy.stats())

    async def purge(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "body must be JSON"}, status=400)
        if not isinstance(body, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        if isinstance(body.get("url"), str):
            n = proxy.purge_url(body["url"])
        elif isinstance(body.get("tag"), str):
            n = proxy.purge_tag(body["tag"])
        elif body.get("all") is True:
            n = proxy.purge_all()
        else:
            return web.json_response({"error": 'expected {"url": ...}, {"tag": ...} or {"all": true}'},
                                     status=400)
        return web.json_response({"purged": n})

    async def origin(request: web.Request) -> web.Response:
        try:
            body = await request.json()
            now = proxy.set_origin(str(body["url"]))
        except (ValueError, UnicodeDecodeError, KeyError, TypeError) as exc:
            return web.json_response({"error": f'expected {{"url": "http://host:port"}}: {exc}'}, status=400)
        return web.json_response({"origin": now})

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", stats)
    app.router.add_post("/purge", purge)
    app.router.add_post("/origin", origin)
    return app


async def start_mgmt(proxy: Managed, path: Path) -> web.AppRunner:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        if path.is_socket():
            path.unlink()
    runner = web.AppRunner(build_app(proxy), access_log=None)
    await runner.setup()
    site = web.UnixSite(runner, str(path))
    await site.start()
    os.chmod(path, 0o600)
    return runner


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class MgmtError(Exception):
    pass


def call(path: Path, method: str, route: str, body: dict[str, Any] | None = None,
         timeout: float = 5.0) -> tuple[int, Any]:
    """A blocking client for the CLI and the lab: (HTTP status, decoded JSON)."""
    conn = _UnixConnection(str(path), timeout)
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        conn.request(method, route, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise MgmtError(f"management socket {path}: {exc}") from exc
    finally:
        conn.close()


def health(path: Path, timeout: float = 1.0) -> bool:
    """True when the proxy behind ``path`` says it is serving (the lab's health check)."""
    return health_state(path, timeout) == "ok"


def health_state(path: Path, timeout: float = 1.0) -> Literal["ok", "down", "slow"]:
    """`down` when the proxy is gone or says it is not serving; `slow` when it did not answer in time, which
    on a loaded machine a live proxy sometimes does."""
    try:
        status, data = call(path, "GET", "/health", timeout=timeout)
    except MgmtError as exc:
        return "slow" if isinstance(exc.__cause__, TimeoutError) else "down"
    return "ok" if status == 200 and isinstance(data, dict) and data.get("ok") is True else "down"
