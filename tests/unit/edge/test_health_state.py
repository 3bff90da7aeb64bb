"""The health check's three answers, against real Unix sockets: the lab withdraws a PoP at once for `down`,
and only after several polls in a row for `slow`."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from anycastlab.edge.mgmt import health_state


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
