"""The fault modes a drill injects, each with its restore.

Everything acts inside the lab: FRR through the routers' own vty sockets, netlink and iptables inside
the node's namespace (iptables only through `mnexec -a PID`), and signals only to pids read from the
lab's own pid files and ledger, each checked against its start time or command line.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import LabError
from ..runtime import netns, paths, procs
from ..runtime.ledger import Ledger
from ..runtime.state import RunningLab
from ..runtime.vtysh import vtysh
from . import frrctl
from .model import Fault

IPTABLES_TAG = "anycastlab-drill"
# INPUT and FORWARD drop what arrives; OUTPUT drops what the PoP sends (its keepalives, its answers).
_BLACKHOLE_RULES = [["INPUT", "!", "-i", "lo"], ["OUTPUT", "!", "-o", "lo"], ["FORWARD"]]


@dataclass
class Injected:
    """A fault in place, and how to undo it."""

    fault: Fault
    undo: Callable[[], None]
    details: dict[str, object] = field(default_factory=dict)

    def matches(self, mode: str | None, pop: str | None, link: tuple[str, str] | None) -> bool:
        return ((mode is None or self.fault.mode == mode) and (pop is None or self.fault.pop == pop)
                and (link is None or self.fault.link == link))


def _bgp(lab: RunningLab, router: str, *lines: str) -> None:
    asn = lab.plan.nodes[router].asn
    vtysh(lab.router_dir(router), "configure terminal", f"router bgp {asn}", *lines)


def _originate(lab: RunningLab, pop: str, on: bool) -> None:
    prefix = lab.plan.topology.anycast.network
    _bgp(lab, pop, "address-family ipv4 unicast", f"{'' if on else 'no '}network {prefix} route-map ORIGINATE")


def _neighbors(lab: RunningLab, router: str, names: list[str] | None) -> list[str]:
    node = lab.plan.nodes[router]
    known = {nb.name: str(nb.address) for nb in node.neighbors}
    if names is None:
        return list(known.values())
    missing = [n for n in names if n not in known]
    if missing:
        raise LabError(f"{router} has no BGP neighbour {', '.join(missing)} (it has: {', '.join(known)})")
    return [known[n] for n in names]


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


def _iptables(lab: RunningLab, node: str, action: str, rule: list[str]) -> None:
    argv = ["mnexec", "-a", str(lab.pid(node)), "iptables", "-w", "5", action, rule[0], *rule[1:],
            "-m", "comment", "--comment", IPTABLES_TAG, "-j", "DROP"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    if out.returncode != 0:
        raise LabError(f"iptables in {node} failed: {(out.stderr or out.stdout).strip()}")


def pop_processes(lab: RunningLab, pop: str) -> list[tuple[str, int]]:
    """Every live process of the PoP: its FRR daemons (pid files) and its services (ledger), never its shell."""
    found: dict[int, str] = {}
    for daemon in frrctl.ORDER:
        pid = frrctl.daemon_pid(lab, pop, daemon)
        if pid is not None:
            found[pid] = f"{pop}/{daemon}"
    for entry in Ledger(lab.directory / "ledger.jsonl").of_kind("process"):
        if entry.name.startswith(f"{pop}/") and "pid" in entry.data and \
                procs.is_alive(entry.data["pid"], entry.data.get("start")):
            found.setdefault(entry.data["pid"], entry.name)
    return [(name, pid) for pid, name in found.items()]


def _sigkill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def restart_pop_services(lab: RunningLab, pop: str) -> list[str]:
    """Start the PoP's own services again (the DNS identity service; the proxy once the lab runs one)."""
    anycast = str(lab.plan.topology.anycast.ip)
    log = paths.pop_dir(lab.name, pop)
    log.mkdir(parents=True, exist_ok=True)
    argv = ["setsid", sys.executable, "-m", "anycastlab.services.pop_dns", "--pop", pop, "--listen", anycast]
    proc = procs.spawn(argv, netns_pid=lab.pid(pop), log=log / "dns.log", die_with_parent=False)
    Ledger(lab.directory / "ledger.jsonl").record("process", f"{pop}/dns", pid=proc.pid,
                                                  start=procs.start_time(proc.pid))
    return [f"{pop}/dns"]


def inject(lab: RunningLab, fault: Fault) -> Injected:
    """Put the fault in place; the returned Injected undoes it."""
    mode, pop = fault.mode, fault.pop
    if mode == "withdraw":
        assert pop is not None
        _originate(lab, pop, False)
        return Injected(fault, lambda: _originate(lab, pop, True))
    if mode == "graceful-shutdown":
        assert pop is not None
        _bgp(lab, pop, "bgp graceful-shutdown")
        return Injected(fault, lambda: _bgp(lab, pop, "no bgp graceful-shutdown"))
    if mode == "session-down":
        assert pop is not None
        addresses = _neighbors(lab, pop, fault.neighbors)
        _bgp(lab, pop, *(f"neighbor {a} shutdown" for a in addresses))
        return Injected(fault, lambda: _bgp(lab, pop, *(f"no neighbor {a} shutdown" for a in addresses)),
                        {"neighbors": addresses})
    if mode == "kill-bgpd":
        assert pop is not None
        pid = frrctl.daemon_pid(lab, pop, "bgpd")
        if pid is None:
            raise LabError(f"{pop} has no running bgpd to kill")
        _sigkill(pid)
        procs.wait_for(lambda: procs.start_time(pid) is None, 5.0)
        return Injected(fault, lambda: _restart(lab, pop, ["bgpd"]), {"killed": [f"{pop}/bgpd ({pid})"]})
    if mode == "crash":
        assert pop is not None
        victims = pop_processes(lab, pop)
        for _, pid in victims:
            _sigkill(pid)
        links = _set_links(lab, pop, up=False)
        procs.wait_for(lambda: all(procs.start_time(p) is None for _, p in victims), 5.0)

        had_proxy = any(name == f"{pop}/proxy" for name, _ in victims)

        def undo_crash() -> None:
            # bgpd last: a PoP that announces before its backbone reaches the origin and its proxy answers
            # draws its clients back only to answer them 502 (measured: 0.5 s of 502s with bgpd first).
            _set_links(lab, pop, up=True)
            frrctl.start(lab, pop, [d for d in frrctl.ORDER if d != "bgpd"])
            _wait_for_origin_route(lab, pop)
            restart_pop_services(lab, pop)
            if had_proxy:
                _restart_proxy(lab, pop)
            _restart(lab, pop, ["bgpd"])

        return Injected(fault, undo_crash, {"killed": [f"{n} ({p})" for n, p in victims], "links": links})
    if mode == "link-down":
        assert fault.link is not None
        a, b = fault.link
        down = _set_links(lab, a, up=False, only=b) + _set_links(lab, b, up=False, only=a)

        def undo_link() -> None:
            _set_links(lab, a, up=True, only=b)
            _set_links(lab, b, up=True, only=a)

        return Injected(fault, undo_link, {"links": down})
    if mode == "blackhole":
        assert pop is not None
        added: list[list[str]] = []
        try:
            for rule in _BLACKHOLE_RULES:
                _iptables(lab, pop, "-I", rule)
                added.append(rule)
        except BaseException:
            for rule in reversed(added):
                _iptables(lab, pop, "-D", rule)
            raise

        def undo_blackhole() -> None:
            for rule in reversed(added):
                _iptables(lab, pop, "-D", rule)

        return Injected(fault, undo_blackhole)
    if mode == "proxy-crash":
        assert pop is not None
        proxies = [(n, p) for n, p in pop_processes(lab, pop) if n == f"{pop}/proxy"]
        if not proxies:
            raise LabError(f"{pop} runs no edge proxy in this lab")
        for _, pid in proxies:
            _sigkill(pid)
        return Injected(fault, lambda: _restart_proxy(lab, pop), {"killed": [f"{n} ({p})" for n, p in proxies]})
    if mode == "origin-down":
        _origin_mode(lab, "down")
        return Injected(fault, lambda: _origin_mode(lab, "ok"))
    raise LabError(f"fault mode {mode!r} is not implemented by the drill runner yet")


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


def _restart_proxy(lab: RunningLab, pop: str) -> None:
    """Start the PoP's proxy again; the supervisor's health watch re-announces the PoP once it answers."""
    from ..services import edge

    edge.restart_proxy(lab.plan, lab.name, pop, lab.pid(pop), lab.directory / "ledger.jsonl")
    procs.wait_for(lambda: edge.proxy_healthy(lab.name, pop), 15.0, interval=0.1)


def _wait_for_origin_route(lab: RunningLab, pop: str, timeout: float = 20.0) -> None:
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

    if not procs.wait_for(both, timeout, interval=0.1):
        raise LabError(f"{pop} and the origin have no backbone routes to each other {timeout:.0f} s after the restart")


def _restart(lab: RunningLab, router: str, daemons: list[str] | None) -> None:
    started = frrctl.start(lab, router, daemons)
    if "bgpd" in started:
        _ensure_networks(lab, router)


def _ensure_networks(lab: RunningLab, router: str, timeout: float = 10.0) -> None:
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
            running = vtysh(lab.router_dir(router), "show running-config")
            if all(line in running for line in lines):
                return
            _bgp(lab, router, "address-family ipv4 unicast", *lines)
        except LabError:
            pass  # not answering yet
        if time.monotonic() >= deadline:
            raise LabError(f"{router}'s restarted bgpd does not originate {', '.join(map(str, node.announce))}")
        time.sleep(0.5)
