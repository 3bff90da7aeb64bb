"""The lab lifecycle as a Python API: what the CLI verbs call, and what pytest tests and drills script.

    with Lab.up("topologies/default.yaml", name="t1") as lab:
        print(lab.status()["clients"])
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from . import topology_files
from .errors import LabError
from .model import Topology, load_topology
from .plan import Plan, build_plan
from .runtime import backends, cleanup, paths, procs, state
from .runtime.events import DEFAULT_TIMEOUT, READY, Event, follow
from .runtime.ledger import Ledger
from .runtime.state import RunningLab
from .runtime.vtysh import vtysh, vtysh_argv

Listener = Callable[[Event], None]


def runtime_of(topo: Topology, asked: str | None) -> str:
    """The runtime a lab boots on: the one asked for (`up --runtime`), else the topology's, else netns."""
    name = asked or topo.runtime or backends.DEFAULT
    backends.runtime_class(name)  # an unknown name is an error here, before anything exists
    return name


def check_host(plan: Plan, runtime: str, listener: Listener | None = None) -> dict[str, Any]:
    """Fail early, with the fix, when this machine cannot run the lab this way; nothing of the lab is
    created yet (the docker runtime first builds the lab's images it lacks, with progress). Returns the
    runtime's settings for the lab's runtime.json."""
    if os.geteuid() != 0:
        raise LabError("anycastlab needs root (namespaces, veths and FRR): run it with sudo")
    kind = backends.runtime_class(runtime)
    started = time.monotonic()

    def progress(message: str) -> None:
        if listener is not None:
            listener(Event(round(time.monotonic() - started, 3), "images", message, []))

    settings = kind.prepare(plan, progress)
    kind.preflight(plan, settings)
    return settings


class Lab:
    def __init__(self, running: RunningLab) -> None:
        self.running = running

    # -- lifecycle --------------------------------------------------------------------------------------

    @classmethod
    def up(cls, topology: str | Path | None = None, name: str | None = None,
           timeout: float = DEFAULT_TIMEOUT, listener: Listener | None = None, runtime: str | None = None) -> Lab:
        """Start a lab in the background and return once it is ready (or raise, leaving nothing behind)."""
        from .supervisor import prepare_run_dir  # the verbs that only read a lab need none of it

        path, topo = load(topology)
        kind = runtime_of(topo, runtime)
        plan = build_plan(topo)
        settings = check_host(plan, kind, listener)
        lab_name = name or topo.name
        directory = prepare_run_dir(lab_name, path, plan, kind, settings)
        ledger = Ledger(paths.ledger_file(directory))
        log = open(directory / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "anycastlab.supervisor", "--lab", lab_name, "--timeout", str(timeout),
                 "--runtime", kind],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                close_fds=True,
            )
        finally:
            log.close()
        ledger.record("process", "supervisor", pid=proc.pid, start=procs.start_time(proc.pid))
        try:
            final = _follow(directory, proc, listener, timeout + 60)
        except BaseException:
            proc.terminate()
            _wait_exit(proc, 15)
            cleanup.remove(directory)
            raise
        if final is None or final.stage != READY:
            _wait_exit(proc, 15)
            cleanup.remove(directory)
            if final is None:
                raise LabError(f"the lab supervisor exited without finishing (see {directory}/supervisor.log)")
            raise LabError(final.message, final.details)
        return cls(state.attach(lab_name))

    @classmethod
    def run_foreground(cls, topology: str | Path | None = None, name: str | None = None,
                       timeout: float = DEFAULT_TIMEOUT, listener: Listener | None = None,
                       runtime: str | None = None) -> int:
        """Run a lab in this process until SIGINT/SIGTERM, then tear it down. Returns an exit status."""
        from .supervisor import prepare_run_dir, run

        path, topo = load(topology)
        kind = runtime_of(topo, runtime)
        plan = build_plan(topo)
        settings = check_host(plan, kind, listener)
        lab_name = name or topo.name
        directory = prepare_run_dir(lab_name, path, plan, kind, settings)
        Ledger(paths.ledger_file(directory)).record("process", "supervisor", pid=os.getpid(),
                                                  start=procs.start_time(os.getpid()))
        try:
            return run(lab_name, plan, directory, timeout, listener, kind)
        finally:
            cleanup.remove(directory)

    @classmethod
    def attach(cls, name: str | None = None) -> Lab:
        return cls(state.attach(name))

    def down(self, timeout: float = 30.0) -> float:
        """Stop the lab: ask the supervisor to tear down, then remove whatever the ledger still names."""
        return down(self.running.name, timeout)

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.down()

    # -- acting on the lab ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.running.name

    @property
    def plan(self) -> Any:
        return self.running.plan

    def exec(self, node: str, argv: Sequence[str], timeout: float | None = 60.0,
             check: bool = False) -> subprocess.CompletedProcess[str]:
        """Run a command inside a node (its own software: the image's, on docker) and capture its output."""
        return subprocess.run(self.running.exec_argv(node, list(argv)), capture_output=True,
                              text=True, timeout=timeout, check=check)

    def vtysh(self, router: str, *commands: str) -> str:
        self._router(router)
        return vtysh(self.running.vty(router), *commands)

    def vtysh_argv(self, router: str, *commands: str) -> list[str]:
        self._router(router)
        return vtysh_argv(self.running.vty(router), *commands)

    def _router(self, router: str) -> None:
        from .errors import UnknownNodeError

        node = self.running.plan.nodes.get(router)
        if node is None or not node.is_router:
            raise UnknownNodeError(router, [n.name for n in self.running.plan.routers])

    def status(self) -> dict[str, Any]:
        from .status import lab_status

        return lab_status(self.running)


def load(topology: str | Path | None) -> tuple[Path, Topology]:
    path = topology_files.resolve(topology)
    return path, load_topology(path)


def _follow(directory: Path, proc: subprocess.Popen[bytes], listener: Listener | None,
            timeout: float) -> Event | None:
    offset = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events, offset = follow(paths.events_file(directory), offset)
        for event in events:
            if listener is not None:
                listener(event)
            if event.final:
                return event
        if proc.poll() is not None:
            events, offset = follow(paths.events_file(directory), offset)
            for event in events:
                if listener is not None:
                    listener(event)
            return next((e for e in events if e.final), None)
        time.sleep(0.05)
    raise LabError(f"no answer from the lab supervisor within {timeout:.0f} s")


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def down(name: str | None = None, timeout: float = 30.0) -> float:
    """Tear a lab down through its supervisor, then clean up from its ledger. Returns the seconds taken."""
    started = time.monotonic()
    lab_name = state.resolve_name(name) if name is not None or state.running_labs() else _only_known()
    directory = paths.lab_dir(lab_name)
    if not directory.exists():
        raise LabError(f"no lab named {lab_name!r} (running: {', '.join(state.running_labs()) or 'none'})")
    sup = Ledger(paths.ledger_file(directory)).process("supervisor")
    if sup is not None and procs.is_alive(*sup):
        os.kill(sup[0], 15)
        procs.wait_for(lambda: not procs.is_alive(*sup), timeout)
    cleanup.remove(directory)
    return time.monotonic() - started


def _only_known() -> str:
    labs = state.known_labs()
    if len(labs) == 1:
        return labs[0]
    raise LabError("no lab is running" if not labs else f"several labs exist ({', '.join(labs)}): name one")


def clean(name: str | None = None) -> dict[str, list[str]]:
    """After a crash: remove every lab run directory's recorded processes and the directory itself."""
    labs = [name] if name else state.known_labs()
    removed: dict[str, list[str]] = {}
    for lab in labs:
        directory = paths.lab_dir(lab)
        if directory.exists():
            removed[lab] = cleanup.remove(directory)
    return removed
