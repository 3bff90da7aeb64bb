"""Golden files: a topology's rendered frr.conf per router, pinned. Regenerate with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.render.frr import render_all

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
CASES = {"default": "topologies/default.yaml", "small": "topologies/small.yaml", "bfd": "tests/topologies/bfd.yaml",
         "ecmp": "tests/topologies/ecmp.yaml"}
ROOT = Path(__file__).resolve().parents[2]


def rendered(case: str) -> dict[str, str]:
    plan = build_plan(load_topology(ROOT / CASES[case]))
    return {name: cfg.unified for name, cfg in render_all(plan).items()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_golden(case: str) -> None:
    configs = rendered(case)
    folder = GOLDEN / case
    if os.environ.get("UPDATE_GOLDEN"):
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.frr.conf"):
            old.unlink()
        for name, text in configs.items():
            (folder / f"{name}.frr.conf").write_text(text)
    expected = {p.name.removesuffix(".frr.conf"): p.read_text() for p in folder.glob("*.frr.conf")}
    assert sorted(expected) == sorted(configs), "routers differ from the golden set"
    for name, text in configs.items():
        assert text == expected[name], f"{case}/{name}.frr.conf differs (UPDATE_GOLDEN=1 to accept)"


def test_daemon_parts_hold_only_their_lines() -> None:
    plan = build_plan(load_topology(ROOT / CASES["bfd"]))
    cfg = render_all(plan)["ams"]
    assert cfg.daemons == ["zebra", "bfdd", "ospfd", "bgpd"]
    assert "router bgp" not in cfg.for_daemon("bfdd") and "router ospf" not in cfg.for_daemon("bfdd")
    assert " ip ospf bfd profile lab" in cfg.for_daemon("ospfd") and "\nbfd\n" not in cfg.for_daemon("ospfd")
    assert "router ospf" not in cfg.for_daemon("bgpd") and "neighbor 10.0.0.3 bfd profile lab" in cfg.parts["bgpd"]


def test_each_router_names_itself_to_frr_and_to_vtysh() -> None:
    for name, cfg in render_all(build_plan(load_topology(ROOT / CASES["small"]))).items():
        assert f"\nhostname {name}\n" in cfg.unified and cfg.vtysh_conf == f"hostname {name}\n"
