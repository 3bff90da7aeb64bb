"""Render each router's FRR configuration from the plan.

The result is one `frr.conf` per router (what a person reads, and what the golden tests pin) made of
per-daemon parts. Each daemon is started on, and dry-run checked against, only its own part, because a
daemon given the whole file reports the other daemons' lines as unknown commands and still exits 0.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import BACKBONE_POOL, MULTIPATHS
from ..plan import LOCAL_PREF, REL_TAG, Node, Plan, Relation

DAEMON_ORDER = ("zebra", "bfdd", "ospfd", "bgpd")
BFD_PROFILE = "lab"


@dataclass(frozen=True)
class RouterConfig:
    router: str
    parts: dict[str, str]  # daemon -> its lines

    @property
    def daemons(self) -> list[str]:
        return [d for d in DAEMON_ORDER if d in self.parts]

    def header(self) -> str:
        return f"frr version 8.4\nfrr defaults traditional\nhostname {self.router}\n!\n"

    def for_daemon(self, daemon: str) -> str:
        return self.header() + self.parts[daemon]

    @property
    def unified(self) -> str:
        return self.header() + "".join(self.parts[d] for d in self.daemons) + "end\n"

    @property
    def vtysh_conf(self) -> str:
        """vtysh's own file: vtysh takes its prompt from here (else the host's name, `vm#`), not from the
        daemons. Written beside frr.conf and read with `vtysh --config_dir <router dir>`."""
        return f"hostname {self.router}\n"


def render_router(plan: Plan, node: Node) -> RouterConfig:
    parts = {"zebra": _zebra(plan, node), "bgpd": _bgpd(plan, node)}
    if plan.topology.bfd.enabled:
        parts["bfdd"] = _bfdd(plan)
    if node.ospf:
        parts["ospfd"] = _ospfd(node, plan.topology.bfd.enabled)
    return RouterConfig(node.name, parts)


def render_all(plan: Plan) -> dict[str, RouterConfig]:
    return {n.name: render_router(plan, n) for n in plan.routers}


def _zebra(plan: Plan, node: Node) -> str:
    """Addresses are set by the runtime through netlink. On the backbone, routes learnt from OSPF prefer the
    router's loopback as source: a connection then has no link address in it, so its replies follow OSPF
    (and smart routing's costs) too, rather than the connected /31 of whichever link it first left by.
    With DNS steering on, the origin's routes learnt over transit prefer its public service address: gdnsd's
    health checks of the PoPs' unicast addresses leave from it, and a link /31 would get no reply."""
    if not node.ospf:
        return ""
    out = (f"route-map BACKBONE-SRC permit 10\n set src {node.loopback}\nexit\n!\n"
           "ip protocol ospf route-map BACKBONE-SRC\n!\n")
    if node.role == "origin" and plan.topology.steering.dns_on:
        out += (f"route-map TRANSIT-SRC permit 10\n set src {node.lo_addresses[0].ip}\nexit\n!\n"
                "ip protocol bgp route-map TRANSIT-SRC\n!\n")
    return out


def _bfdd(plan: Plan) -> str:
    bfd = plan.topology.bfd
    return (
        "bfd\n"
        f" profile {BFD_PROFILE}\n"
        f"  detect-multiplier {bfd.multiplier}\n"
        f"  receive-interval {bfd.interval_ms}\n"
        f"  transmit-interval {bfd.interval_ms}\n"
        " exit\n"
        "exit\n!\n"
    )


def _ospfd(node: Node, bfd: bool) -> str:
    """The private backbone: OSPF on backbone links and the router's loopback, nothing else. With BFD on,
    OSPF uses it too: a silently blackholed PoP otherwise keeps backbone traffic for the 3 s dead interval."""
    lines = []
    backbone = [i for i in node.interfaces if i.address.network.subnet_of(BACKBONE_POOL)]
    for intf in backbone:
        lines += [
            f"interface {intf.name}",
            " ip ospf network point-to-point",
            " ip ospf hello-interval 1",
            " ip ospf dead-interval 3",
            # An LSA flooded while the adjacency is still exchanging waits for the retransmit timer:
            # the 5 s default held every backbone route back 5 s at start-up.
            " ip ospf retransmit-interval 1",
            *([" ip ospf bfd", f" ip ospf bfd profile {BFD_PROFILE}"] if bfd else []),
            "exit",
            "!",
        ]
    lines += ["router ospf", f" ospf router-id {node.loopback}", " passive-interface lo",
              " timers throttle lsa all 100", " timers lsa min-arrival 50",
              " timers throttle spf 0 50 500"]  # the default 5 s max hold delays start-up by seconds
    lines += [f" network {intf.address.network} area 0" for intf in backbone]
    lines += [f" network {node.loopback}/32 area 0", "exit", "!"]
    return "\n".join(lines) + "\n"


def _bgpd(plan: Plan, node: Node) -> str:
    asn = node.asn
    keepalive, hold = plan.topology.bgp.timers
    bfd = plan.topology.bfd.enabled
    relations: list[Relation] = sorted({nb.relation for nb in node.neighbors}, key=list(LOCAL_PREF).index)
    lines = [
        f"router bgp {asn}",
        f" bgp router-id {node.loopback}",
        " bgp log-neighbor-changes",
        " bgp bestpath compare-routerid",
    ]
    multipath = plan.topology.bgp.multipath
    if multipath:
        # Equal paths from different neighbour ASes are multipath too (ECMP across transits).
        lines.append(" bgp bestpath as-path multipath-relax")
    if node.role != "pop":
        # Eyeballs and the origin announce aggregates that no single connected route covers.
        lines.append(" no bgp network import-check")
    lines.append(f" timers bgp {keepalive} {hold}")
    lines.append(" coalesce-time 100")  # the 1 s default delays every hop's first update at start-up
    for nb in node.neighbors:
        lines += [
            f" neighbor {nb.address} remote-as {nb.asn}",
            f" neighbor {nb.address} description {nb.name} ({nb.relation})",
            f" neighbor {nb.address} timers connect 1",
            f" neighbor {nb.address} advertisement-interval 0",
        ]
        if bfd:
            lines.append(f" neighbor {nb.address} bfd profile {BFD_PROFILE}")
    lines.append(" !")
    lines.append(" address-family ipv4 unicast")
    lines += [f"  network {prefix} route-map ORIGINATE" for prefix in node.announce]
    # FRR installs up to 64 equal paths unless told otherwise: one, unless the topology models ECMP.
    lines.append(f"  maximum-paths {MULTIPATHS if multipath else 1}")
    for nb in node.neighbors:
        lines += [
            f"  neighbor {nb.address} route-map FROM-{nb.relation.upper()} in",
            f"  neighbor {nb.address} route-map TO-{nb.relation.upper()} out",
        ]
    lines += [" exit-address-family", "exit", "!"]

    # Valley-free export: only our own routes and our customers' go to peers and providers.
    lines += [
        f"bgp large-community-list standard EXPORTABLE permit {asn}:0:{REL_TAG['local']}",
        f"bgp large-community-list standard EXPORTABLE permit {asn}:0:{REL_TAG['customer']}",
        "!",
    ]
    originate = f"{asn}:0:{REL_TAG['local']}"
    if node.role == "pop":
        originate += f" {plan.pop_community(node.name)}"
    lines += ["route-map ORIGINATE permit 10", f" set large-community {originate} additive", "exit", "!"]
    for rel in relations:
        lines += [
            f"route-map FROM-{rel.upper()} permit 10",
            f" set local-preference {LOCAL_PREF[rel]}",
            f" set large-community {asn}:0:{REL_TAG[rel]} additive",
            "exit",
            "!",
            f"route-map TO-{rel.upper()} permit 10",
        ]
        if rel != "customer":
            lines.append(" match large-community EXPORTABLE")
        lines += ["exit", "!"]
    return "\n".join(lines) + "\n"
