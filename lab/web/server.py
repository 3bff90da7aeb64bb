"""The web view's HTTP server (aiohttp): the page, its assets, and the lab's changes as server-sent events.

Read-only: every route is GET (HEAD), and nothing a request says reaches the lab. Routes:

- `/` the page; `/static/...` its script, style and the vendored map libraries (static/vendor, from npm at
  build time: nothing is fetched from the internet while the page runs);
- `/api/topology`, `/api/state`, `/api/drill` the same JSON the events carry, for scripts;
- `/api/events` server-sent events: `topology`, `state`, `drill` at once, then `state` on each change,
  `drill` when one begins, `probes` with a drill's new records, and a comment every KEEPALIVE_S.

A subscriber that cannot keep up (QUEUE events behind) is dropped; EventSource reconnects by itself and gets
a fresh snapshot. Malformed requests get aiohttp's 4xx and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from ..runtime.state import RunningLab
from .collector import Collector

STATIC = Path(__file__).resolve().parent / "static"
VENDOR_FILES = ("internmap.min.js", "d3-array.min.js", "d3-geo.min.js", "topojson-client.min.js",
                "land-110m.json", "countries-110m.json")
KEEPALIVE_S = 15.0
NICE = 10  # added to the server's niceness (serve)
QUEUE = 2000


def missing_vendor_files() -> list[str]:
    return [f for f in VENDOR_FILES if not (STATIC / "vendor" / f).is_file()]


class Hub:
    """The subscribers' queues; `publish` is called from the collector, on the server's loop."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[tuple[str, Any] | None]] = set()

    def publish(self, kind: str, data: Any) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait((kind, data))
            except asyncio.QueueFull:  # too slow: dropped, and told so; it reconnects to a fresh snapshot
                self.queues.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


COLLECTOR: web.AppKey[Collector] = web.AppKey("collector", Collector)
HUB: web.AppKey[Hub] = web.AppKey("hub", Hub)


def build_app(lab: RunningLab) -> web.Application:
    hub = Hub()
    app = web.Application(client_max_size=4096)  # nothing is ever posted
    collector = Collector(lab, hub.publish)
    app[COLLECTOR], app[HUB] = collector, hub

    async def index(_: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    async def topology(_: web.Request) -> web.Response:
        return web.json_response(collector.topology())

    async def state(_: web.Request) -> web.Response:
        return web.json_response(collector.state())

    async def drill(_: web.Request) -> web.Response:
        return web.json_response(collector.drill_history())

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                               "X-Accel-Buffering": "no"})
        await response.prepare(request)
        queue: asyncio.Queue[tuple[str, Any] | None] = asyncio.Queue(QUEUE)
        hub.queues.add(queue)
        try:
            await response.write(b"retry: 1000\n\n" + _event("topology", collector.topology())
                                 + _event("drill", collector.drill_history()) + _event("state", collector.state()))
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if item is None:
                    break
                chunk = [_event(*item)]
                while not queue.empty() and len(chunk) < 64:  # batch what piled up into one write
                    more = queue.get_nowait()
                    if more is None:
                        break
                    chunk.append(_event(*more))
                await response.write(b"".join(chunk))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            hub.queues.discard(queue)
        return response

    async def start_collector(_app: web.Application) -> Any:
        task = asyncio.create_task(collector.run(), name="web-collector")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(start_collector)
    app.router.add_get("/", index)
    app.router.add_get("/api/topology", topology)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/drill", drill)
    app.router.add_get("/api/events", events)
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    return app


async def serve(lab: RunningLab, host: str, port: int, ready: Callable[[str], None]) -> int:
    """Serve until SIGINT, SIGTERM or SIGHUP; returns 128 + that signal (the long verbs' exit status).

    The server (and the vtysh calls it makes) runs at a lower CPU priority (NICE): a viewer must not take
    the CPU from the routers, the link releaser or a drill's probes on a small machine."""
    os.nice(NICE)
    app = build_app(lab)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    stop = asyncio.Event()
    got: list[int] = []
    loop = asyncio.get_running_loop()
    def stopping(signum: int) -> None:
        got.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stopping, int(sig))
    try:
        site = web.TCPSite(runner, host, port, reuse_address=True)
        await site.start()
        sockets = getattr(site._server, "sockets", None)  # the bound socket: the port chosen when 0 was asked
        bound = sockets[0].getsockname() if sockets else (host, port)
        shown = f"[{bound[0]}]" if ":" in str(bound[0]) else bound[0]
        ready(f"http://{shown}:{bound[1]}/")
        await stop.wait()
    finally:
        for queue in list(app[HUB].queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        await runner.cleanup()
    return 128 + (got[0] if got else signal.SIGINT)
