"""The tiered cache: lower-tier PoPs send misses to the nearest upper-tier PoP instead of the origin.

The upper tier's proxy also listens on its backbone loopback (reachable only over the private backbone),
and a lower tier's proxy uses that address as its origin: a miss at the lower tier that hits at the upper
tier never reaches the origin. It is switched at runtime by repointing each lower tier's proxy through its
management socket; the switch is remembered in `backbone/tiered` for `backbone show`.
"""

from __future__ import annotations

import contextlib
from collections import deque
from pathlib import Path

from ..edge import mgmt
from ..edge.endpoints import HTTP_PORT, origin_url, proxy_socket
from ..errors import LabError
from ..plan import Plan
from ..runtime import paths
from ..runtime.state import RunningLab


def uppers(plan: Plan) -> list[str]:
    tiered = plan.topology.tiered_cache
    return list(tiered.upper) if tiered is not None else []


def backbone_hops(plan: Plan, start: str) -> dict[str, int]:
    """Hop counts over backbone links from `start` to every backbone router (breadth first)."""
    adjacent: dict[str, list[str]] = {}
    for link in plan.links:
        if link.kind == "backbone":
            adjacent.setdefault(link.a, []).append(link.b)
            adjacent.setdefault(link.b, []).append(link.a)
    hops = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in adjacent.get(node, []):
            if nxt not in hops:
                hops[nxt] = hops[node] + 1
                queue.append(nxt)
    return hops


def upper_for(plan: Plan, pop: str) -> str | None:
    """The upper tier a PoP sends its misses to (nearest in backbone hops, then topology order), or None
    for an upper tier itself and for topologies without a tiered cache."""
    tops = uppers(plan)
    if not tops or pop in tops:
        return None
    hops = backbone_hops(plan, pop)
    reachable = [u for u in tops if u in hops]
    return min(reachable, key=lambda u: (hops[u], tops.index(u))) if reachable else None


def upper_url(plan: Plan, upper: str) -> str:
    return f"http://{plan.nodes[upper].loopback}:{HTTP_PORT}"


def extra_listen(plan: Plan, pop: str) -> list[str]:
    """Listeners an upper tier adds: its backbone loopback, where lower tiers reach it."""
    return [f"{plan.nodes[pop].loopback}:{HTTP_PORT}"] if pop in uppers(plan) else []


def origin_for(plan: Plan, pop: str, origin_url: str, enabled: bool | None = None) -> str:
    """Where a PoP's proxy fetches misses: its upper tier when the tiered cache is on, else the origin."""
    tiered = plan.topology.tiered_cache
    on = (tiered is not None and tiered.enabled) if enabled is None else enabled
    upper = upper_for(plan, pop)
    return upper_url(plan, upper) if on and upper is not None else origin_url


def mode_file(lab: str) -> Path:
    return paths.lab_dir(lab) / "backbone" / "tiered"


def enabled(lab: RunningLab) -> bool:
    return enabled_in(lab.name, lab.plan)


def enabled_in(lab: str, plan: Plan) -> bool:
    """The tiered cache's current state: the last runtime switch, else the topology's setting (so a proxy
    restarted after a switch, by a drill say, fetches where its peers do)."""
    try:
        return mode_file(lab).read_text().strip() == "on"
    except FileNotFoundError:
        tiered = plan.topology.tiered_cache
        return tiered is not None and tiered.enabled


def switch(lab: RunningLab, on: bool) -> dict[str, str]:
    """Repoint every lower tier's proxy (upper tier when on, origin when off). Returns pop -> upstream.

    If a proxy refuses, the ones already repointed are put back, so the tiers never stay half switched."""
    plan = lab.plan
    if not uppers(plan):
        raise LabError(f"lab {lab.name!r} has no upper tier (add `tiered_cache: {{upper: [POP]}}` to its topology)")
    done: dict[str, str] = {}
    try:
        for pop in plan.pops:
            if upper_for(plan, pop.name) is not None:
                done[pop.name] = _repoint(lab, pop.name, origin_for(plan, pop.name, origin_url(plan), on))
    except LabError:
        for pop_name in done:
            with contextlib.suppress(LabError):
                _repoint(lab, pop_name, origin_for(plan, pop_name, origin_url(plan), not on))
        raise
    path = mode_file(lab.name)
    path.parent.mkdir(exist_ok=True)
    path.write_text("on\n" if on else "off\n")
    return done


def _repoint(lab: RunningLab, pop: str, url: str) -> str:
    try:
        status, body = mgmt.call(proxy_socket(lab.name, pop), "POST", "/origin", {"url": url})
    except mgmt.MgmtError as exc:
        raise LabError(f"{pop}: {exc}") from exc
    if status != 200:
        raise LabError(f"{pop}: the proxy refused the new origin {url}: {body}")
    return url
