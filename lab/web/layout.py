"""Where the web view draws each node: its own location when the topology gives one, else near what it is
joined to.

Order of preference, per node: its `lat`/`lon` or `city:` (the same lookup as the links' delays,
links/shaping.py); a client sits at its ISP; a node with only a `continent:` at that continent's middle,
spread out; anything else at the mean of its placed neighbours, nudged around them so that several such
nodes do not sit on one point. A part of the graph with no location anywhere goes on a ring in the
Atlantic, clearly apart from the placed nodes. A pure function of the plan, so it is unit-tested on
generated topologies.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

from ..geo import Location
from ..plan import Plan
from ..shaping import Deriver

How = Literal["given", "isp", "continent", "neighbours", "ring"]

# Rough middles of each continent's land (lat, lon): only for nodes that name a continent and nothing else.
CONTINENT_MIDDLES: dict[str, tuple[float, float]] = {
    "africa": (5.0, 20.0), "asia": (35.0, 100.0), "europe": (50.0, 10.0), "north-america": (40.0, -95.0),
    "oceania": (-25.0, 135.0), "south-america": (-15.0, -60.0)}
NUDGE_DEG = 6.0  # how far a node placed by its neighbours (or a continent) sits from their middle
RING = (25.0, -35.0, 18.0)  # the ring for wholly unplaced parts: centre lat, lon, radius in degrees


@dataclass(frozen=True)
class Placed:
    lat: float
    lon: float
    how: How


def _clamp(lat: float, lon: float) -> tuple[float, float]:
    lon = (lon + 180.0) % 360.0 - 180.0
    return max(-80.0, min(80.0, lat)), lon


def _around(lat: float, lon: float, index: int, count: int, radius: float) -> tuple[float, float]:
    if count <= 1 and index == 0:
        return _clamp(lat + radius * 0.5, lon + radius * 0.5)
    angle = 2 * math.pi * index / max(count, 1) + math.pi / 4
    return _clamp(lat + radius * math.sin(angle), lon + radius * math.cos(angle))


def _mean_lon(lons: list[float]) -> float:
    """The circular mean: the middle of Tokyo and Denver is over the Pacific, not over Africa."""
    x = sum(math.cos(math.radians(v)) for v in lons)
    y = sum(math.sin(math.radians(v)) for v in lons)
    return math.degrees(math.atan2(y, x)) if (x or y) else 0.0


def place(plan: Plan) -> dict[str, Placed]:
    topo = plan.topology
    deriver = Deriver(topo)
    out: dict[str, Placed] = {}
    for name, node in plan.nodes.items():
        if node.role == "client":
            continue
        spot = deriver.location(name) if topo.latency.from_geography else _given(deriver, name)
        if spot is not None:
            out[name] = Placed(spot.lat, spot.lon, "given")
    # a continent alone: that continent's middle, the nodes of one continent spread around it
    by_continent: dict[str, list[str]] = defaultdict(list)
    for name in plan.nodes:
        continent = getattr(deriver.places.get(name), "continent", None)
        if name not in out and plan.nodes[name].role != "client" and continent in CONTINENT_MIDDLES:
            by_continent[continent].append(name)
    for continent, names in by_continent.items():
        lat, lon = CONTINENT_MIDDLES[continent]
        for i, name in enumerate(names):
            la, lo = _around(lat, lon, i, len(names), NUDGE_DEG)
            out[name] = Placed(la, lo, "continent")
    neighbours: dict[str, set[str]] = defaultdict(set)
    for link in plan.links:
        neighbours[link.a].add(link.b)
        neighbours[link.b].add(link.a)
    routers = [n for n, node in plan.nodes.items() if node.role != "client"]
    # by neighbours, in waves outward from what is placed; each wave's nodes share out the space around
    # the point they are drawn to
    for _ in range(len(routers)):
        wave = [n for n in routers if n not in out and any(m in out for m in neighbours[n])]
        if not wave:
            break
        at_point: dict[tuple[float, float], list[str]] = defaultdict(list)
        targets: dict[str, tuple[float, float]] = {}
        for name in wave:
            spots = [out[m] for m in sorted(neighbours[name]) if m in out]
            target = (round(sum(s.lat for s in spots) / len(spots), 3), round(_mean_lon([s.lon for s in spots]), 3))
            targets[name] = target
            at_point[target].append(name)
        for name in wave:
            group = at_point[targets[name]]
            la, lo = _around(*targets[name], group.index(name), len(group), NUDGE_DEG)
            out[name] = Placed(la, lo, "neighbours")
    rest = [n for n in routers if n not in out]
    for i, name in enumerate(rest):
        la, lo = _around(RING[0], RING[1], i, len(rest), RING[2])
        out[name] = Placed(la, lo, "ring")
    for client in plan.clients:
        isp = out.get(client.isp or "")
        out[client.name] = Placed(isp.lat, isp.lon, "isp") if isp else Placed(RING[0], RING[1], "ring")
    return {name: out[name] for name in plan.nodes}


def _given(deriver: Deriver, name: str) -> Location | None:
    """With geography off, coordinates still say where a node is (cities are not looked up then)."""
    spot = deriver.places.get(name)
    lat, lon = getattr(spot, "lat", None), getattr(spot, "lon", None)
    return Location(lat, lon) if lat is not None and lon is not None else None
