"""The one contract for the lab's long-lived services (edge proxy, DNS identity, origin, backbone prober, steering's
gdnsd and unbound): what each runs and where, how it is started, how it is checked, how it is stopped.

FRR's daemons have theirs in runtime/frr.py (RouterDaemons); this is the same for everything else. A Service
says what to run (its Command), what it needs on disk first (`prepare`) and how it tells it is healthy once
alive (`health`). Who starts it picks the launcher: the supervisor's own (`Child`, dying with it, or forked
from the zygote where the node sees the host's files) or `Detached` (a drill's or a test's restart, which
outlives its caller in a session of its own). Either way the process is in the ledger under the service's name the
moment it exists, and it is only ever checked or signalled as that recorded (pid, start time), so a reused
pid is never taken for it. The contract sits in the runtime layer so the supervisor, the drills and every
package that defines a service can all import it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import paths, procs
from .handles import NodeHandle
from .ledger import Ledger
from .state import RunningLab

Health = Literal["ok", "down", "slow"]  # slow: alive, but its check did not answer in time


@dataclass(frozen=True)
class Command:
    """What a service runs. `argv` is a full command line; a `python -m MODULE ...` one run in the whole node
    (not `netns_only`) is run by the node's own interpreter, or forked from the zygote. `netns_only`: the host's
    software in the node's network namespace only (it sees the host's files and opens sockets elsewhere)."""

    argv: list[str]
    log: Path
    netns_only: bool = False

    @property
    def module(self) -> tuple[str, list[str]] | None:
        """(module, its arguments) of a Python module the node's interpreter runs; None for anything else."""
        if self.netns_only or len(self.argv) < 3 or self.argv[1] != "-m":
            return None
        return self.argv[2], self.argv[3:]

    def in_node(self, handle: NodeHandle) -> tuple[list[str], list[str]]:
        """(prefix, argv) that run this command in the node `handle` reaches."""
        if self.netns_only:
            return handle.netns, self.argv
        module = self.module
        if module is not None:
            return handle.spawn, [handle.python, "-m", module[0], *module[1]]
        return handle.spawn, self.argv


@dataclass(frozen=True)
class Recorded:
    """A process as the ledger has it: a name (`fra/proxy`), a pid and the pid's start time."""

    name: str
    pid: int
    start: float | None

    def alive(self) -> bool:
        return procs.is_alive(self.pid, self.start)

    @classmethod
    def of(cls, name: str, pid: int) -> Recorded:
        """The process `pid` just started, with its start time read now."""
        return cls(name, pid, procs.start_time(pid))


class Service(ABC):
    """One long-lived process of a lab, named as the ledger names it (`fra/proxy`), running in `node`."""

    name: str
    node: str

    @abstractmethod
    def command(self) -> Command:
        """What it runs, and where its output goes."""

    def prepare(self, ledger: Ledger) -> None:
        """Make what it needs before it starts (directories, files), recording in `ledger` what outlives the
        lab's run directory; idempotent, since a restart prepares again. Nothing by default."""
        del ledger

    def health(self) -> Health:
        """Its own check of a live process; "ok" for a service that has none (alive is healthy)."""
        return "ok"

    def start(self, lab: RunningLab, launch: Launcher) -> Recorded:
        return self.start_in(lab.handle(self.node), Ledger(paths.ledger_file(lab.directory)), launch)

    def start_in(self, handle: NodeHandle, ledger: Ledger, launch: Launcher) -> Recorded:
        """`start`, for a caller with the node's handle and the ledger but no RunningLab yet (link shaping)."""
        self.prepare(ledger)
        return launch(self, self.command(), handle)

    def recorded(self, ledger: Ledger) -> list[Recorded]:
        """Its processes the ledger names that are still alive (a restart adds one; the dead ones stay listed)."""
        found = [Recorded(e.name, int(e.data["pid"]), e.data.get("start")) for e in ledger.of_kind("process")
                 if e.name == self.name and "pid" in e.data]
        return [r for r in found if r.alive()]

    def ensure(self, lab: RunningLab, launch: Launcher) -> Recorded:
        """Its live process, started first if it has none."""
        running = self.recorded(Ledger(paths.ledger_file(lab.directory)))
        return running[0] if running else self.start(lab, launch)

    def state(self, process: Recorded) -> Health:
        """"down" when `process` is no longer the one recorded, else its own check."""
        return self.health() if process.alive() else "down"


# Starts a service's command in its node, records the process in the ledger, and returns it.
Launcher = Callable[[Service, Command, NodeHandle], Recorded]


class Child:
    """A launcher for a child of the calling process that the kernel kills if the caller dies (the
    supervisor's: spawn from its main thread), recorded through `record` (name, pid), which ledgers it."""

    def __init__(self, record: Callable[[str, int], None]) -> None:
        self.record = record

    def __call__(self, service: Service, command: Command, handle: NodeHandle) -> Recorded:
        prefix, argv = command.in_node(handle)
        proc = procs.spawn(argv, prefix=prefix, log=command.log)
        self.record(service.name, proc.pid)
        return Recorded.of(service.name, proc.pid)


class Detached:
    """A launcher for restarts from outside the supervisor (drills, tests): the process outlives the caller, in
    a session of its own (a Ctrl-C of a drill does not reach it), and only the ledger ties it to the lab, so
    `down` and `clean` end it."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __call__(self, service: Service, command: Command, handle: NodeHandle) -> Recorded:
        prefix, argv = command.in_node(handle)
        proc = procs.spawn(["setsid", *argv], prefix=prefix, log=command.log, die_with_parent=False)
        process = Recorded.of(service.name, proc.pid)
        self.ledger.record("process", process.name, pid=process.pid, start=process.start)
        return process


def wait_healthy(started: Sequence[tuple[Service, Recorded]], timeout: float,
                 interval: float = 0.1) -> list[Service]:
    """Wait (bounded) until each started service is healthy or has died; the ones that are not healthy."""
    procs.wait_for(lambda: all(not p.alive() or s.health() == "ok" for s, p in started), timeout, interval)
    return [s for s, p in started if s.state(p) != "ok"]


def stop(processes: Iterable[Recorded], grace: float = 2.0) -> list[int]:
    """SIGTERM each process still alive as recorded, SIGKILL what is left after `grace`; the pids signalled.
    A pid whose start time differs from the recorded one is someone else's now, and is left alone."""
    return procs.terminate([(p.pid, p.start) for p in processes], grace)


def kill(processes: Iterable[Recorded]) -> list[Recorded]:
    """SIGKILL each process still alive as recorded (a drill's crash, not a stop); the ones signalled."""
    killed = [p for p in processes if p.alive()]
    for p in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p.pid, signal.SIGKILL)
    return killed
