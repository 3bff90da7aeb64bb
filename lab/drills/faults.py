"""The fault modes a drill injects, each with its restore.

Everything acts inside the lab: FRR through the routers' own vty sockets, netlink and iptables inside
the node (iptables only through the node's own exec handle), and signals only to pids read from the
lab's own pid files and ledger, each checked against its start time or command line.

Every restore can run twice and after a half-done injection: a fault that fails half-way is undone
before its error goes on, and a failed restore can be tried again by the runner's clean-up.
"""

from __future__ import annotations

import contextlib
import ipaddress
import shlex
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import LabError
from ..render.frr import DAEMON_ORDER
from ..runtime import netns, paths, procs, service
from ..runtime.ledger import Ledger
from ..runtime.service import Detached, Recorded
from ..runtime.state import RunningLab
from ..runtime.vtysh import vtysh
from ..services import edge
from . import frrctl
from .model import Fault

IPTABLES_TAG = "anycastlab-drill"
# INPUT and FORWARD drop what arrives; OUTPUT drops what the PoP sends (its keepalives, its answers).
_BLACKHOLE_RULES = [["INPUT", "!", "-i", "lo"], ["OUTPUT", "!", "-o", "lo"], ["FORWARD"]]
PROXY_START_S = 15.0
ORIGIN_ROUTE_S = 20.0


@dataclass
class Injected:
    """A fault in place, and how to undo it."""

    fault: Fault
    undo: Callable[[], None]
    details: dict[str, object] = field(default_factory=dict)

    def matches(self, mode: str | None, pop: str | None, link: tuple[str, str] | None) -> bool:
        return ((mode is None or self.fault.mode == mode) and (pop is None or self.fault.pop == pop)
                and (link is None or self.fault.link == link))


def inject(lab: RunningLab, fault: Fault) -> Injected:
    """Put the fault in place; the returned Injected undoes it. Half-done, it is undone before raising."""
    return _MODES[fault.mode](lab, fault)


def _applied(fault: Fault, do: Callable[[], object], undo: Callable[[], None],
             details: dict[str, object] | None = None) -> Injected:
    try:
        do()
    except BaseException:
        with contextlib.suppress(Exception):
            undo()
        raise
    return Injected(fault, undo, details or {})


def _pop(fault: Fault) -> str:
    assert fault.pop is not None  # the model requires it for every PoP mode
    return fault.pop


# --- FRR ---------------------------------------------------------------------------------------------

def _bgp(lab: RunningLab, router: str, *lines: str) -> None:
    vtysh(lab.vty(router), "configure terminal", f"router bgp {lab.plan.nodes[router].asn}", *lines)


def _neighbors(lab: RunningLab, router: str, names: list[str] | None) -> list[str]:
    known = {nb.name: str(nb.address) for nb in lab.plan.nodes[router].neighbors}
    if names is None:
        return list(known.values())
    missing = [n for n in names if n not in known]
    if missing:
        raise LabError(f"{router} has no BGP neighbour {', '.join(missing)} (it has: {', '.join(known)})")
    return [known[n] for n in names]


def _withdraw(lab: RunningLab, fault: Fault) -> Injected:
    pop = _pop(fault)
    vty = lab.vty(pop)
    return _applied(fault, lambda: edge.set_announcement(lab.plan, vty, False),
                    lambda: edge.set_announcement(lab.plan, vty, True))


def _graceful_shutdown(lab: RunningLab, fault: Fault) -> Injected:
    pop = _pop(fault)
    return _applied(fault, lambda: _bgp(lab, pop, "bgp graceful-shutdown"),
                    lambda: _bgp(lab, pop, "no bgp graceful-shutdown"))


def _session_down(lab: RunningLab, fault: Fault) -> Injected:
    pop = _pop(fault)
    addresses = _neighbors(lab, pop, fault.neighbors)
    return _applied(fault, lambda: _bgp(lab, pop, *(f"neighbor {a} shutdown" for a in addresses)),
                    lambda: _bgp(lab, pop, *(f"no neighbor {a} shutdown" for a in addresses)),
                    {"neighbors": addresses})


def _kill_bgpd(lab: RunningLab, fault: Fault) -> Injected:
    pop = _pop(fault)
    pid = frrctl.daemon_pid(lab, pop, "bgpd")
    if pid is None:
        raise LabError(f"{pop} has no running bgpd to kill")
    bgpd = Recorded.of(f"{pop}/bgpd", pid)

    def kill() -> None:
        service.kill([bgpd])
        procs.wait_for(lambda: not bgpd.alive(), 5.0)

    return _applied(fault, kill, lambda: frrctl.restart(lab, pop, ["bgpd"]), {"killed": [f"{pop}/bgpd ({pid})"]})


# --- processes ---------------------------------------------------------------------------------------

def pop_processes(lab: RunningLab, pop: str) -> list[Recorded]:
    """Every live process of the PoP: its FRR daemons (pid files) and its services (ledger), never its shell."""
    found: dict[int, Recorded] = {}
    for daemon in DAEMON_ORDER:
        pid = frrctl.daemon_pid(lab, pop, daemon)
        if pid is not None:
            found[pid] = Recorded.of(f"{pop}/{daemon}", pid)
    for entry in Ledger(paths.ledger_file(lab.directory)).of_kind("process"):
        if entry.name.startswith(f"{pop}/") and "pid" in entry.data:
            process = Recorded(entry.name, entry.data["pid"], entry.data.get("start"))
            if process.alive():
                found.setdefault(process.pid, process)
    return list(found.values())


def _detached(lab: RunningLab) -> Detached:
    """How a drill starts a service again: outliving the drill, recorded in the lab's ledger."""
    return Detached(Ledger(paths.ledger_file(lab.directory)))


def _restart_dns(lab: RunningLab, pop: str) -> None:
    """Start the PoP's DNS identity service again, unless it still runs (recorded in the ledger)."""
    edge.PopDns(lab.plan, lab.name, pop).ensure(lab, _detached(lab))


def _restart_proxy(lab: RunningLab, pop: str) -> None:
    """Start the PoP's proxy again (unless it runs); the supervisor's health watch re-announces the PoP."""
    proxy = edge.Proxy(lab.plan, lab.name, pop)
    if service.wait_healthy([(proxy, proxy.ensure(lab, _detached(lab)))], PROXY_START_S):
        raise LabError(f"{pop}'s restarted proxy is not healthy after {PROXY_START_S:.0f} s "
                       f"(see {proxy.command().log})")


def _proxy_crash(lab: RunningLab, fault: Fault) -> Injected:
    pop = _pop(fault)
    proxies = edge.Proxy(lab.plan, lab.name, pop).recorded(Ledger(paths.ledger_file(lab.directory)))
    if not proxies:
        raise LabError(f"{pop} runs no edge proxy in this lab")
    return _applied(fault, lambda: service.kill(proxies), lambda: _restart_proxy(lab, pop),
                    {"killed": [f"{p.name} ({p.pid})" for p in proxies]})


def _crash(lab: RunningLab, fault: Fault) -> Injected:
    pop = _pop(fault)
    victims = pop_processes(lab, pop)
    had_proxy = any(p.name == f"{pop}/proxy" for p in victims)
    links = [i.name for i in lab.plan.nodes[pop].interfaces]

    def crash() -> None:
        service.kill(victims)
        _set_links(lab, pop, up=False)
        procs.wait_for(lambda: not any(p.alive() for p in victims), 5.0)

    def undo_crash() -> None:
        # bgpd last: a PoP that announces before its backbone reaches the origin and its proxy answers
        # draws its clients back only to answer them 502 (measured: 0.5 s of 502s with bgpd first).
        _set_links(lab, pop, up=True)
        frrctl.start(lab, pop, [d for d in DAEMON_ORDER if d != "bgpd"])
        _wait_for_origin_route(lab, pop)
        _restart_dns(lab, pop)
        if had_proxy:
            _restart_proxy(lab, pop)
        frrctl.restart(lab, pop, ["bgpd"])

    return _applied(fault, crash, undo_crash, {"killed": [f"{p.name} ({p.pid})" for p in victims], "links": links})


def _wait_for_origin_route(lab: RunningLab, pop: str) -> None:
    """Wait (bounded) until the PoP and the origin have backbone routes to each other's loopbacks.

    Both ways: after a crash the PoP learns the origin's route first, while the origin's SPF (backed off
    by the failures) adds the PoP's loopback seconds later; a proxy fetching in between, from its loopback,
    waits on a SYN nobody can answer (measured: 2-4 s of timed-out requests after the clients came back).
    """
    origin_name = lab.plan.topology.origin.name
    origin, here = lab.plan.nodes[origin_name].loopback, lab.plan.nodes[pop].loopback
    if origin is None or here is None:
        return
    to_origin, to_pop = ipaddress.IPv4Network(f"{origin}/32"), ipaddress.IPv4Network(f"{here}/32")

    def both() -> bool:
        return netns.route_to(lab.pid(pop), to_origin) is not None and \
            netns.route_to(lab.pid(origin_name), to_pop) is not None

    if not procs.wait_for(both, ORIGIN_ROUTE_S, interval=0.1):
        raise LabError(f"{pop} and the origin have no backbone routes to each other "
                       f"{ORIGIN_ROUTE_S:.0f} s after the restart")


# --- links and packets -------------------------------------------------------------------------------

def _set_links(lab: RunningLab, node: str, up: bool, only: str | None = None) -> list[str]:
    """Set the node's interfaces (all but lo, or the one facing `only`) up or down through netlink."""
    names = [i.name for i in lab.plan.nodes[node].interfaces if only is None or i.peer == only]
    if only is not None and not names:
        raise LabError(f"no link between {node} and {only}")
    done = []
    with netns.iproute(lab.pid(node)) as ipr:
        for name in names:
            index = ipr.link_lookup(ifname=name)
            if index:
                ipr.link("set", index=index[0], state="up" if up else "down")
                done.append(name)
    return done


def _link_down(lab: RunningLab, fault: Fault) -> Injected:
    assert fault.link is not None
    a, b = fault.link

    def both(up: bool) -> None:
        _set_links(lab, a, up=up, only=b)
        _set_links(lab, b, up=up, only=a)

    names = [i.name for i in lab.plan.nodes[a].interfaces if i.peer == b]
    return _applied(fault, lambda: both(False), lambda: both(True), {"links": [f"{a}:{n}" for n in names]})


def _iptables(lab: RunningLab, node: str, *args: str) -> str:
    argv = lab.exec_argv(node, ["iptables", "-w", "5", *args])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    if out.returncode != 0:
        raise LabError(f"iptables {' '.join(args)} in {node} failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def tagged_rules(lab: RunningLab, node: str) -> list[list[str]]:
    """The drill's iptables rules in the node's filter table, each as the arguments after `-A`."""
    return [shlex.split(line)[1:] for line in _iptables(lab, node, "-S").splitlines()
            if line.startswith("-A ") and IPTABLES_TAG in line]


def _unblackhole(lab: RunningLab, node: str) -> None:
    """Delete every rule the drill tagged (whatever part of the blackhole went in), then check none is left."""
    for rule in tagged_rules(lab, node):
        _iptables(lab, node, "-D", *rule)
    left = tagged_rules(lab, node)
    if left:
        raise LabError(f"{node} still has the drill's iptables rules: {left}")


def _blackhole(lab: RunningLab, fault: Fault) -> Injected:
    pop = _pop(fault)

    def drop_all() -> None:
        for chain, *match in _BLACKHOLE_RULES:
            _iptables(lab, pop, "-I", chain, *match, "-m", "comment", "--comment", IPTABLES_TAG, "-j", "DROP")

    return _applied(fault, drop_all, lambda: _unblackhole(lab, pop))


# --- the origin ----------------------------------------------------------------------------------------

def _origin_mode(lab: RunningLab, mode: str) -> None:
    """Switch the lab's origin server through its control socket: `down` closes its listeners (PoPs get
    connections refused and fall back to what they may serve stale), `ok` opens them again."""
    from ..edge.mgmt import MgmtError, call
    from .edgestats import origin_socket

    try:
        status, data = call(origin_socket(lab.name), "POST", "/mode", {"mode": mode}, timeout=5.0)
    except MgmtError as exc:
        raise LabError(f"the origin's control socket did not answer: {exc}") from exc
    if status != 200 or not isinstance(data, dict) or data.get("mode") != mode:
        raise LabError(f"the origin refused mode {mode!r}: HTTP {status} {data}")


def _origin_down(lab: RunningLab, fault: Fault) -> Injected:
    return _applied(fault, lambda: _origin_mode(lab, "down"), lambda: _origin_mode(lab, "ok"))


_MODES: dict[str, Callable[[RunningLab, Fault], Injected]] = {
    "withdraw": _withdraw,
    "graceful-shutdown": _graceful_shutdown,
    "session-down": _session_down,
    "kill-bgpd": _kill_bgpd,
    "crash": _crash,
    "link-down": _link_down,
    "blackhole": _blackhole,
    "proxy-crash": _proxy_crash,
    "origin-down": _origin_down,
}
