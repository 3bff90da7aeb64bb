"""The lab's origin server: cacheable static assets, uncacheable dynamic pages, a slow path, and faults.

Routes (all GET/HEAD unless noted):

- ``/``: an index page linking the other paths; cacheable like the static assets (with an ETag).
- ``/static/<name>``: built-in assets (``1k.bin``, ``10k.bin``, ``1m.bin``, ``index.html``, ``app.js``,
  ``style.css``) or files from ``--static-dir``; ``Cache-Control: public, max-age=<static_max_age>``,
  a strong ``ETag``, ``Last-Modified`` and ``Cache-Tag``; conditional requests get 304.
- ``/cache/<anything>?max-age=&s-maxage=&swr=&sie=&tag=&etag=&vary=&size=``: a response whose cache
  headers the query chooses (for tests and demos). The body names the origin and a serial number.
  Other methods on these URLs answer 200 (uncacheable), to exercise invalidation.
- ``/dynamic[/...]``: ``Cache-Control: private, no-store``; a per-request body.
- ``/slow[/...]?ms=N``: waits N ms (default ``slow_ms``, capped at 30 s), then a cacheable response.
- ``/status/<code>``: answers with that status.
- ``/echo`` (any method): the request line and headers as JSON; uncacheable.
- ``/health``: 200 ``ok`` (uncacheable).

Faults are switched at run time through the control socket (HTTP over a unix socket):
``POST /mode {"mode": "ok" | "error" | "down", "status": 503}`` and ``GET /stats``. ``error`` answers every
request with the status; ``down`` closes the listeners so connections are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from anycastlab.edge.headers import http_date, parse_etags, parse_http_date, weak_match
from anycastlab.edge.runner import serve


def _builtin_assets() -> dict[str, tuple[bytes, str]]:
    def blob(n: int) -> bytes:
        return (b"anycastlab-static-" * (n // 18 + 1))[:n]

    return {
        "1k.bin": (blob(1024), "application/octet-stream"),
        "10k.bin": (blob(10 * 1024), "application/octet-stream"),
        "1m.bin": (blob(1024 * 1024), "application/octet-stream"),
        "index.html": (b"<!doctype html><title>anycastlab</title><h1>anycastlab origin</h1>\n", "text/html"),
        "app.js": (b"console.log('anycastlab');\n", "application/javascript"),
        "style.css": (b"body { font-family: sans-serif; }\n", "text/css"),
    }


INDEX_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>anycastlab origin</title></head>
<body>
<h1>anycastlab origin ({name})</h1>
<p>Every path below goes through the PoP a client lands on; <code>cf-cache-status</code> tells hit from miss.</p>
<ul>
<li><a href="/static/index.html">/static/index.html</a>, <a href="/static/app.js">/static/app.js</a>,
 <a href="/static/style.css">/static/style.css</a>, <a href="/static/1k.bin">/static/1k.bin</a>,
 <a href="/static/10k.bin">/static/10k.bin</a>, <a href="/static/1m.bin">/static/1m.bin</a>: cacheable assets</li>
<li><a href="/cache/demo?max-age=60">/cache/&lt;anything&gt;?max-age=60</a>: cache headers chosen by the query
 (max-age, s-maxage, swr, sie, tag, etag, vary, size, public, private, no-store, no-cache, must-revalidate)</li>
<li><a href="/dynamic">/dynamic</a>: never cached</li>
<li><a href="/slow?ms=500">/slow?ms=500</a>: answers after a delay (cacheable for 30 s)</li>
<li><a href="/status/503">/status/&lt;code&gt;</a>: answers with that status</li>
<li><a href="/echo">/echo</a>: the request as JSON (any method)</li>
<li><a href="/health">/health</a>: ok</li>
<li><a href="/cdn-cgi/trace">/cdn-cgi/trace</a>: answered by the PoP itself (colo=, the PoP's code)</li>
</ul>
</body></html>
"""


@dataclass
class OriginConfig:
    listen: list[tuple[str, int]]
    name: str = "origin"
    static_dir: Path | None = None
    static_max_age: int = 3600
    slow_ms: int = 2000
    control_socket: Path | None = None
    tls_listen: list[tuple[str, int]] = field(default_factory=list)  # HTTPS, for comparing a direct visit
    tls: ssl.SSLContext | None = None


@dataclass
class OriginState:
    mode: str = "ok"
    error_status: int = 503
    requests: int = 0
    by_path: dict[str, int] = field(default_factory=dict)
    serial: int = 0


class OriginServer:
    def __init__(self, config: OriginConfig) -> None:
        self.config = config
        self.state = OriginState()
        self.started = time.time()
        self.assets = _builtin_assets()
        self._runner: web.AppRunner | None = None
        self._sites: list[web.TCPSite] = []
        self._control: web.AppRunner | None = None
        self.bound: list[tuple[str, int]] = []

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self._listen()
        if self.config.control_socket is not None:
            path = self.config.control_socket
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._control = web.AppRunner(self._control_app(), access_log=None, handle_signals=False)
            await self._control.setup()
            await web.UnixSite(self._control, str(path)).start()
            os.chmod(path, 0o600)

    async def _listen(self) -> None:
        # A fresh runner each time: "down" must also drop kept-alive connections, not just the listener.
        self._runner = web.AppRunner(self._app(), access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        self.bound = []
        addresses = [(a, None) for a in self.config.listen] + [(a, self.config.tls) for a in self.config.tls_listen]
        for (host, port), tls in addresses:
            site = web.TCPSite(self._runner, host, port, reuse_address=True, ssl_context=tls)
            await site.start()
            self._sites.append(site)
            server = site._server
            if server is not None:
                for sock in getattr(server, "sockets", []) or []:
                    name = sock.getsockname()
                    self.bound.append((str(name[0]), int(name[1])))
        # After the first start, keep the same ports when going down and up again.
        plain = len(self.config.listen)
        self.config.listen = list(self.bound[:plain]) or self.config.listen
        self.config.tls_listen = list(self.bound[plain:]) or self.config.tls_listen

    async def _unlisten(self) -> None:
        self._sites = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def set_mode(self, mode: str, status: int = 503) -> None:
        if mode not in ("ok", "error", "down"):
            raise ValueError(f"unknown mode {mode!r}")
        was_down = self.state.mode == "down"
        self.state.mode = mode
        self.state.error_status = status
        if mode == "down" and not was_down:
            await self._unlisten()
        elif mode != "down" and was_down:
            await self._listen()

    async def close(self) -> None:
        await self._unlisten()
        if self._control is not None:
            await self._control.cleanup()

    # ------------------------------------------------------------------ HTTP

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=8 << 20)
        app.router.add_route("GET", "/", self.index)
        app.router.add_route("GET", "/static/{name:.+}", self.static)
        app.router.add_route("GET", "/cache/{tail:.*}", self.cache)
        app.router.add_route("*", "/cache/{tail:.*}", self.cache_write)
        app.router.add_route("GET", "/dynamic{tail:.*}", self.dynamic)
        app.router.add_route("GET", "/slow{tail:.*}", self.slow)
        app.router.add_route("GET", "/status/{code:\\d{3}}", self.status)
        app.router.add_route("*", "/echo{tail:.*}", self.echo)
        app.router.add_route("GET", "/health", self.health)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        st = self.state
        st.requests += 1
        st.by_path[request.path] = st.by_path.get(request.path, 0) + 1
        if st.mode == "error":
            return web.Response(status=st.error_status, text=f"injected {st.error_status}\n",
                                headers={"Cache-Control": "no-store", "X-Origin": self.config.name})
        resp: web.StreamResponse = await handler(request)
        resp.headers["X-Origin"] = self.config.name
        resp.headers["Date"] = http_date(time.time())
        return resp

    def _conditional(self, request: web.Request, etag: str, last_modified: float) -> bool:
        inm = parse_etags(request.headers.get("If-None-Match"))
        if inm is not None:
            return inm == ["*"] or any(weak_match(t, etag) for t in inm)
        ims = parse_http_date(request.headers.get("If-Modified-Since"))
        return ims is not None and int(last_modified) <= ims

    async def index(self, request: web.Request) -> web.StreamResponse:
        """`/`: what the origin serves, as links; a newcomer's first request should not be a 404."""
        return self._cacheable(request, INDEX_PAGE.replace(b"{name}", self.config.name.encode()), "text/html",
                               self.started, "index")

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        asset = self._asset(name)
        if asset is None:
            return web.Response(status=404, text="not found\n", headers={"Cache-Control": "max-age=10"})
        body, ctype, mtime = asset
        return self._cacheable(request, body, ctype, mtime, f"static, static/{name}")

    def _cacheable(self, request: web.Request, body: bytes, ctype: str, mtime: float, tags: str) -> web.Response:
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        headers = {
            "Cache-Control": f"public, max-age={self.config.static_max_age}",
            "ETag": etag,
            "Last-Modified": http_date(mtime),
            "Cache-Tag": tags,
        }
        if self._conditional(request, etag, mtime):
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type=ctype, headers=headers)

    def _asset(self, name: str) -> tuple[bytes, str, float] | None:
        if self.config.static_dir is not None:
            root = self.config.static_dir.resolve()
            path = (root / name).resolve()
            if path.is_relative_to(root) and path.is_file():
                return path.read_bytes(), "application/octet-stream", path.stat().st_mtime
        builtin = self.assets.get(name)
        if builtin is None:
            return None
        return builtin[0], builtin[1], self.started

    async def cache(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        directives = []
        for key, directive in (("max-age", "max-age"), ("s-maxage", "s-maxage"),
                               ("swr", "stale-while-revalidate"), ("sie", "stale-if-error")):
            if key in q and q[key].isdigit():
                directives.append(f"{directive}={q[key]}")
        for flag in ("public", "private", "no-store", "no-cache", "must-revalidate"):
            if flag in q:
                directives.append(flag)
        self.state.serial += 1
        size = int(q["size"]) if q.get("size", "").isdigit() else 0
        body = f"{self.config.name} {request.path} serial={self.state.serial}\n".encode()
        if size:
            body = (body * (size // len(body) + 1))[:size]
        headers = {"Cache-Control": ", ".join(directives) or "public, max-age=60"}
        if "tag" in q:
            headers["Cache-Tag"] = q["tag"]
        if "vary" in q:
            headers["Vary"] = q["vary"]
        if "etag" in q:
            etag = f'"{q["etag"]}"'
            headers["ETag"] = etag
            if self._conditional(request, etag, self.started):
                return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="text/plain", headers=headers)

    async def cache_write(self, request: web.Request) -> web.StreamResponse:
        """POST/PUT/DELETE on a /cache/ URL succeed, so a proxy can be seen invalidating the GET entry."""
        await request.read()
        return web.Response(text=f"{request.method} ok\n", headers={"Cache-Control": "no-store"})

    async def dynamic(self, _request: web.Request) -> web.StreamResponse:
        self.state.serial += 1
        body = f"{self.config.name} dynamic serial={self.state.serial} t={time.time():.6f}\n"
        return web.Response(text=body, headers={"Cache-Control": "private, no-store"})

    async def slow(self, request: web.Request) -> web.StreamResponse:
        raw = request.query.get("ms", "")
        ms = min(int(raw) if raw.isdigit() else self.config.slow_ms, 30_000)
        await asyncio.sleep(ms / 1000)
        self.state.serial += 1
        return web.Response(text=f"{self.config.name} slow {ms}ms serial={self.state.serial}\n",
                            headers={"Cache-Control": "public, max-age=30"})

    async def status(self, request: web.Request) -> web.StreamResponse:
        code = int(request.match_info["code"])
        if code < 200 or code > 599:
            return web.Response(status=400, text="status must be 200-599\n")
        body = None if code in (204, 304) else f"status {code}\n"
        return web.Response(status=code, text=body, headers={"Cache-Control": "no-store"})

    async def echo(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        data = {"method": request.method, "path": request.path_qs, "headers": list(request.headers.items()),
                "body_bytes": len(body), "origin": self.config.name}
        return web.json_response(data, headers={"Cache-Control": "no-store"})

    async def health(self, _request: web.Request) -> web.StreamResponse:
        return web.Response(text="ok\n", headers={"Cache-Control": "no-store"})

    # ------------------------------------------------------------------ control socket

    def _control_app(self) -> web.Application:
        async def stats(_: web.Request) -> web.Response:
            st = self.state
            return web.json_response({"mode": st.mode, "error_status": st.error_status,
                                      "requests": st.requests, "by_path": st.by_path})

        async def mode(request: web.Request) -> web.Response:
            try:
                body = await request.json()
                await self.set_mode(str(body.get("mode")), int(body.get("status", 503)))
            except (ValueError, TypeError, AttributeError, json.JSONDecodeError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response({"mode": self.state.mode})

        app = web.Application()
        app.router.add_get("/stats", stats)
        app.router.add_post("/mode", mode)
        return app


async def run_origin(config: OriginConfig, ready: Callable[[OriginServer], None] | None = None) -> None:
    """Run one origin server until cancelled."""
    await serve(OriginServer(config), ready)
