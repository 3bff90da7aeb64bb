"""World topologies (lab/world.py, `anycastlab generate`): deterministic per seed, always valid, and shaped
as the internet is (tier-1 full mesh, regionals per continent, PoPs in real and distinct cities)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from anycastlab import geo
from anycastlab.cli.main import cli
from anycastlab.model import load_topology
from anycastlab.predict import predict
from anycastlab.world import CONTINENTS, MIN_POP_SPACING_KM, share_out, world_cities, world_topology
from click.testing import CliRunner

CITIES = world_cities()


def generate(tmp_path: Path, *args: str) -> Path:
    out = tmp_path / f"w{len(list(tmp_path.iterdir()))}.yaml"
    result = CliRunner().invoke(cli, ["generate", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_same_seed_same_file_and_another_seed_another(tmp_path: Path) -> None:
    a = generate(tmp_path, "--pops", "12", "--eyeballs", "15", "--seed", "3")
    b = generate(tmp_path, "--pops", "12", "--eyeballs", "15", "--seed", "3")
    c = generate(tmp_path, "--pops", "12", "--eyeballs", "15", "--seed", "4")
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_stdout_is_the_same_file(tmp_path: Path) -> None:
    out = generate(tmp_path, "--pops", "8", "--eyeballs", "8", "--seed", "5")
    result = CliRunner().invoke(cli, ["generate", "--pops", "8", "--eyeballs", "8", "--seed", "5"])
    assert result.exit_code == 0
    assert result.output == out.read_text()


@pytest.mark.parametrize(("seed", "pops", "eyeballs", "clients"),
                         [(1, 40, 50, 4), (2, 20, 20, 1), (3, 6, 6, 2), (9, 60, 120, 2), (11, 2, 1, 1)])
def test_every_generated_file_validates_and_every_client_has_a_route(tmp_path: Path, seed: int, pops: int,
                                                                      eyeballs: int, clients: int) -> None:
    path = generate(tmp_path, "--pops", str(pops), "--eyeballs", str(eyeballs), "--clients-per-isp",
                    str(clients), "--seed", str(seed))
    topo = load_topology(path)
    assert (len(topo.pops), len(topo.eyeballs)) == (pops, eyeballs)
    assert sum(e.clients for e in topo.eyeballs) == eyeballs * clients
    assert not predict(topo).to_json()["unreachable"]


def test_hierarchy_cities_and_spread() -> None:
    doc = world_topology(1, pops=40, eyeballs=50, clients_per_isp=4, cities=CITIES)
    tier1 = [t for t in doc["transits"] if t["name"].startswith("tier1")]
    regional = [t for t in doc["transits"] if not t["name"].startswith("tier1")]
    pairs = {frozenset((t["name"], p)) for t in tier1 for p in t.get("peers", [])}
    assert pairs == {frozenset(p) for p in itertools.combinations([t["name"] for t in tier1], 2)}  # full mesh
    assert all(not t.get("upstreams") for t in tier1)
    tier1_names = {t["name"] for t in tier1}
    for r in regional:  # a customer of two tier-1s, peering only within its continent
        assert len(r["upstreams"]) == 2 and set(r["upstreams"]) <= tier1_names
        cont = {t["name"]: t["continent"] for t in regional}
        assert all(cont[p] == r["continent"] for p in r.get("peers", []))
    assert {r["continent"] for r in regional} == set(CONTINENTS)
    regional_cont = {r["name"]: r["continent"] for r in regional}
    for node in doc["pops"] + doc["eyeballs"]:  # transit from a regional of its own continent first
        assert regional_cont[node["upstreams"][0]] == node["continent"]
    assert {p["continent"] for p in doc["pops"]} == set(CONTINENTS)
    assert any(p.get("peers") for p in doc["pops"])  # some PoPs peer directly with an eyeball
    known = {(c.name, c.lat, c.lon) for cs in CITIES.values() for c in cs}
    for node in doc["pops"] + doc["eyeballs"] + doc["transits"]:
        assert (node["city"], node["lat"], node["lon"]) in known  # real GeoNames cities
    places = [geo.Location(p["lat"], p["lon"]) for p in doc["pops"]]
    assert min(geo.distance_km(a, b) for a, b in itertools.combinations(places, 2)) >= MIN_POP_SPACING_KM
    assert len(doc["backbone"]) == len(doc["pops"]) - 1  # a spanning tree


def test_share_out_is_proportional_with_a_floor() -> None:
    assert share_out(10, {"a": 1.0, "b": 1.0}) == {"a": 5, "b": 5}
    assert share_out(10, {"a": 97.0, "b": 1.0, "c": 2.0}) == {"a": 8, "b": 1, "c": 1}
    assert sum(share_out(41, {"a": 3.3, "b": 1.7, "c": 0.1}).values()) == 41


@pytest.mark.parametrize("args", [["--pops", "1"], ["--eyeballs", "0"], ["--clients-per-isp", "0"],
                                  ["--pops", "1000"]])
def test_bad_sizes_are_usage_errors_and_write_nothing(tmp_path: Path, args: list[str]) -> None:
    out = tmp_path / "x.yaml"
    result = CliRunner().invoke(cli, ["generate", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert "must be between" in result.output
    assert not out.exists()
