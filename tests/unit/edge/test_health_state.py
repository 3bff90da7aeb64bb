"""The health check's three answers (ok, down, slow), against real Unix sockets and the real management
API: the lab withdraws a PoP at once for `down`, and only after several polls in a row for `slow`."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.edge.mgmt import health_state, start_mgmt


@pytest.fixture
def silent_socket(tmp_path: Path) -> Iterator[Path]:
    """A listener that accepts and never answers: a live process too busy to reply."""
    path = tmp_path / "silent.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(4)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        stop.set()
        thread.join(timeout=2)
        for conn in held:
            conn.close()
        server.close()


def test_no_socket_is_down(tmp_path: Path) -> None:
    assert health_state(tmp_path / "missing.sock", timeout=0.2) == "down"


def test_socket_without_listener_is_down(tmp_path: Path) -> None:
    path = tmp_path / "dead.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()  # the file stays, nobody listens: what a crashed proxy leaves behind
    assert health_state(path, timeout=0.2) == "down"


def test_no_answer_in_time_is_slow(silent_socket: Path) -> None:
    assert health_state(silent_socket, timeout=0.2) == "slow"


class _Proxy:
    """What the management API asks of a proxy (mgmt.Managed), with a serving switch."""

    def __init__(self) -> None:
        self.serving = True

    def health(self) -> dict[str, Any]:
        return {"ok": self.serving, "pop": "fra", "listeners": []}

    def stats(self) -> dict[str, Any]:
        return {}

    def purge_url(self, url: str) -> int:
        return 0

    def purge_tag(self, tag: str) -> int:
        return 0

    def purge_all(self) -> int:
        return 0

    def set_origin(self, origin: str) -> str:
        return origin


@pytest.fixture
def management(tmp_path: Path) -> Iterator[tuple[Path, _Proxy]]:
    """The real management API (aiohttp on a Unix socket) in a thread of its own."""
    proxy, path = _Proxy(), tmp_path / "mgmt.sock"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner: list[Any] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        runner.append(loop.run_until_complete(start_mgmt(proxy, path)))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield path, proxy
    finally:
        asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()


def test_a_serving_proxy_is_ok_and_one_that_stopped_serving_is_down(management: tuple[Path, _Proxy]) -> None:
    path, proxy = management
    assert health_state(path, timeout=2.0) == "ok"
    proxy.serving = False  # alive, answering 503: not serving
    assert health_state(path, timeout=2.0) == "down"
    proxy.serving = True
    assert health_state(path, timeout=2.0) == "ok"
