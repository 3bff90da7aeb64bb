"""`bgp: {multipath: ...}`: what is rendered, how a prediction reads the FIB under ECMP, and what `agree`
means for a set of predicted PoPs."""

from __future__ import annotations

from pathlib import Path

from anycastlab import observe
from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.probes.probe import ClientReport
from anycastlab.probes.results import MethodResult
from anycastlab.render.frr import render_all

ROOT = Path(__file__).resolve().parents[2]


def test_multipath_off_installs_one_path_and_on_installs_ties_across_neighbour_ases() -> None:
    off = render_all(build_plan(load_topology(ROOT / "topologies/small.yaml")))
    assert all("  maximum-paths 1\n" in cfg.unified and "multipath-relax" not in cfg.unified for cfg in off.values())
    on = render_all(build_plan(load_topology(ROOT / "tests/topologies/ecmp.yaml")))
    assert all("  maximum-paths 8\n" in cfg.unified and " bgp bestpath as-path multipath-relax\n" in cfg.unified
               for cfg in on.values())


def test_the_fib_walk_follows_every_next_hop_to_the_pops() -> None:
    plan = build_plan(load_topology(ROOT / "tests/topologies/ecmp.yaml"))
    fib = {"ispb": ["ta", "tb"], "ta": ["p1", "p2"], "tb": ["p3"], "isp": ["ta"]}
    assert observe.walk_fib(plan, "isp", fib.get) == ["p1", "p2"]
    assert observe.walk_fib(plan, "ispb", fib.get) == ["p1", "p2", "p3"]
    assert observe.walk_fib(plan, "isp", {"isp": ["ta"], "ta": ["isp"]}.get) == []  # a loop ends, reaching none
    assert observe.walk_fib(plan, "isp", {}.get) == []  # no route


def report(predicted: str | None, **found: str | None) -> ClientReport:
    r = ClientReport("c1", "isp", "100.64.0.1", predicted)
    r.methods = {m: MethodResult(p) for m, p in found.items()}
    return r


def test_agree_means_inside_the_predicted_set() -> None:
    assert report("p1|p2", dns="p2", census="p2").agree
    assert report("p1|p2", dns="p1", census="p2").agree  # ECMP: flows of one client may take either
    assert not report("p1|p2", dns="p3").agree
    assert not report("p1|p2", dns="p1", census=None).agree
    assert report("p1|p2").predicted_pops == ["p1", "p2"] and report("p1").predicted_pops == ["p1"]
    assert report(None).predicted_pops == []
    assert report("p1|p2", dns="p1").to_json()["predicted_pops"] == ["p1", "p2"]
