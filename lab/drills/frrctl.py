"""(Re)starting one router's FRR daemons after a drill killed them, outside the supervisor.

The supervisor starts every daemon at `up` as its own child. A drill that SIGKILLs bgpd, or crashes a
whole PoP, must start them again: this does so with the same argv the supervisor used (so the same
pid files, sockets and config), detached from the drill's process (a later Ctrl-C of the drill must
not reach them), and records each new pid in the lab's ledger so `down` and `clean` remove it.
"""

from __future__ import annotations

import contextlib
import time

from ..errors import LabError
from ..render.frr import render_router
from ..runtime import paths, procs
from ..runtime.cleanup import pidfile_pid
from ..runtime.frr import RouterDaemons
from ..runtime.ledger import Ledger
from ..runtime.state import RunningLab
from ..runtime.vtysh import vtysh

START_TIMEOUT = 15.0
ORDER = ("zebra", "bfdd", "ospfd", "bgpd")


def router_daemons(lab: RunningLab, router: str) -> RouterDaemons:
    return RouterDaemons(render_router(lab.plan, lab.plan.nodes[router]), lab.router_dir(router))


def daemon_pid(lab: RunningLab, router: str, daemon: str) -> int | None:
    """The live host pid of one of the router's daemons, from its pid file, if it is this lab's process."""
    return pidfile_pid(lab.router_dir(router) / f"{daemon}.pid", str(lab.directory), lab.pid(router))


def start(lab: RunningLab, router: str, daemons: list[str] | None = None) -> dict[str, int]:
    """Start the router's daemons that are not running (all of its daemons, or those named), in FRR's order.

    Returns daemon -> new pid. Raises LabError when one does not come up within START_TIMEOUT.
    """
    rd = router_daemons(lab, router)
    wanted = [d for d in ORDER if d in rd.config.daemons and (daemons is None or d in daemons)]
    ledger = Ledger(paths.ledger_file(lab.directory))
    started: dict[str, int] = {}
    for daemon in wanted:
        if daemon_pid(lab, router, daemon) is not None:
            continue
        # A SIGKILLed daemon leaves its sockets behind; `started()` looks for fresh ones.
        stale = [rd.directory / f"{daemon}.vty"] + ([rd.zserv] if daemon == "zebra" else [])
        for path in stale:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        # setsid: the daemon leaves the drill's session, so a Ctrl-C of the drill does not reach it.
        proc = procs.spawn(["setsid", *rd.start_argv(daemon)], prefix=lab.handle(router).spawn,
                           log=rd.directory / f"{daemon}.out", die_with_parent=False)
        ledger.record("process", f"{router}/{daemon}", pid=proc.pid, start=procs.start_time(proc.pid))
        if not procs.wait_for(lambda d=daemon, p=proc: rd.started(d) or p.poll() is not None,  # type: ignore[misc]
                              START_TIMEOUT):
            raise LabError(f"{router}/{daemon} did not start within {START_TIMEOUT:.0f} s (see {rd.log(daemon)})")
        if proc.poll() is not None:
            raise LabError(f"{router}/{daemon} exited at start (see {rd.log(daemon)})")
        started[daemon] = proc.pid
    return started


def restart(lab: RunningLab, router: str, daemons: list[str] | None = None) -> None:
    """Start the router's daemons that are not running; a new bgpd must originate what its config says."""
    if "bgpd" in start(lab, router, daemons):
        ensure_networks(lab, router)


def ensure_networks(lab: RunningLab, router: str, timeout: float = 10.0) -> None:
    """Make sure a restarted bgpd originates what its config says (bounded by `timeout`).

    The `network` lines can be missing after a restart: the supervisor's proxy health watch removes
    them at runtime while a PoP's proxy is down (a crash kills the proxy too), and a line entered while
    bgpd is still reading its config can be lost. Check the running config and enter them until they hold.
    """
    node = lab.plan.nodes[router]
    lines = [f"network {prefix} route-map ORIGINATE" for prefix in node.announce]
    if not lines:
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            running = vtysh(lab.vty(router), "show running-config")
            if all(line in running for line in lines):
                return
            vtysh(lab.vty(router), "configure terminal", f"router bgp {node.asn}",
                  "address-family ipv4 unicast", *lines)
        except LabError:
            pass  # not answering yet
        if time.monotonic() >= deadline:
            raise LabError(f"{router}'s restarted bgpd does not originate {', '.join(map(str, node.announce))}")
        time.sleep(0.5)
