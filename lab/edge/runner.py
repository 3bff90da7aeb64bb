"""Run a server coroutine on uvloop until SIGINT/SIGTERM: shared by the proxy and origin commands."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

import uvloop


class Service(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...


S = TypeVar("S", bound=Service)


async def serve(service: S, ready: Callable[[S], None] | None = None) -> None:
    """Start ``service``, report it ready, and run until cancelled; close it whatever happens."""
    await service.start()
    try:
        if ready is not None:
            ready(service)
        await asyncio.Event().wait()
    finally:
        await service.close()


def run_until_signal(main: Coroutine[Any, Any, None]) -> None:
    async def wrapper() -> None:
        task = asyncio.ensure_future(main)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    uvloop.run(wrapper())


def parse_addr(value: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``ADDR:PORT``, ``[v6]:PORT`` or ``PORT`` -> (host, port)."""
    if value.isdigit():
        return default_host, int(value)
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected ADDR:PORT, got {value!r}")
    host = host.strip("[]") or default_host
    return host, int(port)


def parse_size(value: str) -> int:
    """``256M``, ``1G``, ``64k`` or plain bytes."""
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    v = value.strip().lower().removesuffix("b").removesuffix("i")
    if v and v[-1] in units:
        return int(float(v[:-1]) * units[v[-1]])
    return int(v)


def stop_process(proc: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """End a process we started, by its pid: SIGTERM, then SIGKILL if it does not leave in time."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
