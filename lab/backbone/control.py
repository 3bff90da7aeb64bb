"""A running lab's backbone: switch smart routing, and show links, RTTs, costs and each PoP's path.

Paths are read from the routers themselves (each hop's FRR route to the destination), not computed from
the costs, so `show` tells where an origin fetch really goes.
"""

from __future__ import annotations

import heapq
import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import LabError
from ..runtime import procs
from ..runtime.state import RunningLab
from ..runtime.vtysh import vtysh_json
from . import tiered
from .prober import backbone_interfaces, mode_file, state_file

SWITCH_TIMEOUT = 10.0


def prober_state(lab: RunningLab) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(state_file(lab.name).read_text())
    except FileNotFoundError:
        raise LabError(f"lab {lab.name!r} has no backbone prober state yet ({state_file(lab.name)})") from None
    return data


def prober_alive(state: dict[str, Any]) -> bool:
    return procs.is_alive(int(state["pid"]), state.get("start"))


def smart_mode(lab: RunningLab) -> bool:
    """Smart routing as last switched (the prober's mode file), else as the topology starts it."""
    try:
        return mode_file(lab.name).read_text().strip() == "on"
    except FileNotFoundError:
        return lab.plan.topology.smart_routing


def set_smart(lab: RunningLab, on: bool, timeout: float = SWITCH_TIMEOUT) -> dict[str, Any]:
    """Switch smart routing and wait until the prober has acted on it (costs set, or OSPF's defaults back)."""
    if not prober_alive(prober_state(lab)):
        raise LabError(f"the backbone prober is not running (see {state_file(lab.name).parent / 'prober.log'})")
    asked = time.time()
    mode_file(lab.name).write_text("on\n" if on else "off\n")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = prober_state(lab)
        links = state["links"]
        done = all(link["cost"] is not None for link in links if link["rtt_ms"] is not None) if on else \
            all(link["cost"] is None for link in links)
        if state["updated"] > asked and state["smart"] == on and done:
            return state
        time.sleep(0.2)
    raise LabError(f"the backbone prober did not switch smart routing {'on' if on else 'off'} within {timeout:.0f} s "
                   f"(see {state_file(lab.name).parent / 'prober.log'})")


def next_hops(lab: RunningLab, router: str, destination: str) -> list[str]:
    """The neighbours `router` forwards `destination` to, from FRR's selected route (several under ECMP)."""
    routes = vtysh_json(lab.vty(router), f"show ip route {destination}/32 json")
    hops: list[str] = []
    for route in routes.get(f"{destination}/32", []):
        if not route.get("selected"):
            continue
        for nexthop in route.get("nexthops", []):
            name = nexthop.get("interfaceName")
            if nexthop.get("active") and name and name not in hops and name != "lo":
                hops.append(name)
    return hops  # interfaces are named after the neighbour at the other end


def paths_to(lab: RunningLab, target: str, sources: list[str]) -> dict[str, list[str]]:
    """Each source's hop-by-hop path to `target`'s loopback, following every router's FIB (first next hop
    under ECMP). A path that loops or breaks ends with "?"."""
    plan = lab.plan
    destination = str(plan.nodes[target].loopback)
    routers = [r for r in dict.fromkeys(r for r, _, _, _ in backbone_interfaces(plan)) if r != target]
    with ThreadPoolExecutor(max_workers=4) as pool:
        table = dict(zip(routers, pool.map(lambda r: next_hops(lab, r, destination), routers), strict=True))
    out = {}
    for source in sources:
        path, here = [source], source
        while here != target:
            hops = table.get(here, [])
            if not hops or hops[0] in path or len(path) > len(routers) + 1:
                path.append("?")
                break
            here = hops[0]
            path.append(here)
        out[source] = path
    return out


def ospf_costs(lab: RunningLab) -> dict[tuple[str, str], int]:
    """(router, interface) -> the OSPF cost ospfd has in force."""
    routers = list(dict.fromkeys(r for r, _, _, _ in backbone_interfaces(lab.plan)))

    def costs(router: str) -> dict[tuple[str, str], int]:
        data = vtysh_json(lab.vty(router), "show ip ospf interface json")
        return {(router, name): int(info["cost"]) for name, info in data.get("interfaces", {}).items()
                if "cost" in info}

    out: dict[tuple[str, str], int] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for part in pool.map(costs, routers):
            out.update(part)
    return out


def shortest_costs(costs: dict[tuple[str, str], int], target: str) -> dict[str, int]:
    """Each router's lowest total OSPF cost to `target` over the backbone, given (router, interface) ->
    cost (an interface is named after the neighbour it leads to): Dijkstra on the reversed links."""
    into: dict[str, list[tuple[str, int]]] = {}
    for (router, peer), cost in costs.items():
        into.setdefault(peer, []).append((router, cost))
    best, queue = {target: 0}, [(0, target)]
    while queue:
        total, node = heapq.heappop(queue)
        if total > best[node]:
            continue
        for router, cost in into.get(node, []):
            if total + cost < best.get(router, total + cost + 1):
                best[router] = total + cost
                heapq.heappush(queue, (total + cost, router))
    return best


def converged(paths: dict[str, list[str]], costs: dict[tuple[str, str], int], target: str) -> bool:
    """Whether every path the FIBs give is a lowest-cost path under the costs ospfd has now: after a cost
    change, SPF and the FIBs have caught up."""
    best = shortest_costs(costs, target)
    for source, path in paths.items():
        if "?" in path or source not in best:
            return False
        hops = list(itertools.pairwise(path))
        if any(hop not in costs for hop in hops) or sum(costs[hop] for hop in hops) != best[source]:
            return False
    return True


def configured_delays(lab: RunningLab) -> dict[frozenset[str], float]:
    """Each link's one-way delay as the lab's link shaping has it now (after any `link set`), to set beside
    what the prober measures; empty when the lab has no link state."""
    from ..runtime.links import control as links

    try:
        return {pair: shaping.delay_ms for pair, shaping in links.current(lab.directory).items()}
    except LabError:
        return {}


def show(lab: RunningLab) -> dict[str, Any]:
    """Links (measured RTT, loss, OSPF cost), smart routing and tiered cache state, each PoP's path."""
    state = prober_state(lab)
    in_force = ospf_costs(lab)
    delays = configured_delays(lab)
    links = []
    for link in state["links"]:
        links.append({**link, "ospf_cost": in_force.get((link["router"], link["interface"])),
                      "set_delay_ms": delays.get(frozenset((link["router"], link["peer"])))})
    plan = lab.plan
    origin = plan.topology.origin.name
    pops = [p.name for p in plan.pops]
    tiered_on = tiered.enabled(lab)
    uppers = tiered.uppers(plan)
    fetch_from = {p: (tiered.upper_for(plan, p) if tiered_on else None) or origin for p in pops}
    paths = paths_to(lab, origin, pops)
    for upper in {u for p, u in fetch_from.items() if u != origin}:
        lower = [p for p, u in fetch_from.items() if u == upper]
        paths.update({p: path for p, path in paths_to(lab, upper, lower).items()})
    rtt = {(link["router"], link["peer"]): link["rtt_ms"] for link in state["links"]}
    pop_rows = []
    for pop in pops:
        path = paths[pop]
        hops = list(itertools.pairwise(path))
        known = "?" not in path and all(rtt.get(h) is not None for h in hops)
        pop_rows.append({"pop": pop, "fetches_from": fetch_from[pop], "path": path,
                         "path_rtt_ms": round(sum(rtt[h] or 0.0 for h in hops), 2) if known else None})
    return {
        "lab": lab.name, "smart_routing": state["smart"], "prober_pid": state["pid"],
        "prober_alive": prober_alive(state),
        "updated_ago_s": round(time.time() - state["updated"], 1), "probe_hz": state["probe_hz"],
        "tiered_cache": {"enabled": tiered_on, "upper": uppers}, "links": links, "pops": pop_rows,
        "changes": state.get("changes", [])[-10:],
    }
