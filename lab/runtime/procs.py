"""Starting and ending the lab's processes, by recorded pid only.

A pid alone can be reused by an unrelated process, so every recorded pid comes with the process's start
time (psutil's create_time, from /proc/PID/stat); nothing is signalled unless both still match. This is
the one place that asks what a pid is: everything else goes through `start_time`, `is_alive` and `usage`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil


def start_time(pid: int) -> float | None:
    """The process's start time (seconds since the epoch, exact for the same process), or None if it is gone."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:  # it has finished; only its parent's wait is missing
            return None
        return float(process.create_time())
    except psutil.Error:
        return None


def is_alive(pid: int, start: float | None) -> bool:
    """Whether `pid` is still the process that was recorded with `start` (any process, without one)."""
    current = start_time(pid)
    return current is not None and (start is None or current == start)


@dataclass(frozen=True)
class Usage:
    rss_kb: int
    cpu_s: float  # user + system
    parent: int | None


def usage(pid: int) -> Usage | None:
    """What a process holds now (for benchmarks and stats), or None if it is gone."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            cpu = process.cpu_times()
            return Usage(process.memory_info().rss // 1024, cpu.user + cpu.system, process.ppid() or None)
    except psutil.Error:
        return None


# A `preexec_fn` forces subprocess onto fork() (about 16 ms for the supervisor's size, against 0.5 ms with
# vfork), so the parent-death signal is set by util-linux `setpriv` instead. The shell then checks that
# its parent is still us: if we died before setpriv's prctl, the child was already re-parented and exits.
KILL_WAIT_S = 10.0
_PARENT_GUARD = '[ "$PPID" = "$0" ] && exec "$@"'


def _guarded(argv: list[str]) -> list[str]:
    return ["setpriv", "--pdeathsig", "KILL", "--", "/bin/sh", "-c", _PARENT_GUARD, str(os.getpid()), *argv]


def spawn(argv: Sequence[str], *, prefix: Sequence[str] = (), log: Path | None = None,
          die_with_parent: bool = True, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a process, inside a node when `prefix` is one of its handle's (`spawn` or `netns`).

    With `die_with_parent` the kernel SIGKILLs it if the lab supervisor dies, which is what makes a
    SIGKILLed `up` leave nothing behind. The kernel ties that to the spawning thread, so only the main
    thread may spawn such processes.
    """
    if die_with_parent:
        assert threading.current_thread() is threading.main_thread(), "spawn lab processes from the main thread"
    argv = [*prefix, *argv]
    if die_with_parent:
        argv = _guarded(argv)
    out = open(log, "ab") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, close_fds=True, env=env,
        )
    finally:
        if log is not None:
            out.close()  # type: ignore[union-attr]


def terminate(procs: Iterable[tuple[int, float | None]], grace: float = 2.0) -> list[int]:
    """SIGTERM every (pid, start) still alive, SIGKILL what is left after `grace` seconds.

    Returns the pids that were signalled. Children of ours are reaped so they don't linger as zombies.
    """
    targets = [(pid, start) for pid, start in procs if is_alive(pid, start)]
    for pid, _ in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap()
        if not any(is_alive(pid, start) for pid, start in targets):
            break
        time.sleep(0.02)
    for pid, start in targets:
        if is_alive(pid, start):
            _signal(pid, signal.SIGKILL)
    # A SIGKILLed process can take seconds to finish exiting on a loaded machine; until it has, it still
    # holds its namespace, so wait (bounded) rather than report a teardown that is not over.
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and any(is_alive(p, s) for p, s in targets):
        _reap()
        time.sleep(0.02)
    return [pid for pid, _ in targets]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_for(predicate: object, timeout: float, interval: float = 0.02) -> bool:
    """Poll a zero-argument callable until it returns true or `timeout` seconds pass."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def host_pid(pid_in_node: int, holder: int) -> int | None:
    """The host's pid for a process that knows itself as `pid_in_node` inside the PID namespace of
    `holder` (a node's namespace holder: on docker, a container's init; on netns, the host's own PID
    namespace, so the answer is the pid itself). FRR's pid files hold the pid as its daemon sees it."""
    try:
        namespace = os.stat(f"/proc/{holder}/ns/pid").st_ino
    except OSError:
        return None
    if namespace == os.stat("/proc/self/ns/pid").st_ino:
        return pid_in_node if start_time(pid_in_node) is not None else None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "pid").st_ino != namespace:
                continue
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("NSpid:") and line.split()[-1] == str(pid_in_node):
                return int(entry.name)
    return None
