"""The address plan and per-node intent, derived deterministically from a validated topology.

Users never type link addresses: every link, loopback and client address comes from here, allocated in
the order the topology declares things, so the same file always yields the same plan.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .shaping import Deriver, Shaping

if TYPE_CHECKING:  # the model (pydantic) is imported only to build a plan, not to read a saved one
    from .model import Topology

Role = Literal["transit", "pop", "eyeball", "origin", "client"]
Relation = Literal["customer", "peer", "provider"]
LinkKind = Literal["ebgp", "backbone", "access"]

# Local preference by the relation of the neighbour a route came from (Gao-Rexford).
LOCAL_PREF: dict[Relation, int] = {"customer": 200, "peer": 100, "provider": 50}
# A relation large community is ASN:0:N (N below); N=0 marks routes the AS originates itself.
REL_TAG: dict[str, int] = {"local": 0, "customer": 1, "peer": 2, "provider": 3}
INVERSE: dict[Relation, Relation] = {"customer": "provider", "provider": "customer", "peer": "peer"}
POP_TAG_FUNCTION = 1  # a PoP's announcement carries EDGE_ASN:1:<pop number>


@dataclass(frozen=True)
class Interface:
    name: str  # named after the node at the other end
    address: ipaddress.IPv4Interface
    peer: str
    peer_address: ipaddress.IPv4Address


@dataclass(frozen=True)
class Neighbor:
    name: str
    address: ipaddress.IPv4Address
    asn: int
    relation: Relation  # what the neighbour is to us


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    a_address: ipaddress.IPv4Interface
    b_address: ipaddress.IPv4Interface
    kind: LinkKind
    shaping: Shaping = field(default_factory=Shaping)  # each direction's delay, jitter, loss and rate


@dataclass
class Node:
    name: str
    role: Role
    asn: int | None = None
    loopback: ipaddress.IPv4Address | None = None
    interfaces: list[Interface] = field(default_factory=list)
    neighbors: list[Neighbor] = field(default_factory=list)
    announce: list[ipaddress.IPv4Network] = field(default_factory=list)
    lo_addresses: list[ipaddress.IPv4Interface] = field(default_factory=list)
    ospf: bool = False
    gateway: ipaddress.IPv4Address | None = None  # clients only
    isp: str | None = None  # clients only
    pop_number: int | None = None  # PoPs only
    unicast: ipaddress.IPv4Address | None = None  # PoPs only: the PoP's own service address (see unicast_of)

    @property
    def is_router(self) -> bool:
        return self.role != "client"


@dataclass
class Plan:
    topology: Topology
    nodes: dict[str, Node]
    links: list[Link]

    @property
    def routers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.is_router]

    @property
    def clients(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "client"]

    @property
    def pops(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "pop"]

    @property
    def eyeballs(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.role == "eyeball"]

    # The three facts of the topology that reading a running lab's state needs; a plan read from plan.json has
    # them saved (runtime/planfile.py), so `status` needs no topology validation.
    @property
    def anycast(self) -> ipaddress.IPv4Interface:
        return self.topology.anycast

    @property
    def asn(self) -> int:
        return self.topology.asn

    @property
    def multipath(self) -> bool:
        return self.topology.bgp.multipath

    def pop_community(self, pop: str) -> str:
        number = self.nodes[pop].pop_number
        return f"{self.asn}:{POP_TAG_FUNCTION}:{number}"

    def pop_by_community(self, community: str) -> str | None:
        for pop in self.pops:
            if self.pop_community(pop.name) == community:
                return pop.name
        return None

    def unicast_of(self, pop: str) -> ipaddress.IPv4Address:
        """A PoP's own service address: on its loopback beside the anycast one, announced from it alone."""
        address = self.nodes[pop].unicast
        if address is None:
            raise KeyError(f"{pop} is not a PoP")
        return address

    def pop_by_unicast(self, address: str) -> str | None:
        return next((p.name for p in self.pops if str(p.unicast) == address), None)

    def link(self, a: str, b: str) -> Link | None:
        """The link joining two nodes (in either order), or None."""
        return next((link for link in self.links if {link.a, link.b} == {a, b}), None)

    def sessions(self) -> list[tuple[str, str]]:
        """Every eBGP session once, as (router, neighbour) with router < neighbour."""
        return sorted({tuple(sorted((n.name, nb.name))) for n in self.routers for nb in n.neighbors})  # type: ignore[misc]


class _Allocator:
    """Hands out /31s from a pool, in order."""

    def __init__(self, pool: ipaddress.IPv4Network) -> None:
        self._subnets = pool.subnets(new_prefix=31)

    def pair(self) -> tuple[ipaddress.IPv4Interface, ipaddress.IPv4Interface]:
        net = next(self._subnets)
        return (ipaddress.IPv4Interface(f"{net[0]}/31"), ipaddress.IPv4Interface(f"{net[1]}/31"))


def _relations(topo: Topology) -> list[tuple[str, str, Relation]]:
    """Every eBGP adjacency once, as (a, b, what b is to a), in declaration order."""
    out: list[tuple[str, str, Relation]] = []
    seen: set[frozenset[str]] = set()

    def add(a: str, b: str, rel: Relation) -> None:
        key = frozenset((a, b))
        if key not in seen:
            seen.add(key)
            out.append((a, b, rel))

    for t in topo.transits:
        for u in t.upstreams:
            add(t.name, u, "provider")
        for p in t.peers:
            add(t.name, p, "peer")
    for pop in topo.pops:
        for u in pop.upstreams:
            add(pop.name, u, "provider")
        for p in pop.peers:
            add(pop.name, p, "peer")
    for e in topo.eyeballs:
        for u in e.upstreams:
            add(e.name, u, "provider")
        for p in e.peers:
            add(e.name, p, "peer")
    for u in topo.origin.upstreams:
        add(topo.origin.name, u, "provider")
    return out


def _client_blocks(topo: Topology) -> dict[str, ipaddress.IPv4Network]:
    """Each eyeball's client prefix: its own, or the next free /20 of the client pool."""
    from .model import CLIENT_BLOCK, CLIENT_POOL

    taken = [e.prefix for e in topo.eyeballs if e.prefix is not None]
    free = (b for b in CLIENT_POOL.subnets(new_prefix=CLIENT_BLOCK) if not any(b.overlaps(t) for t in taken))
    return {e.name: e.prefix if e.prefix is not None else next(free) for e in topo.eyeballs}


def build_plan(topo: Topology) -> Plan:
    from .model import BACKBONE_POOL, LINK_POOL, LOOPBACK_POOL, UNICAST_POOL

    nodes: dict[str, Node] = {}
    loopbacks = (LOOPBACK_POOL[i] for i in range(1, LOOPBACK_POOL.num_addresses - 1))

    for t in topo.transits:
        nodes[t.name] = Node(t.name, "transit", asn=t.asn, loopback=next(loopbacks))
    for number, p in enumerate(topo.pops, start=1):
        # PoP n's unicast address is UNICAST_POOL[n] (192.0.2.n by default): stable while PoPs are only appended.
        unicast = ipaddress.IPv4Interface(f"{UNICAST_POOL[number]}/32")
        nodes[p.name] = Node(p.name, "pop", asn=topo.asn, loopback=next(loopbacks), ospf=True,
                             pop_number=number, announce=[topo.anycast.network, unicast.network],
                             lo_addresses=[topo.anycast, unicast], unicast=unicast.ip)
    blocks = _client_blocks(topo)
    for e in topo.eyeballs:
        nodes[e.name] = Node(e.name, "eyeball", asn=e.asn, loopback=next(loopbacks), announce=[blocks[e.name]])
    origin = topo.origin
    service = ipaddress.IPv4Interface(f"{next(origin.prefix.hosts()) + 9}/32")  # 203.0.113.10 by default
    nodes[origin.name] = Node(origin.name, "origin", asn=origin.asn, loopback=next(loopbacks), ospf=True,
                              announce=[origin.prefix], lo_addresses=[service])

    links: list[Link] = []
    deriver = Deriver(topo)

    def connect(a: str, b: str, pair: tuple[ipaddress.IPv4Interface, ipaddress.IPv4Interface],
                kind: LinkKind) -> None:
        links.append(Link(a, b, pair[0], pair[1], kind, deriver.shaping(a, b)))
        nodes[a].interfaces.append(Interface(b, pair[0], b, pair[1].ip))
        nodes[b].interfaces.append(Interface(a, pair[1], a, pair[0].ip))

    ebgp = _Allocator(LINK_POOL)
    for a, b, rel in _relations(topo):
        pair = ebgp.pair()
        connect(a, b, pair, "ebgp")
        asn_a, asn_b = nodes[a].asn, nodes[b].asn
        assert asn_a is not None and asn_b is not None
        nodes[a].neighbors.append(Neighbor(b, pair[1].ip, asn_b, rel))
        nodes[b].neighbors.append(Neighbor(a, pair[0].ip, asn_a, INVERSE[rel]))

    backbone = _Allocator(BACKBONE_POOL)
    for a, b in [*topo.backbone, *((p, origin.name) for p in origin.pops)]:
        connect(a, b, backbone.pair(), "backbone")

    for e in topo.eyeballs:
        subnets = blocks[e.name].subnets(new_prefix=31)
        for client in topo.client_names(e):
            net = next(subnets)
            nodes[client] = Node(client, "client", isp=e.name, gateway=net[0])
            connect(e.name, client, (ipaddress.IPv4Interface(f"{net[0]}/31"),
                                     ipaddress.IPv4Interface(f"{net[1]}/31")), "access")
    return Plan(topo, nodes, links)


def client_address(node: Node) -> ipaddress.IPv4Address:
    """A client's one address (on its link to its ISP)."""
    return node.interfaces[0].address.ip
