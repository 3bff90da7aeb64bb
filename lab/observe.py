"""Reading a running lab's control plane: BGP sessions and best paths, from FRR's JSON."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .errors import LabError
from .plan import Plan
from .runtime.vtysh import Vty, vtysh_json


@dataclass(frozen=True)
class Session:
    peer: str
    address: str
    state: str
    uptime_ms: int
    prefixes_received: int

    @property
    def established(self) -> bool:
        return self.state == "Established"


def sessions(plan: Plan, router: str, vty: Vty) -> list[Session]:
    data = vtysh_json(vty, "show bgp ipv4 unicast summary json")
    peers: dict[str, Any] = data.get("peers", {}) if isinstance(data, dict) else {}
    by_address = {str(nb.address): nb.name for nb in plan.nodes[router].neighbors}
    out = []
    for nb in plan.nodes[router].neighbors:
        info = peers.get(str(nb.address), {})
        out.append(Session(
            peer=by_address[str(nb.address)],
            address=str(nb.address),
            state=str(info.get("state", "Missing")),
            uptime_ms=int(info.get("peerUptimeMsec", 0)),
            prefixes_received=int(info.get("pfxRcd", 0) or 0),
        ))
    return out


def best_path(vty: Vty, prefix: ipaddress.IPv4Network) -> dict[str, Any] | None:
    """The best path's JSON for exactly `prefix`, or None when the router has no route to it."""
    data = vtysh_json(vty, f"show bgp ipv4 unicast {prefix} json")
    for path in data.get("paths", []) if isinstance(data, dict) else []:
        if path.get("bestpath", {}).get("overall"):
            return dict(path, advertisedTo=data.get("advertisedTo", {}))
    return None


def pop_of(plan: Plan, path: dict[str, Any] | None) -> str | None:
    """Which PoP a best path leads to, from the PoP's large community on it."""
    if path is None:
        return None
    communities = path.get("largeCommunity", {}).get("string", "").split()
    for community in communities:
        pop = plan.pop_by_community(community)
        if pop is not None:
            return pop
    return None


TIE = "|"  # a multipath prediction of several PoPs is written "fra|iad" (sorted)


def predicted_pop(plan: Plan, isp: str, vty_of: Callable[[str], Vty]) -> str | None:
    """Where the ISP's clients should land: with `bgp.multipath` off, the PoP its router's best path
    leads to (each router installs that one path); with it on, the PoPs its FIB reaches, hop by hop,
    joined by "|" when several. `vty_of` reaches each router (RunningLab.vty)."""
    if not plan.multipath:
        return pop_of(plan, best_path(vty_of(isp), plan.anycast.network))
    pops = fib_pops(plan, isp, vty_of)
    return TIE.join(pops) or None


def predicted_pop_sets(plan: Plan, vty_of: Callable[[str], Vty],
                       isps: Iterable[str] | None = None) -> dict[str, list[str]]:
    """Each eyeball's predicted PoPs (one with multipath off; the FIB-reachable set with it on); a router
    that cannot be asked predicts nothing (an empty list)."""
    names = sorted(isps) if isps is not None else [e.name for e in plan.eyeballs]
    if not plan.multipath:
        def one(isp: str) -> tuple[str, list[str]]:
            try:
                pop = pop_of(plan, best_path(vty_of(isp), plan.anycast.network))
            except LabError:
                pop = None
            return isp, [pop] if pop else []

        with ThreadPoolExecutor(8) as pool:
            return dict(pool.map(one, names))
    table = fib_next_hops(plan, vty_of)
    return {isp: walk_fib(plan, isp, table.get) for isp in names}


def _fib_next_hops_of(plan: Plan, vty: Vty) -> list[str]:
    """The neighbours a router's FIB forwards the anycast address to (interfaces are named after them)."""
    prefix = str(plan.anycast.network)
    data = vtysh_json(vty, f"show ip route {prefix} json")
    out: list[str] = []
    for entry in data.get(prefix, []) if isinstance(data, dict) else []:
        if not entry.get("installed"):
            continue
        for hop in entry.get("nexthops", []):
            name = hop.get("interfaceName")
            if hop.get("fib") and name in plan.nodes and name not in out:
                out.append(name)
    return out


def fib_next_hops(plan: Plan, vty_of: Callable[[str], Vty]) -> dict[str, list[str]]:
    """Every non-PoP router's FIB next hops towards the anycast address, asked in parallel; a router
    that cannot be asked is left out."""
    def one(router: str) -> tuple[str, list[str] | None]:
        try:
            return router, _fib_next_hops_of(plan, vty_of(router))
        except LabError:
            return router, None

    routers = [n.name for n in plan.routers if n.role != "pop"]
    with ThreadPoolExecutor(8) as pool:
        return {r: hops for r, hops in pool.map(one, routers) if hops is not None}


def walk_fib(plan: Plan, start: str, next_hops: Callable[[str], list[str] | None]) -> list[str]:
    """The PoPs reached from `start` by following every FIB next hop (ECMP branches all), sorted.
    Bounded: each router is visited once."""
    pops: set[str] = set()
    seen: set[str] = set()
    stack = [start]
    while stack:
        router = stack.pop()
        if router in seen:
            continue
        seen.add(router)
        if plan.nodes[router].role == "pop":
            pops.add(router)  # it holds the anycast address itself
            continue
        stack.extend(next_hops(router) or [])
    return sorted(pops)


def fib_pops(plan: Plan, start: str, vty_of: Callable[[str], Vty]) -> list[str]:
    """The PoPs `start`'s FIB reaches, asking each router on the way once."""
    cache: dict[str, list[str]] = {}

    def hops(router: str) -> list[str]:
        if router not in cache:
            cache[router] = _fib_next_hops_of(plan, vty_of(router))
        return cache[router]

    return walk_fib(plan, start, hops)


def announcing(plan: Plan, vty: Vty) -> bool:
    """Whether the PoP behind `vty` originates the anycast /32 and advertises it to at least one neighbour."""
    path = best_path(vty, plan.anycast.network)
    if path is None:
        return False
    return bool(path.get("sourced") or path.get("local")) and bool(path.get("advertisedTo"))
