"""The readiness gate: a lab is ready when BGP says so (the anycast /32 at every eyeball, and each PoP's
unicast /32 at every eyeball that policy lets it reach: predict.reachable) and every client reaches the
anycast address; with DNS steering on, also every ISP's resolver and the authoritative server answering, with
every PoP's health check UP."""

from __future__ import annotations

import ipaddress
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from . import observe
from .errors import LabError
from .predict import reachable
from .runtime import netns
from .runtime.state import RunningLab

POLL_INTERVAL = 0.25
WORKERS = 8


@dataclass
class GateReport:
    sessions_total: int = 0
    sessions_down: list[str] = field(default_factory=list)
    routes_missing: list[str] = field(default_factory=list)
    clients_unreachable: list[str] = field(default_factory=list)
    checked_clients: bool = False
    steering_missing: list[str] = field(default_factory=list)  # DNS steering's servers, when it is on

    @property
    def ready(self) -> bool:
        return (self.checked_clients and not self.sessions_down and not self.routes_missing
                and not self.clients_unreachable and not self.steering_missing)

    def summary(self) -> str:
        up = self.sessions_total - len(self.sessions_down)
        parts = [f"BGP sessions {up}/{self.sessions_total} established"]
        if not self.sessions_down:
            missing = len(self.routes_missing)
            parts.append(f"{missing} route{'' if missing == 1 else 's'} missing "
                         "(anycast and PoP unicast at eyeballs, origin at PoPs)")
        if self.checked_clients:
            parts.append(f"{len(self.clients_unreachable)} clients cannot reach the anycast address")
        if self.steering_missing:
            parts.append(f"DNS steering: {len(self.steering_missing)} not ready")
        return "; ".join(parts)

    def missing(self) -> list[str]:
        return ([f"session not established: {s}" for s in self.sessions_down]
                + [f"route missing on: {r}" for r in self.routes_missing]
                + [f"client cannot reach the anycast address: {c}" for c in self.clients_unreachable]
                + [f"DNS steering: {m}" for m in self.steering_missing])


# A service's own readiness (DNS steering: resolvers answering, gdnsd answering, every PoP UP), asked once the
# network is: what is still missing, empty when ready. The supervisor passes it; the gate knows no service.
ServiceCheck = Callable[[RunningLab], list[str]]


def check(lab: RunningLab, pool: ThreadPoolExecutor, steering: ServiceCheck | None = None) -> GateReport:
    plan = lab.plan
    report = GateReport()

    def router_sessions(router: str) -> list[tuple[str, str, str]]:
        try:
            found = observe.sessions(plan, router, lab.vty(router))
        except LabError:
            return [(router, nb.name, "no answer") for nb in plan.nodes[router].neighbors]
        return [(router, s.peer, s.state) for s in found if not s.established]

    down: dict[tuple[str, ...], str] = {}
    for found in pool.map(router_sessions, [r.name for r in plan.routers]):
        for router, peer, state in found:
            down.setdefault(tuple(sorted((router, peer))), f"{router}: {state}")
    report.sessions_total = len(plan.sessions())
    report.sessions_down = [f"{a}-{b} ({why})" for (a, b), why in sorted(down.items())]
    if down:
        return report
    anycast = plan.topology.anycast.network
    unicast_reach = {p.name: reachable(plan.topology, p.name) for p in plan.pops}  # what policy lets through

    def wanted(eyeball: str) -> list[ipaddress.IPv4Network]:
        return [anycast, *(ipaddress.IPv4Network(f"{plan.unicast_of(p)}/32") for p in unicast_reach
                          if eyeball in unicast_reach[p])]

    routes = pool.map(lambda e: (e.name, netns.missing_routes(lab.pid(e.name), wanted(e.name))), plan.eyeballs)
    for name, missing in routes:
        pops = [plan.pop_by_unicast(str(p.network_address)) for p in missing if p != anycast]
        if anycast in missing:
            report.routes_missing.append(name)
        if pops:
            report.routes_missing.append(f"{name} (no route to the unicast address of {', '.join(map(str, pops))})")
    origin = plan.nodes[plan.topology.origin.name]
    assert origin.loopback is not None
    to_origin = ipaddress.IPv4Network(f"{origin.loopback}/32")
    backbone = pool.map(lambda p: (p.name, netns.route_to(lab.pid(p.name), to_origin)), plan.pops)
    report.routes_missing += [f"{name} (no backbone route to the origin)" for name, route in backbone if route is None]
    if report.routes_missing:
        return report
    reach = pool.map(lambda c: (c.name, ping(lab.exec_argv(c.name, []), str(plan.topology.anycast.ip))), plan.clients)
    report.clients_unreachable = [name for name, ok in reach if not ok]
    report.checked_clients = True
    if steering is not None and not report.clients_unreachable:
        report.steering_missing = steering(lab)
    return report


def ping(in_node: list[str], address: str, count: int = 1, wait_s: int = 1) -> bool:
    """One bounded ICMP echo from inside a node (`in_node`: its exec prefix)."""
    out = subprocess.run([*in_node, "ping", "-n", "-q", "-c", str(count), "-W", str(wait_s), address],
                         capture_output=True, timeout=count * wait_s + 5)
    return out.returncode == 0


def wait_ready(lab: RunningLab, timeout: float, progress: Callable[[str, list[str]], None],
               steering: ServiceCheck | None = None) -> GateReport:
    """Poll until ready or `timeout`; reports each change of the summary, with what is still missing."""
    deadline = time.monotonic() + timeout
    last = ""
    with ThreadPoolExecutor(WORKERS) as pool:
        while True:
            report = check(lab, pool, steering)
            if report.summary() != last:
                last = report.summary()
                progress(last, report.missing())
            if report.ready or time.monotonic() >= deadline:
                return report
            time.sleep(POLL_INTERVAL)
