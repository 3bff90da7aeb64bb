"""The lab lifecycle as a Python API: what the CLI verbs call, and what pytest tests and drills script.

    with Lab.up("topologies/default.yaml", name="t1") as lab:
        print(lab.status()["clients"])
"""

from __future__ import annotations

import os
import shutil
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
from .plan import build_plan
from .runtime import cleanup, paths, procs, state
from .runtime.events import READY, Event, follow
from .runtime.ledger import Ledger
from .runtime.state import RunningLab
from .runtime.supervisor import DEFAULT_TIMEOUT, prepare_run_dir, run
from .runtime.vtysh import vtysh, vtysh_argv

Listener = Callable[[Event], None]
REQUIRED_TOOLS = ["mnexec", "vtysh", "ip", "ping", "/usr/lib/frr/zebra", "/usr/lib/frr/bgpd"]


def check_host() -> None:
    """Fail early, with the fix, when this machine cannot run a lab."""
    if os.geteuid() != 0:
        raise LabError("anycastlab needs root (namespaces, veths and FRR): run it with sudo")
    missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None and not Path(t).exists()]
    if missing:
        raise LabError(f"missing on this machine: {', '.join(missing)} (run `make up` or `make deps` to install)")


class Lab:
    def __init__(self, running: RunningLab) -> None:
        self.running = running

    # -- lifecycle --------------------------------------------------------------------------------------

    @classmethod
    def up(cls, topology: str | Path | None = None, name: str | None = None,
           timeout: float = DEFAULT_TIMEOUT, listener: Listener | None = None) -> Lab:
        """Start a lab in the background and return once it is ready (or raise, leaving nothing behind)."""
        path, topo = load(topology)
        check_host()
        lab_name = name or topo.name
        directory = prepare_run_dir(lab_name, path)
        ledger = Ledger(directory / "ledger.jsonl")
        log = open(directory / "supervisor.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "anycastlab.runtime.supervisor", "--lab", lab_name, "--timeout", str(timeout)],
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
                       timeout: float = DEFAULT_TIMEOUT, listener: Listener | None = None) -> int:
        """Run a lab in this process until SIGINT/SIGTERM, then tear it down. Returns an exit status."""
        path, topo = load(topology)
        check_host()
        lab_name = name or topo.name
        directory = prepare_run_dir(lab_name, path)
        Ledger(directory / "ledger.jsonl").record("process", "supervisor", pid=os.getpid(),
                                                  start=procs.start_time(os.getpid()))
        try:
            return run(lab_name, build_plan(topo), directory, timeout, listener)
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
        """Run a command inside a node's network namespace and capture its output."""
        return subprocess.run(["mnexec", "-a", str(self.running.pid(node)), *argv], capture_output=True,
                              text=True, timeout=timeout, check=check)

    def vtysh(self, router: str, *commands: str) -> str:
        self._router(router)
        return vtysh(self.running.router_dir(router), *commands)

    def vtysh_argv(self, router: str, *commands: str) -> list[str]:
        self._router(router)
        return vtysh_argv(self.running.router_dir(router), *commands)

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
        events, offset = follow(directory / "events.jsonl", offset)
        for event in events:
            if listener is not None:
                listener(event)
            if event.final:
                return event
        if proc.poll() is not None:
            events, offset = follow(directory / "events.jsonl", offset)
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
    sup = next((e for e in Ledger(directory / "ledger.jsonl").of_kind("process") if e.name == "supervisor"), None)
    if sup is not None and procs.is_alive(sup.data["pid"], sup.data.get("start")):
        os.kill(sup.data["pid"], 15)
        procs.wait_for(lambda: not procs.is_alive(sup.data["pid"], sup.data.get("start")), timeout)
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
