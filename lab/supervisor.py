"""The lab supervisor: the one process that builds a lab, keeps it running, and tears it down.

It owns the lab's runtime (lab/runtime/backends: Mininet hosts or containers), and every long-lived lab
process is its child. `anycastlab up` runs it
in the background (`python -m anycastlab.supervisor`) and follows its events; `--foreground`
runs it in the calling process. SIGTERM or SIGINT tears the lab down.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from . import gate
from .backbone import service as backbone
from .errors import LabError
from .plan import Plan
from .render.frr import render_all
from .runtime import frr, handles, paths, planfile, procs, service, zygote
from .runtime.backends import DEFAULT, NAMES, runtime_class
from .runtime.backends.base import Runtime, ZygoteHome
from .runtime.events import DEFAULT_TIMEOUT, FAILED, READY, Event, EventLog
from .runtime.frr import DryRun, RouterDaemons
from .runtime.handles import NodeHandle
from .runtime.ledger import Ledger
from .runtime.links import control as links
from .runtime.network import configure
from .runtime.service import Command, Recorded, Service
from .runtime.state import RunningLab
from .services import edge
from .steering import service as steering

PROXY_START_TIMEOUT = 30.0
HEALTH_INTERVAL = 0.1  # with BGP's own propagation, a dead proxy is withdrawn well within 1 s


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived: stop what is under way and tear down."""


class Supervisor:
    def __init__(self, name: str, plan: Plan, directory: Path,
                 listener: Callable[[Event], None] | None = None, runtime: str = DEFAULT) -> None:
        self.name = name
        self.plan = plan
        self.directory = directory
        self.ledger = Ledger(paths.ledger_file(directory))
        self.events = EventLog(paths.events_file(directory), listener)
        self.runtime_name = runtime
        self.runtime: Runtime | None = None
        self.lab: RunningLab | None = None
        self.children: list[Recorded] = []  # our long-lived children, FRR's daemons and the services
        self.stop_requested = threading.Event()
        self.health: edge.HealthWatch | None = None
        self.zygotes: dict[str, tuple[Recorded, Path]] = {}  # ZygoteHome.key -> the zygote, its socket; ended last

    # -- bring-up ---------------------------------------------------------------------------------------

    def up(self, timeout: float = DEFAULT_TIMEOUT) -> RunningLab:
        """Build and start everything, overlapping what does not depend on each other: FRR's dry run with node
        creation, and the Python services' start-up (CPU-bound) with BGP's convergence."""
        runtime = self.runtime = runtime_class(self.runtime_name)(self.name, self.directory, self.ledger)
        routers = self._render(runtime.frr_owner())
        checks = f"checking {sum(len(r.config.daemons) for r in routers)} FRR configs with FRR's dry run"
        self.events.emit("check", checks)
        if runtime.shares_host_fs:  # the host's FRR is the nodes' FRR: check while the nodes are made
            dry_run = DryRun(routers, lambda _router: []).start_all()
            on_node = None
        else:  # each router's own image checks its config, once its node exists
            dry_run = DryRun(routers, lambda router: runtime.handles[router].exec)
            on_node = dry_run.start
        self.events.emit("nodes", f"creating {len(self.plan.nodes)} nodes and {len(self.plan.links)} links "
                                  f"({runtime.name} runtime)")
        nodes = runtime.create_nodes(self.plan, on_node)
        handles.save(self.directory, runtime.name, nodes)
        runtime.create_links(self.plan)
        configure(self.plan, {n: h.pid for n, h in nodes.items()}, self.name)
        lab = self.lab = RunningLab(self.name, self.plan, self.directory, runtime.name, nodes)
        links.start(self.plan, self.directory, nodes, self._child, self.events.emit)  # delays per link
        dry_run.check()
        self.events.emit("frr", f"starting FRR on {len(routers)} routers, the origin server and "
                                f"{len(self.plan.pops)} edge proxies")
        self._start_daemons(lab, routers)
        self._start_edge(lab)
        for prober in backbone.services(self.plan, self.name):  # RTT prober; smart routing's OSPF costs
            prober.start(lab, self._launch)
        steering.start(lab, self._launch, self.events.emit)  # gdnsd and the ISPs' unbound, when steering.dns is on
        self.events.emit("gate", "waiting for BGP to converge and clients to reach the anycast address")
        report = gate.wait_ready(lab, timeout, self._gate_progress,
                                 steering.check if self.plan.topology.steering.dns_on else None)
        if not report.ready:
            raise LabError(f"the lab was not ready after {timeout:.0f} s: {report.summary()}",
                           report.missing())
        lab.supervisor_pid = os.getpid()
        lab.save()
        return lab

    def _gate_progress(self, message: str, missing: list[str]) -> None:
        self.events.emit("gate", message, missing)

    def _render(self, owner: tuple[int, int]) -> list[RouterDaemons]:
        configs = render_all(self.plan)
        routers = [RouterDaemons(cfg, self.directory / "nodes" / name) for name, cfg in configs.items()]
        self.events.emit("render", f"rendered frr.conf for {len(routers)} routers")
        for router in routers:
            self.ledger.record("dir", router.name, path=str(router.directory))
            router.write(owner)
        return routers

    def _start_daemons(self, lab: RunningLab, routers: list[RouterDaemons]) -> None:
        """zebra everywhere at once, then the routing daemons everywhere at once (frr.start)."""
        for router in routers:  # FRR's own pid files name what `clean` ends after a crash
            for daemon in router.config.daemons:
                self.ledger.record("pidfile", f"{router.name}/{daemon}", path=str(router.pidfile(daemon)),
                                   lab_dir=str(self.directory))
        frr.start(routers, lambda name: lab.handle(name).spawn, self._child)

    def _start_edge(self, lab: RunningLab) -> None:
        """Each PoP's DNS identity service, the origin server, then one proxy per PoP; returns once every proxy
        answers its health check, and the health watch takes over. They bind the anycast address on the PoP's
        loopback, so they need no routes to start; misses reach the origin once OSPF is up."""
        dns, origin, proxies = edge.edge_services(self.plan, self.name)
        for other in [*dns, origin]:
            other.start(lab, self._launch)
        bad = service.wait_healthy([(p, p.start(lab, self._launch)) for p in proxies], PROXY_START_TIMEOUT)
        if bad:
            logs = ", ".join(str(p.command().log) for p in bad)
            raise LabError(f"edge proxies not healthy after {PROXY_START_TIMEOUT:.0f} s: "
                           f"{', '.join(p.node for p in bad)} (see {logs})")
        self.health = edge.HealthWatch(self.plan, proxies, lab.vty, {p.pop: True for p in proxies})

    def _launch(self, what: Service, command: Command, handle: NodeHandle) -> Recorded:
        """The supervisor's launcher (runtime.service): a Python module is forked from the pre-loaded zygote
        of the node's software (runtime.zygote_home), else run by the node's own interpreter; anything else is
        run as it is. Each dies with the supervisor."""
        module = command.module
        home = self.runtime.zygote_home(what.node) if module is not None and self.runtime is not None else None
        if module is None or home is None:
            return service.Child(self._child)(what, command, handle)
        pid = zygote.start_service(self._zygote(home), module[0], module[1], command.log, handle.pid,
                                   home.namespaces)
        self._child(what.name, pid)
        return self.children[-1]

    def _zygote(self, home: ZygoteHome) -> Path:
        """The socket of the zygote for `home`, started (and waited for) the first time one is asked for."""
        if home.key not in self.zygotes:
            n = len(self.zygotes)
            sock = self.directory / f"zygote-{n}.sock"
            proc = procs.spawn([*home.python, "-m", "anycastlab.runtime.zygote", str(sock)],
                               log=self.directory / f"zygote-{n}.log")
            recorded = Recorded.of(f"zygote/{home.key}", proc.pid)
            self.ledger.record("process", recorded.name, pid=proc.pid, start=recorded.start)
            self.zygotes[home.key] = (recorded, sock)
            zygote.wait_listening(sock, lambda: proc.poll() is None)
        return self.zygotes[home.key][1]

    def _child(self, what: str, pid: int) -> None:
        child = Recorded.of(what, pid)
        self.ledger.record("process", what, pid=pid, start=child.start)
        self.children.append(child)

    # -- running and teardown ---------------------------------------------------------------------------

    def wait(self) -> None:
        """Until asked to stop: watch each PoP's proxy, and withdraw or re-announce the PoP on each change;
        start the link delay releaser again if it died (links fail open, undelayed, until then)."""
        while not self.stop_requested.wait(HEALTH_INTERVAL):
            links.ensure_releaser(self.directory, self._child, self.events.emit)
            if self.health is None:
                continue
            for pop, healthy in self.health.poll():
                state = "healthy, announcing" if healthy else "unhealthy, withdrawn"
                self.events.emit("health", f"{pop}: proxy {state}")

    def teardown(self) -> None:
        """End our children, then the nodes; namespaces and veths go with their last process."""
        service.stop(reversed(self.children), grace=1.0)
        self.children.clear()
        service.stop([z for z, _ in self.zygotes.values()], grace=0.5)
        self.zygotes.clear()
        if self.runtime is not None:
            self.runtime.destroy()


def prepare_run_dir(name: str, topology_file: Path, plan: Plan, runtime: str = DEFAULT,
                    settings: dict[str, Any] | None = None) -> Path:
    """A fresh run directory holding a copy of the topology and the plan derived from it, so later verbs
    (and this supervisor) see exactly this plan, whatever version of the package reads it."""
    directory = paths.lab_dir(name)
    if directory.exists():
        raise LabError(f"lab {name!r} already exists at {directory}: run `anycastlab down --lab {name}` "
                       f"(or `anycastlab clean --lab {name}` after a crash) first")
    directory.mkdir(parents=True, mode=0o755)
    directory.parent.chmod(0o755)
    shutil.copyfile(topology_file, paths.topology_file(directory))
    planfile.save(directory, plan)
    paths.runtime_file(directory).write_text(json.dumps(settings or {}, indent=1))
    Ledger(paths.ledger_file(directory)).record("lab", name, path=str(directory), runtime=runtime)
    return directory


def run(name: str, plan: Plan, directory: Path, timeout: float,
        listener: Callable[[Event], None] | None = None, runtime: str = DEFAULT) -> int:
    """Bring the lab up, serve until signalled, tear down. Returns the exit status: 128 + the signal that
    stopped a ready lab (130 for Ctrl-C, 143 for `docker stop` or `down`), as the interrupt convention has it."""
    sup = Supervisor(name, plan, directory, listener, runtime)
    stopped_by: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopped_by.append(signum)
        sup.stop_requested.set()
        if not ready:
            raise Interrupted()

    ready = False
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    try:
        try:
            sup.up(timeout)
            ready = True
        except (LabError, Interrupted, Exception) as exc:
            details = list(exc.args[1]) if isinstance(exc, LabError) and len(exc.args) > 1 else []
            message = "interrupted" if isinstance(exc, Interrupted) else str(exc.args[0] if exc.args else exc)
            if not isinstance(exc, LabError | Interrupted):
                message = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()  # into supervisor.log, for a bug report
            sup.teardown()
            sup.events.emit(FAILED, message, details)
            return 1
        sup.events.emit(READY, f"lab {name!r} is ready: {len(plan.routers)} routers, {len(plan.clients)} "
                               f"clients, anycast {plan.topology.anycast.ip}")
        sup.wait()
        started = time.monotonic()
        sup.teardown()
        sup.events.emit("down", f"torn down in {time.monotonic() - started:.2f} s")
        return 128 + stopped_by[0] if stopped_by else 0
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="anycastlab supervisor (started by `anycastlab up`)")
    parser.add_argument("--lab", required=True)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    parser.add_argument("--runtime", choices=NAMES, default=DEFAULT)
    args = parser.parse_args(argv)
    directory = paths.lab_dir(args.lab)
    sys.exit(run(args.lab, planfile.load(directory), directory, args.timeout, runtime=args.runtime))


if __name__ == "__main__":
    main()
