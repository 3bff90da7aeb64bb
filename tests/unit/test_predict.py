"""Offline catchment prediction (lab/predict.py): known catchments of shipped topologies, ties kept as sets,
and agreement with an independent path-vector simulation of the rendered policy on seeded random topologies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from anycastlab.cli.main import cli
from anycastlab.generate import random_topology
from anycastlab.model import Topology, load_topology
from anycastlab.plan import _relations
from anycastlab.predict import RANK, predict, reachable
from click.testing import CliRunner
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]


def load_doc(tmp_path: Path, doc: dict[str, object]) -> Topology:
    path = tmp_path / f"{doc['name']}.yaml"
    with path.open("w") as f:
        YAML(typ="safe").dump(doc, f)
    return load_topology(path)


def simulate(topo: Topology) -> dict[str, set[str]]:
    """BGP as a path vector, iterated synchronously to its fixed point: each router keeps every route best by
    (relation rank, AS-path length), refuses paths through itself, and a PoP keeps only its own route; a
    neighbour exports its own and its customers' routes to everyone, the rest only to its customers.
    Returns each router's PoPs over all its tied routes (what an ECMP FIB reaches)."""
    rel: dict[tuple[str, str], str] = {}  # (me, neighbour) -> what the neighbour is to me
    inverse = {"provider": "customer", "customer": "provider", "peer": "peer"}
    for a, b, r in _relations(topo):
        rel[(a, b)] = r
        rel[(b, a)] = inverse[r]
    neighbours: dict[str, list[str]] = {}
    for a, b in rel:
        neighbours.setdefault(a, []).append(b)
    pops = {p.name for p in topo.pops}
    # route: (class, path) where path runs from the next hop to the originating PoP
    best: dict[str, list[tuple[str, tuple[str, ...]]]] = {p: [("local", ())] for p in pops}
    for _ in range(100):
        new: dict[str, list[tuple[str, tuple[str, ...]]]] = {p: [("local", ())] for p in pops}
        for me in sorted(neighbours):
            if me in pops:
                continue
            offers = []
            for n in neighbours[me]:
                for cls, path in best.get(n, []):
                    exported = cls in ("local", "customer") or rel[(n, me)] == "customer"  # me is its customer
                    if exported and me not in path:
                        offers.append((rel[(me, n)], (n, *path)))
            if offers:
                key = min((RANK[c], len(p)) for c, p in offers)  # type: ignore[index]
                new[me] = sorted({o for o in offers if (RANK[o[0]], len(o[1])) == key})  # type: ignore[index]
        if new == best:
            break
        best = new
    else:
        raise AssertionError("the simulation did not converge")
    return {r: {path[-1] for _, path in routes} for r, routes in best.items() if r not in pops}


def test_shipped_topologies_predict_the_known_catchments() -> None:
    default = predict(load_topology(ROOT / "topologies/default.yaml"))
    assert {e.name: sorted(default.pops_of(e.name)) for e in default.topology.eyeballs} == {
        "dtag": ["fra"], "orange": ["iad"], "comcast": ["iad"], "kddi": ["nrt"], "starhub": ["sin"],
        "optus": ["syd"], "vivo": ["gru"]}
    assert default.routes["dtag"].relation == "peer" and default.routes["orange"].length == 2
    small = predict(load_topology(ROOT / "topologies/small.yaml"))
    assert small.pops_of("ispa") == {"ams"} and small.pops_of("ispb") == {"ord"}  # ispb peers ord


def test_ties_are_kept_as_sets() -> None:
    p = predict(load_topology(ROOT / "tests/topologies/ecmp.yaml"))
    assert p.pops_of("ta") == {"p1", "p2"} and p.routes["ta"].relation == "customer"
    assert p.pops_of("isp") == {"p1", "p2"}
    assert p.pops_of("ispb") == {"p1", "p2", "p3"} and p.routes["ispb"].via == {"ta", "tb"}
    shares = {s["pop"]: (s["certain"], s["tied"]) for s in p.shares()}
    assert shares == {"p1": (0, 10), "p2": (0, 10), "p3": (0, 4)}


@pytest.mark.parametrize("case", ["topologies/default.yaml", "topologies/small.yaml", "tests/topologies/ecmp.yaml",
                                  "tests/topologies/bfd.yaml", "tests/topologies/backbone.yaml"])
def test_shipped_topologies_match_the_path_vector_simulation(case: str) -> None:
    topo = load_topology(ROOT / case)
    offline = predict(topo)
    sim = simulate(topo)
    routers = [n for n in sim if n != topo.origin.name] + [e.name for e in topo.eyeballs]
    assert {r: set(offline.pops_of(r)) for r in routers} == {r: sim.get(r, set()) for r in routers}


@pytest.mark.parametrize("seed", range(40))
def test_random_topologies_match_the_path_vector_simulation(tmp_path: Path, seed: int) -> None:
    size = 2 + seed % 5
    topo = load_doc(tmp_path, random_topology(seed, transits=size, pops=1 + seed % 4, eyeballs=size))
    offline = predict(topo)
    sim = simulate(topo)
    every = {t.name for t in topo.transits} | {e.name for e in topo.eyeballs} | {topo.origin.name}
    assert {r: set(offline.pops_of(r)) for r in every} == {r: sim.get(r, set()) for r in every}


def test_random_topologies_are_seeded_and_have_ties(tmp_path: Path) -> None:
    assert random_topology(3) == random_topology(3) and random_topology(3) != random_topology(4)
    tied = 0
    for seed in range(10):
        p = predict(load_doc(tmp_path, random_topology(seed)))
        tied += sum(len(p.pops_of(e.name)) > 1 for e in p.topology.eyeballs)
    assert tied >= 5  # the generator is for testing ties


def test_predict_verb_text_and_json() -> None:
    runner = CliRunner()
    text = runner.invoke(cli, ["predict", str(ROOT / "tests/topologies/ecmp.yaml")])
    assert text.exit_code == 0, text.output
    assert "p1 | p2 | p3" in text.output and "multipath on: flows spread over the tied PoPs" in text.output
    out = runner.invoke(cli, ["predict", "small", "--json"])
    data = json.loads(out.output)
    assert data["multipath"] is False and data["clients"][0] == {"name": "ispa-c1", "pops": ["ams"]}
    assert {e["name"]: e["route"]["relation"] for e in data["eyeballs"]} == {"ispa": "provider", "ispb": "peer"}


def test_validate_can_print_the_prediction() -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["validate", "small", "--predict"])
    assert out.exit_code == 0, out.output
    assert "expected catchment (offline" in out.output and "ispb" in out.output
    data = json.loads(runner.invoke(cli, ["validate", "small", "--json", "--predict"]).output)
    assert data["prediction"]["eyeballs"][1]["pops"] == ["ord"]
    assert "prediction" not in json.loads(runner.invoke(cli, ["validate", "small", "--json"]).output)


def test_validate_render_writes_the_golden_configs(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["validate", "small", "--render", str(tmp_path / "cfg")])
    assert out.exit_code == 0, out.output
    assert "rendered 7 frr.conf files" in out.output
    golden = ROOT / "tests/golden/small"
    written = sorted(p.name for p in (tmp_path / "cfg").iterdir())
    assert written == sorted(p.name for p in golden.glob("*.frr.conf"))
    assert all((tmp_path / "cfg" / n).read_text() == (golden / n).read_text() for n in written)
    (tmp_path / "file").write_text("")
    bad = CliRunner().invoke(cli, ["validate", "small", "--render", str(tmp_path / "file" / "x")])
    assert bad.exit_code == 1 and "error: cannot write the rendered configs" in bad.output


def test_a_pop_unicast_reaches_only_where_valley_free_export_takes_it() -> None:
    # ecmp: p3's only transit, tb, neither sells to nor peers with isp's only transit ta.
    topo = load_topology(ROOT / "tests/topologies/ecmp.yaml")
    assert "isp" not in reachable(topo, "p3") and {"ispb", "tb"} <= reachable(topo, "p3")
    assert {"isp", "ispb"} <= reachable(topo, "p1")
    default = load_topology(ROOT / "topologies/default.yaml")
    eyeballs = {e.name for e in default.eyeballs}
    assert all(eyeballs <= reachable(default, p.name) for p in default.pops)
