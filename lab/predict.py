"""The expected catchment from the AS graph alone, without booting anything (`anycastlab predict`).

Every AS picks its routes to the anycast /32 the way the rendered policy makes BGP pick them (Gao-Rexford):

1. by the relation of the neighbour it came from: customer (local-pref 200) > peer (100) > provider (50);
2. then by AS-path length (every AS on the way adds its ASN once);
3. and it exports valley-free: its own and its customers' routes to everyone, the rest only to customers.

Routes equal on both are kept as a tie, and a router's PoPs are the union of its tied neighbours' PoPs: the
set an ECMP FIB (`bgp: {multipath: true}`) spreads flows over, and the set from which BGP's tie-break
(router-id, with multipath off) picks the one PoP a lab really uses. So for every client, the offline
prediction contains BGP's prediction, which is the PoP it is measured on.

    prediction = predict(load_topology("topologies/default.yaml"))
    prediction.routes["dtag"].pops   # frozenset({'fra'})

Computed in three passes (customer routes climb provider links, then one peer hop, then provider routes
descend to customers in order of length), so it is linear in the number of links.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from .model import Topology
from .plan import _relations

RouteClass = Literal["local", "customer", "peer", "provider"]
RANK: dict[RouteClass, int] = {"local": 0, "customer": 1, "peer": 2, "provider": 3}


@dataclass(frozen=True)
class Route:
    """An AS's best route(s) to the anycast /32: all of one class and AS-path length."""

    relation: RouteClass  # what the neighbour(s) it came from are to this AS ("local": a PoP's own)
    length: int  # AS-path length as this AS receives it (0 for a PoP's own)
    via: frozenset[str]  # the tied neighbours it came from
    pops: frozenset[str]  # the PoPs those neighbours lead to

    def to_json(self) -> dict[str, Any]:
        return {"relation": self.relation, "as_path_length": self.length, "via": sorted(self.via),
                "pops": sorted(self.pops)}


@dataclass(frozen=True)
class Prediction:
    topology: Topology
    routes: dict[str, Route]  # every router that has a route; a missing name has none

    def pops_of(self, router: str) -> frozenset[str]:
        route = self.routes.get(router)
        return route.pops if route is not None else frozenset()

    def clients(self) -> dict[str, frozenset[str]]:
        """Each client's possible PoPs (its ISP router's)."""
        return {c: self.pops_of(e.name) for e in self.topology.eyeballs for c in self.topology.client_names(e)}

    def shares(self) -> list[dict[str, Any]]:
        """Per PoP: clients that can land only there, and clients for which it is one of a tie."""
        certain: Counter[str] = Counter()
        possible: Counter[str] = Counter()
        for pops in self.clients().values():
            for pop in pops:
                (certain if len(pops) == 1 else possible)[pop] += 1
        return [{"pop": p.name, "certain": certain[p.name], "tied": possible[p.name]} for p in self.topology.pops]

    def to_json(self) -> dict[str, Any]:
        topo = self.topology
        eyeballs = []
        for e in topo.eyeballs:
            route = self.routes.get(e.name)
            eyeballs.append({"name": e.name, "clients": topo.client_names(e), "pops": sorted(self.pops_of(e.name)),
                             "tie": len(self.pops_of(e.name)) > 1, "route": route.to_json() if route else None})
        unreachable = [e["name"] for e in eyeballs if not e["pops"]]
        return {
            "topology": topo.name,
            "multipath": topo.bgp.multipath,
            "eyeballs": eyeballs,
            "clients": [{"name": c, "pops": sorted(p)} for c, p in self.clients().items()],
            "pops": self.shares(),
            "routers": {name: route.to_json() for name, route in sorted(self.routes.items())},
            "unreachable": unreachable,
        }


Offers = dict[str, list[tuple[str, Route]]]


class _Solver:
    """The three export phases of Gao-Rexford over the AS graph, each settling routers it reaches first."""

    def __init__(self, topo: Topology, origins: list[str] | None = None) -> None:
        self.providers: dict[str, list[str]] = {}
        self.customers: dict[str, list[str]] = {}
        self.peers: dict[str, list[str]] = {}
        for a, b, rel in _relations(topo):  # b is a's `rel`
            if rel == "provider":
                self._customer_of(a, b)
            elif rel == "customer":  # _relations never yields it today, but the meaning is clear
                self._customer_of(b, a)
            else:
                self.peers.setdefault(a, []).append(b)
                self.peers.setdefault(b, []).append(a)
        self.pops = {p.name for p in topo.pops}  # all in the edge AS: each refuses the others' announcements
        self.origins = sorted(self.pops if origins is None else origins)
        self.routes: dict[str, Route] = {p: Route("local", 0, frozenset(), frozenset({p})) for p in self.origins}

    def _customer_of(self, customer: str, provider: str) -> None:
        self.providers.setdefault(customer, []).append(provider)
        self.customers.setdefault(provider, []).append(customer)

    def offer(self, into: Offers, receiver: str, sender: str) -> None:
        # Every PoP is in the edge AS: a PoP refuses another PoP's announcement (its own ASN in the path).
        if receiver not in self.pops:
            into.setdefault(receiver, []).append((sender, self.routes[sender]))

    def settle(self, router: str, relation: RouteClass, offers: list[tuple[str, Route]]) -> None:
        shortest = min(r.length for _, r in offers)
        tied = [(n, r) for n, r in offers if r.length == shortest]
        self.routes[router] = Route(relation, shortest + 1, frozenset(n for n, _ in tied),
                                    frozenset().union(*(r.pops for _, r in tied)))

    def climb(self) -> None:
        """1. Customer routes climb to providers, shortest first (breadth-first by length)."""
        frontier = list(self.origins)
        while frontier:
            offers: Offers = {}
            for sender in frontier:
                for provider in self.providers.get(sender, []):
                    if provider not in self.routes:
                        self.offer(offers, provider, sender)
            for router, found in offers.items():
                self.settle(router, "customer", found)
            frontier = sorted(offers)

    def peer_hop(self) -> None:
        """2. One peer hop: a peer exports only its own and its customers' routes."""
        offers: Offers = {}
        for sender in sorted(self.routes):
            for peer in self.peers.get(sender, []):
                if peer not in self.routes:
                    self.offer(offers, peer, sender)
        for router, found in offers.items():
            self.settle(router, "peer", found)

    def descend(self) -> None:
        """3. Everything descends to customers; a router settles at its shortest provider route."""
        heap = [(route.length, name) for name, route in self.routes.items()]
        heapq.heapify(heap)
        pending: Offers = {}
        while heap:
            length, sender = heapq.heappop(heap)
            if sender not in self.routes:  # settle now: every provider offer of this length has arrived
                self.settle(sender, "provider", [o for o in pending.pop(sender) if o[1].length == length - 1])
            elif self.routes[sender].length != length:
                continue
            for customer in self.customers.get(sender, []):
                if customer in self.routes or customer in self.pops:
                    continue
                first = customer not in pending
                self.offer(pending, customer, sender)
                if first:
                    heapq.heappush(heap, (self.routes[sender].length + 1, customer))


def reachable(topo: Topology, pop: str) -> set[str]:
    """The routers that get a route to what `pop` alone announces (its unicast /32), under the same policy.
    Not every router does: an ISP whose transits neither buy from nor peer with `pop`'s has none (valley-free
    export), as on the internet."""
    solver = _Solver(topo, [pop])
    solver.climb()
    solver.peer_hop()
    solver.descend()
    return set(solver.routes)


def predict(topo: Topology) -> Prediction:
    """Every router's best route(s) to the anycast /32 under the lab's Gao-Rexford policy; see the module."""
    solver = _Solver(topo)
    solver.climb()
    solver.peer_hop()
    solver.descend()
    return Prediction(topo, solver.routes)
