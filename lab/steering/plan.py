"""Where the steering plane lives and what it answers, derived from the plan (a pure function, like lab/plan.py).

- The authoritative server (gdnsd) listens on the origin's service address (203.0.113.10:53 by default): it
  is announced over transit already, and the origin's outgoing traffic over transit leaves from it
  (lab/render/frr.py sets that source when steering is on), so gdnsd's health checks reach every PoP's
  unicast address the way an outside monitor would, and the replies come back.
- Each eyeball ISP's resolver (unbound) sits in the ISP router's namespace on the last address of the ISP's
  client prefix (100.64.15.254 for a /20): clients reach it through their gateway, and it asks gdnsd from that
  address, so gdnsd sees which ISP is asking.
- Which PoP an ISP's resolver is given: the PoP the anycast prediction (lab/predict.py) gives that ISP. A tie
  (several PoPs equally preferred by BGP policy) is broken by geodesic distance from the ISP to the PoP, then
  by the PoPs' order in the topology; that PoP is first in the ISP's list, then every other PoP by the same
  distance rule, so a DOWN PoP falls over to the next nearest healthy one.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from .. import geo
from ..model import DnsSteering, Place, Topology
from ..plan import Plan
from ..predict import predict

DNS_PORT = 53


@dataclass(frozen=True)
class Resolver:
    isp: str
    address: ipaddress.IPv4Address  # on the ISP router's loopback; unbound listens and asks from it
    network: ipaddress.IPv4Network  # the ISP's client prefix (what gdnsd maps to the ISP's PoP list)
    pops: tuple[str, ...]  # the ISP's PoPs in order of preference: predicted first, then by distance


@dataclass(frozen=True)
class SteeringPlan:
    config: DnsSteering
    anycast: ipaddress.IPv4Address
    authoritative: ipaddress.IPv4Address
    resolvers: dict[str, Resolver]  # by ISP
    unicast: dict[str, ipaddress.IPv4Address]  # each PoP's unicast address, in topology order

    def resolver_of_client(self, plan: Plan, client: str) -> Resolver:
        isp = plan.nodes[client].isp
        assert isp is not None, client
        return self.resolvers[isp]


def _location(place: Place) -> geo.Location | None:
    try:
        return geo.locate(place.city, place.continent, place.lat, place.lon)
    except LookupError:
        return None


def preference(topo: Topology, isp: str, predicted: frozenset[str]) -> tuple[str, ...]:
    """The ISP's PoPs, best first: the predicted ones (tie: nearest, then topology order), then the rest."""
    eyeball = next(e for e in topo.eyeballs if e.name == isp)
    here = _location(eyeball)
    order = {p.name: i for i, p in enumerate(topo.pops)}

    def key(pop: str) -> tuple[int, float, int]:
        there = _location(next(p for p in topo.pops if p.name == pop))
        km = geo.distance_km(here, there) if here is not None and there is not None else float("inf")
        return (0 if pop in predicted else 1, km, order[pop])

    return tuple(sorted(order, key=key))


def steering_plan(plan: Plan) -> SteeringPlan | None:
    """The steering plane of a lab whose topology turns `steering.dns` on; None otherwise."""
    topo = plan.topology
    config = topo.steering.dns
    if config is None or not config.enabled:
        return None
    prediction = predict(topo)
    origin = plan.nodes[topo.origin.name]
    authoritative = origin.lo_addresses[0].ip
    resolvers = {}
    for e in plan.eyeballs:
        network = e.announce[0]
        resolvers[e.name] = Resolver(e.name, network[-2], network,
                                     preference(topo, e.name, prediction.pops_of(e.name)))
    unicast = {p.name: plan.unicast_of(p.name) for p in plan.pops}
    return SteeringPlan(config, topo.anycast.ip, authoritative, resolvers, unicast)
