"""(Re)starting one router's FRR daemons after a drill killed them, outside the supervisor.

The supervisor starts every daemon at `up` as its own child. A drill that SIGKILLs bgpd, or crashes a
whole PoP, must start them again: this does so with the same argv the supervisor used (so the same
pid files, sockets and config), detached from the drill's process (a later Ctrl-C of the drill must
not reach them), and records each new pid in the lab's ledger so `down` and `clean` remove it.
"""

from __future__ import annotations

import time

from ..errors import LabError
from ..render.frr import render_router
from ..runtime import frr, paths, procs
from ..runtime.cleanup import pidfile_pid
from ..runtime.frr import RouterDaemons
from ..runtime.ledger import Ledger
from ..runtime.state import RunningLab
from ..runtime.vtysh import vtysh


def router_daemons(lab: RunningLab, router: str) -> RouterDaemons:
    return RouterDaemons(render_router(lab.plan, lab.plan.nodes[router]), lab.router_dir(router))


def daemon_pid(lab: RunningLab, router: str, daemon: str) -> int | None:
    """The live host pid of one of the router's daemons, from its pid file, if it is this lab's process."""
    return pidfile_pid(lab.router_dir(router) / f"{daemon}.pid", str(lab.directory), lab.pid(router))


def start(lab: RunningLab, router: str, daemons: list[str] | None = None) -> dict[str, int]:
    """Start the router's daemons that are not running (all of its daemons, or those named), in FRR's order,
    detached from the drill (frr.start). Returns daemon -> new pid; raises LabError if one does not come up."""
    ledger = Ledger(paths.ledger_file(lab.directory))

    def wanted(_rd: RouterDaemons, daemon: str) -> bool:
        return (daemons is None or daemon in daemons) and daemon_pid(lab, router, daemon) is None

    def record(what: str, pid: int) -> None:
        ledger.record("process", what, pid=pid, start=procs.start_time(pid))

    started = frr.start([router_daemons(lab, router)], lambda name: lab.handle(name).spawn, record, wanted,
                        detach=True)
    return {what.split("/", 1)[1]: pid for what, pid in started.items()}


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
