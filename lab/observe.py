"""Reading a running lab's control plane: BGP sessions and best paths, from FRR's JSON."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .plan import Plan
from .runtime.vtysh import vtysh_json


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


def sessions(plan: Plan, router: str, directory: Path) -> list[Session]:
    data = vtysh_json(directory, "show bgp ipv4 unicast summary json")
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


def best_path(directory: Path, prefix: ipaddress.IPv4Network) -> dict[str, Any] | None:
    """The best path's JSON for exactly `prefix`, or None when the router has no route to it."""
    data = vtysh_json(directory, f"show bgp ipv4 unicast {prefix} json")
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


def predicted_pop(plan: Plan, isp: str, directory: Path) -> str | None:
    """The PoP the ISP router's best path to the anycast /32 leads to: where its clients should land."""
    return pop_of(plan, best_path(directory, plan.topology.anycast.network))


def announcing(plan: Plan, pop: str, directory: Path) -> bool:
    """Whether the PoP originates the anycast /32 and advertises it to at least one neighbour."""
    path = best_path(directory, plan.topology.anycast.network)
    if path is None:
        return False
    return bool(path.get("sourced") or path.get("local")) and bool(path.get("advertisedTo"))
