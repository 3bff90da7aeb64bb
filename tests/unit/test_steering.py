"""DNS steering offline: the model's errors, the steering plan (resolver addresses, each ISP's PoP order and its
tie-break), and the rendered gdnsd, zone and unbound files (golden, UPDATE_GOLDEN=1 to accept)."""

from __future__ import annotations

import ipaddress
import os
import subprocess
from pathlib import Path

import pytest
from anycastlab.errors import TopologyError
from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.render.frr import render_all
from anycastlab.steering import render
from anycastlab.steering.plan import steering_plan

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "steering"
TOPOLOGY = ROOT / "tests" / "topologies" / "steering.yaml"
RUN = Path("/run/anycastlab/steering/steering")


def rendered() -> dict[str, str]:
    sp = steering_plan(build_plan(load_topology(TOPOLOGY)))
    assert sp is not None
    files = {"gdnsd.config": render.gdnsd_config(sp, RUN / "gdnsd"), "example.com.zone": render.zone_file(sp)}
    for isp, resolver in sp.resolvers.items():
        files[f"unbound-{isp}.conf"] = render.unbound_config(sp.config, resolver, str(sp.authoritative),
                                                             RUN / "unbound" / isp)
    files["origin.frr.conf"] = render_all(build_plan(load_topology(TOPOLOGY)))["origin"].unified
    return files


def test_golden() -> None:
    files = rendered()
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (GOLDEN / name).write_text(text)
    for name, text in files.items():
        assert text == (GOLDEN / name).read_text(), f"{name} differs (UPDATE_GOLDEN=1 to accept)"


@pytest.mark.skipif(not Path("/usr/sbin/gdnsd").exists(), reason="gdnsd is not installed")
def test_gdnsd_accepts_the_rendered_config(tmp_path: Path) -> None:
    sp = steering_plan(build_plan(load_topology(TOPOLOGY)))
    assert sp is not None
    (tmp_path / "zones").mkdir()
    (tmp_path / "config").write_text(render.gdnsd_config(sp, tmp_path))
    (tmp_path / "zones" / "example.com").write_text(render.zone_file(sp))
    out = subprocess.run(["/usr/sbin/gdnsd", "-c", str(tmp_path), "checkconf"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 0, out.stderr
    assert "Zone example.com. with serial 1 loaded" in out.stderr


def test_the_plan_puts_each_resolver_in_its_isps_prefix_and_orders_pops() -> None:
    plan = build_plan(load_topology(TOPOLOGY))
    sp = steering_plan(plan)
    assert sp is not None
    assert str(sp.authoritative) == "203.0.113.10"
    assert {isp: str(r.address) for isp, r in sp.resolvers.items()} == {"ispa": "100.64.15.254",
                                                                       "ispb": "100.64.200.14"}
    clients = {ipaddress.ip_address(c.interfaces[0].address.ip) for c in plan.clients}
    assert not any(r.address in clients for r in sp.resolvers.values())
    # ispa's only route leads to ams (ta's customer); ispb peers with ord
    assert sp.resolvers["ispa"].pops == ("ams", "ord") and sp.resolvers["ispb"].pops == ("ord", "ams")


def test_a_tie_goes_to_the_nearest_pop_then_topology_order() -> None:
    from anycastlab.steering.plan import preference

    topo = load_topology(ROOT / "tests" / "topologies" / "ecmp.yaml")
    order = preference(topo, "isp", frozenset({"p1", "p2"}))
    assert set(order[:2]) == {"p1", "p2"} and len(order) == len(topo.pops)
    assert preference(topo, "isp", frozenset()) == tuple(sorted((p.name for p in topo.pops),
                                                                key=[p.name for p in topo.pops].index))


def test_off_by_default() -> None:
    plan = build_plan(load_topology(ROOT / "topologies" / "default.yaml"))
    assert steering_plan(plan) is None
    assert "TRANSIT-SRC" not in render_all(plan)["origin"].unified


def error_for(tmp_path: Path, steering: str, extra: str = "") -> TopologyError:
    text = TOPOLOGY.read_text().split("steering:")[0] + extra + "steering:\n  dns:\n" + steering
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    return info.value


@pytest.mark.parametrize(("steering", "field", "words"), [
    ("    ttl: 1.5s\n", "steering.dns.ttl", "whole number of seconds"),
    ("    ttl: 5\n", "steering.dns.ttl", "unit"),
    ("    name: dns.example.org\n", "steering.dns", "not inside the zone 'example.com'"),
    ("    name: Not_A_Name\n", "steering.dns.name", "not a lowercase DNS name"),
    ("    health: {interval: 2s, timeout: 2s}\n", "steering.dns.health", "must be shorter than interval"),
    ("    health: {interval: 1s}\n", "steering.dns.health.interval", "must be at least 2, not 1"),
    ("    resolver: {}\n", "steering.dns.resolver", "unknown field"),
])
def test_errors_name_the_field(tmp_path: Path, steering: str, field: str, words: str) -> None:
    err = error_for(tmp_path, steering)
    assert err.field == field and words in err.message, (err.field, err.message)
    assert err.line is not None and err.line > 15


def test_a_prefix_without_room_for_the_resolver_is_refused(tmp_path: Path) -> None:
    text = TOPOLOGY.read_text().replace("clients: 1, prefix: 100.64.200.0/28", "clients: 2, prefix: 100.64.200.0/30")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(TopologyError) as info:
        load_topology(path)
    assert info.value.field == "eyeballs[1].prefix" and "no room for the ISP's resolver" in info.value.message
