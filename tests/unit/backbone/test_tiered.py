"""The tiered cache's wiring: which upper tier each PoP uses, and the proxy and origin command lines
(pinned in tests/golden/backbone/default.argv.txt; UPDATE_GOLDEN=1 to accept a change)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from anycastlab.backbone import tiered
from anycastlab.backbone.prober import backbone_interfaces
from anycastlab.edge.endpoints import origin_url
from anycastlab.errors import LabError
from anycastlab.model import load_topology
from anycastlab.plan import Plan, build_plan
from anycastlab.services import edge

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "backbone" / "default.argv.txt"


def plan(name: str = "topologies/default.yaml") -> Plan:
    return build_plan(load_topology(ROOT / name))


def test_nearest_upper_tier_by_backbone_hops() -> None:
    p = plan()
    assert tiered.uppers(p) == ["iad"]
    assert tiered.upper_for(p, "iad") is None
    assert {pop.name: tiered.upper_for(p, pop.name) for pop in p.pops if pop.name != "iad"} == {
        "fra": "iad", "nrt": "iad", "sin": "iad", "syd": "iad", "gru": "iad"}
    assert tiered.backbone_hops(p, "syd")["iad"] == 2


def test_origin_for_follows_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = plan()
    origin = origin_url(p)
    assert tiered.origin_for(p, "sin", origin) == origin  # declared, but off at start
    monkeypatch.setattr(tiered, "mode_file", lambda lab: tmp_path / "tiered")
    assert not tiered.enabled_in("x", p)
    (tmp_path / "tiered").write_text("on\n")  # a runtime switch outlives the topology's setting
    assert tiered.enabled_in("x", p)
    assert tiered.origin_for(p, "sin", origin, enabled=True) == f"http://{p.nodes['iad'].loopback}:80"
    assert tiered.origin_for(p, "iad", origin, enabled=True) == origin
    assert tiered.origin_for(plan("topologies/small.yaml"), "ams", "x", enabled=True) == "x"


def test_prober_covers_both_ends_of_every_backbone_link() -> None:
    p = plan()
    ends = {(r, i) for r, i, _, _ in backbone_interfaces(p)}
    links = [link for link in p.links if link.kind == "backbone"]
    assert len(ends) == 2 * len(links)
    assert ("sin", "iad") in ends and ("iad", "sin") in ends and ("origin", "iad") in ends


def test_argv_golden(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiered, "mode_file", lambda lab: tmp_path / "tiered")  # no running lab's switch
    p = plan()
    lines = ["origin: " + " ".join(edge.origin_argv(p, "default")[3:])]
    lines += [f"{pop.name}: " + " ".join(edge.proxy_argv(p, "default", pop.name)[3:]) for pop in p.pops]
    text = "\n".join(lines) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "argv differs from the golden file (UPDATE_GOLDEN=1 to accept)"


def test_a_refused_switch_puts_back_the_proxies_already_repointed(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    p = plan()
    monkeypatch.setattr(tiered, "mode_file", lambda lab: tmp_path / "tiered")
    calls: list[tuple[str, str]] = []

    def call(sock: Path, method: str, path: str, body: dict[str, str]) -> tuple[int, dict[str, str]]:
        pop = sock.parent.name
        calls.append((pop, body["url"]))
        return (500, {"error": "no"}) if pop == "nrt" and len(calls) == 2 else (200, {})

    monkeypatch.setattr(tiered.mgmt, "call", call)
    lab = SimpleNamespace(name="x", plan=p)
    with pytest.raises(LabError, match="nrt: the proxy refused"):
        tiered.switch(lab, True)  # type: ignore[arg-type]
    upper, origin = f"http://{p.nodes['iad'].loopback}:80", origin_url(p)
    assert calls == [("fra", upper), ("nrt", upper), ("fra", origin)]  # fra back on the origin
    assert not (tmp_path / "tiered").exists()  # and the switch is not recorded
