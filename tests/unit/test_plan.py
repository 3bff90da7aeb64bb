"""The address plan: deterministic, collision-free, and faithful to the declared relations."""

from __future__ import annotations

import ipaddress
from collections import Counter
from pathlib import Path

from anycastlab.model import load_topology
from anycastlab.plan import INVERSE, build_plan, client_address


def plan_of(topologies_dir: Path, name: str = "default"):  # type: ignore[no-untyped-def]
    return build_plan(load_topology(topologies_dir / f"{name}.yaml"))


def test_plan_is_deterministic(topologies_dir: Path) -> None:
    a, b = plan_of(topologies_dir), plan_of(topologies_dir)
    def key(plan):  # type: ignore[no-untyped-def]
        return [(link.a, link.b, str(link.a_address), str(link.b_address)) for link in plan.links]

    assert key(a) == key(b)


def test_addresses_are_unique_and_paired(topologies_dir: Path) -> None:
    plan = plan_of(topologies_dir)
    addresses = [str(i.address.ip) for n in plan.nodes.values() for i in n.interfaces]
    addresses += [str(n.loopback) for n in plan.routers]
    assert not [a for a, c in Counter(addresses).items() if c > 1]
    for link in plan.links:
        assert link.a_address.network == link.b_address.network
        assert link.a_address.network.prefixlen == 31


def test_pools(topologies_dir: Path) -> None:
    plan = plan_of(topologies_dir)
    for link in plan.links:
        pool = {"ebgp": "10.0.0.0/16", "backbone": "10.254.0.0/16", "access": "100.64.0.0/10"}[link.kind]
        assert link.a_address.network.subnet_of(ipaddress.IPv4Network(pool))
    for router in plan.routers:
        assert router.loopback in ipaddress.IPv4Network("10.255.0.0/16")


def test_relations_are_symmetric(topologies_dir: Path) -> None:
    plan = plan_of(topologies_dir)
    for node in plan.routers:
        for nb in node.neighbors:
            back = [x for x in plan.nodes[nb.name].neighbors if x.name == node.name]
            assert len(back) == 1 and back[0].relation == INVERSE[nb.relation]
            assert back[0].address in [i.address.ip for i in node.interfaces]


def test_declared_relations(topologies_dir: Path) -> None:
    plan = plan_of(topologies_dir)
    rel = {(n.name, nb.name): nb.relation for n in plan.routers for nb in n.neighbors}
    assert rel[("fra", "telia")] == "provider" and rel[("telia", "fra")] == "customer"
    assert rel[("telia", "lumen")] == "peer" and rel[("fra", "dtag")] == "peer"
    assert rel[("singtel", "ntt")] == "provider"


def test_clients(topologies_dir: Path) -> None:
    plan = plan_of(topologies_dir)
    for client in plan.clients:
        assert client.isp is not None and client.gateway is not None
        assert client.interfaces[0].peer == client.isp
        assert client.interfaces[0].peer_address == client.gateway
        isp = plan.nodes[client.isp]
        assert client_address(client) in isp.announce[0]


def test_pops_announce_anycast_with_their_community(topologies_dir: Path) -> None:
    plan = plan_of(topologies_dir)
    communities = [plan.pop_community(p.name) for p in plan.pops]
    assert len(set(communities)) == len(communities)
    for pop in plan.pops:
        unicast = ipaddress.IPv4Network(f"192.0.2.{pop.pop_number}/32")
        assert pop.announce == [ipaddress.IPv4Network("198.51.100.10/32"), unicast]
        assert [str(a) for a in pop.lo_addresses] == ["198.51.100.10/32", str(unicast)]
        assert plan.unicast_of(pop.name) == unicast.network_address
        assert plan.pop_by_unicast(str(unicast.network_address)) == pop.name
        assert plan.pop_by_community(plan.pop_community(pop.name)) == pop.name
    assert plan.pop_by_community("13335:1:999") is None


def test_default_topology_meets_the_brief(topologies_dir: Path) -> None:
    topo = load_topology(topologies_dir / "default.yaml")
    assert len(topo.pops) >= 6 and len({p.continent for p in topo.pops}) >= 4
    assert len(topo.transits) >= 4
    tier1 = [t for t in topo.transits if not t.upstreams]
    peered = {frozenset((t.name, p)) for t in tier1 for p in t.peers}
    assert len(tier1) >= 4 and len(peered) == len(tier1) * (len(tier1) - 1) // 2  # a full mesh
    assert len(topo.eyeballs) >= 6 and all(e.clients >= 2 for e in topo.eyeballs)
    assert topo.origin.pops


def test_explicit_eyeball_prefix_is_skipped_by_allocation(tmp_path: Path, topologies_dir: Path) -> None:
    text = (topologies_dir / "small.yaml").read_text().replace(
        "{name: ispb, asn: 64521, upstreams: [tb], clients: 1}",
        "{name: ispb, asn: 64521, upstreams: [tb], clients: 1, prefix: 100.64.0.0/24}")
    path = tmp_path / "t.yaml"
    path.write_text(text)
    plan = build_plan(load_topology(path))
    assert str(plan.nodes["ispb"].announce[0]) == "100.64.0.0/24"
    assert not plan.nodes["ispa"].announce[0].overlaps(plan.nodes["ispb"].announce[0])
