"""A client re-homed in the plan (lab/runtime/moves.py): the next free /31 of the new ISP's prefix, the links and
interfaces of both ISPs rewritten, and the way back giving the topology's plan again; on generated topologies too."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from anycastlab.errors import LabError, UnknownNodeError
from anycastlab.generate import random_topology
from anycastlab.model import load_topology
from anycastlab.plan import Plan, build_plan, client_address
from anycastlab.runtime import moves, paths, planfile
from anycastlab.shaping import Deriver
from ruamel.yaml import YAML


def _generated(tmp_path: Path, seed: int) -> Plan:
    path = tmp_path / f"gen{seed}.yaml"
    YAML().dump(random_topology(seed, eyeballs=4, clients=3), path.open("w"))
    return build_plan(load_topology(path))


def _fingerprint(plan: Plan) -> tuple[object, ...]:
    nodes = sorted((n.name, n.isp, str(n.gateway), sorted((i.name, str(i.address)) for i in n.interfaces))
                   for n in plan.nodes.values())
    links = sorted((link.a, link.b, str(link.a_address), str(link.b_address), link.kind) for link in plan.links)
    return tuple(nodes), tuple(links)


def planfile_bytes(plan: Plan, directory: Path) -> bytes:
    directory.mkdir(exist_ok=True)
    planfile.save(directory, plan)
    return paths.plan_file(directory).read_bytes()


def _move(plan: Plan, client: str, isp: str) -> Plan:
    moves.check(plan, client, isp)
    shaping = Deriver(plan.topology).shaping(isp, client, b_at=isp)
    return moves.rehomed(plan, client, isp, moves.free_pair(plan, isp), shaping)


def test_a_moved_client_takes_the_first_free_pair_of_its_new_isp(topologies_dir: Path) -> None:
    plan = build_plan(load_topology(topologies_dir / "default.yaml"))
    moved = _move(plan, "dtag-c1", "comcast")
    node = moved.nodes["dtag-c1"]
    assert node.isp == "comcast" and [i.name for i in node.interfaces] == ["comcast"]
    block = plan.nodes["comcast"].announce[0]
    assert client_address(node) in block and node.gateway in block
    taken = {i.address.network for i in plan.nodes["comcast"].interfaces}
    assert node.interfaces[0].address.network not in taken  # not one of comcast's own clients' /31s
    assert "dtag-c1" not in [i.name for i in moved.nodes["dtag"].interfaces]
    assert "dtag-c1" in [i.name for i in moved.nodes["comcast"].interfaces]
    assert moved.link("dtag", "dtag-c1") is None and moved.link("comcast", "dtag-c1") is not None
    assert len(moved.links) == len(plan.links)
    assert plan.nodes["dtag-c1"].isp == "dtag"  # the original plan is untouched


def test_two_movers_get_different_pairs_and_going_home_restores_the_plan(tmp_path: Path) -> None:
    for seed in (3, 11):
        plan = _generated(tmp_path, seed)
        clients = [c.name for c in plan.clients]
        first, second = clients[0], clients[-1]
        isp = next(e.name for e in plan.eyeballs if e.name != plan.nodes[first].isp
                   and e.name != plan.nodes[second].isp)
        home1, home2 = plan.nodes[first].isp, plan.nodes[second].isp
        link1, link2 = plan.link(home1, first), plan.link(home2, second)
        assert link1 is not None and link2 is not None and home1 is not None and home2 is not None
        both = _move(_move(plan, first, isp), second, isp)
        a, b = client_address(both.nodes[first]), client_address(both.nodes[second])
        assert a != b and a in both.nodes[isp].announce[0] and b in both.nodes[isp].announce[0]
        addresses = [i.address.ip for n in both.nodes.values() for i in n.interfaces]
        assert len(addresses) == len(set(addresses))
        at1, at2 = moves.position(plan, first), moves.position(plan, second)
        back = moves.rehomed(both, first, home1, (link1.a_address, link1.b_address), link1.shaping, at1)
        back = moves.rehomed(back, second, home2, (link2.a_address, link2.b_address), link2.shaping, at2)
        assert _fingerprint(back) == _fingerprint(plan)
        assert planfile_bytes(back, tmp_path / "a") == planfile_bytes(plan, tmp_path / "b")  # byte for byte


def test_bad_moves_are_refused_before_anything(topologies_dir: Path) -> None:
    plan = build_plan(load_topology(topologies_dir / "default.yaml"))
    with pytest.raises(UnknownNodeError, match="unknown node 'nobody'"):
        moves.check(plan, "nobody", "comcast")
    with pytest.raises(UnknownNodeError, match="unknown node 'atlantis'"):
        moves.check(plan, "dtag-c1", "atlantis")
    with pytest.raises(LabError, match="fra is a pop, not a client"):
        moves.check(plan, "fra", "comcast")
    with pytest.raises(LabError, match="telia is a transit, not an eyeball ISP"):
        moves.check(plan, "dtag-c1", "telia")


def test_a_full_prefix_is_a_clear_error(tmp_path: Path, topologies_dir: Path) -> None:
    doc = YAML().load(topologies_dir / "default.yaml")
    doc["eyeballs"][0]["prefix"] = "100.127.255.252/30"  # two /31s: both taken by dtag's own two clients
    path = tmp_path / "tiny.yaml"
    YAML().dump(doc, path.open("w"))
    plan = build_plan(load_topology(path))
    assert plan.nodes["dtag"].announce[0] == ipaddress.IPv4Network("100.127.255.252/30")
    with pytest.raises(LabError, match="no free /31 left"):
        moves.free_pair(plan, "dtag")
    moves.free_pair(plan, "comcast")  # another ISP has room
