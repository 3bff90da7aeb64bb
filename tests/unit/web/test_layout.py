"""Where the web view puts nodes (lab/web/layout.py): given locations exactly, clients at their ISP, and every
other node somewhere sensible, on the shipped topologies and on generated ones (with and without locations)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from anycastlab.generate import random_topology
from anycastlab.model import Topology, load_topology
from anycastlab.plan import Plan, build_plan
from anycastlab.web.layout import CONTINENT_MIDDLES, NUDGE_DEG, place
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[3]


def shipped(name: str) -> Plan:
    return build_plan(load_topology(ROOT / "topologies" / f"{name}.yaml"))


def from_doc(tmp_path: Path, doc: dict[str, object]) -> Plan:
    path = tmp_path / "t.yaml"
    with path.open("w") as f:
        YAML(typ="safe").dump(doc, f)
    return build_plan(load_topology(path))


def degrees(a: tuple[float, float], b: tuple[float, float]) -> float:
    dlon = abs(a[1] - b[1]) % 360
    return math.hypot(a[0] - b[0], min(dlon, 360 - dlon))


def check_sane(plan: Plan) -> None:
    spots = place(plan)
    assert set(spots) == set(plan.nodes)
    for name, spot in spots.items():
        assert -90 <= spot.lat <= 90 and -180 <= spot.lon <= 180, (name, spot)
    for client in plan.clients:
        isp = spots[client.isp or ""]
        assert (spots[client.name].lat, spots[client.name].lon) == (isp.lat, isp.lon)
    routers = [(round(s.lat, 3), round(s.lon, 3)) for n, s in spots.items()
               if plan.nodes[n].role != "client" and s.how != "given"]
    assert len(routers) == len(set(routers)), "two nodes without a location were put on one spot"


def test_default_topology_is_drawn_where_its_file_says() -> None:
    plan = shipped("default")
    spots = place(plan)
    topo: Topology = plan.topology
    fra = next(p for p in topo.pops if p.name == "fra")
    assert (spots["fra"].lat, spots["fra"].lon, spots["fra"].how) == (fra.lat, fra.lon, "given")
    assert all(s.how in ("given", "isp") for s in spots.values())
    check_sane(plan)


def test_a_continent_alone_puts_a_pop_near_that_continents_middle() -> None:
    plan = shipped("small")  # ams: europe, ord: north-america, nothing else located
    spots = place(plan)
    for pop, continent in (("ams", "europe"), ("ord", "north-america")):
        assert spots[pop].how == "continent"
        assert degrees((spots[pop].lat, spots[pop].lon), CONTINENT_MIDDLES[continent]) <= NUDGE_DEG + 1e-6
    # the transits and ISPs sit near what they are joined to, not at some fixed corner
    assert spots["ta"].how == "neighbours" and degrees((spots["ta"].lat, spots["ta"].lon),
                                                       (spots["ams"].lat, spots["ams"].lon)) < 15
    check_sane(plan)


def test_a_node_without_location_sits_between_its_neighbours(tmp_path: Path) -> None:
    plan = from_doc(tmp_path, {
        "name": "between",
        "transits": [{"name": "ta", "asn": 64510, "lat": 40.0, "lon": -74.0, "peers": ["tb"]},
                     {"name": "tb", "asn": 64511, "lat": 52.0, "lon": 13.0}],
        "pops": [{"name": "p1", "upstreams": ["ta", "tb"]}],
        "eyeballs": [{"name": "isp", "asn": 64520, "upstreams": ["ta"], "clients": 1}],
        "origin": {"upstreams": ["tb"], "pops": ["p1"]},
    })
    spots = place(plan)
    middle = ((40.0 + 52.0) / 2, (-74.0 + 13.0) / 2)
    assert spots["p1"].how == "neighbours"
    assert degrees((spots["p1"].lat, spots["p1"].lon), middle) <= NUDGE_DEG + 1
    check_sane(plan)


def test_the_middle_of_neighbours_across_the_antimeridian_is_over_the_pacific(tmp_path: Path) -> None:
    plan = from_doc(tmp_path, {
        "name": "pacific",
        "transits": [{"name": "ta", "asn": 64510, "lat": 35.0, "lon": 170.0, "peers": ["tb"]},
                     {"name": "tb", "asn": 64511, "lat": 35.0, "lon": -170.0}],
        "pops": [{"name": "p1", "upstreams": ["ta", "tb"]}],
        "eyeballs": [{"name": "isp", "asn": 64520, "upstreams": ["ta"], "clients": 1}],
        "origin": {"upstreams": ["tb"], "pops": ["p1"]},
    })
    spot = place(plan)["p1"]
    assert abs(spot.lon) > 160, spot


@pytest.mark.parametrize("seed", range(12))
def test_generated_topologies_place_every_node(tmp_path: Path, seed: int) -> None:
    """random_topology gives no locations at all: every node still gets a distinct, valid spot."""
    plan = from_doc(tmp_path, random_topology(seed, transits=3 + seed % 3, pops=2 + seed % 4, eyeballs=3))
    assert {s.how for s in place(plan).values()} <= {"ring", "isp", "neighbours", "continent"}
    check_sane(plan)
