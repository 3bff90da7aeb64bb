"""Nodes and links: Mininet hosts joined by point-to-point veth pairs, configured through netlink.

Only Mininet's Host and Link are used. Its `Mininet` class is avoided on purpose: its first use tunes
host-wide sysctls and resource limits, and the lab never changes the host's root namespace.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mininet.link import Link as MnLink
from mininet.log import setLogLevel
from mininet.node import Host

from ..plan import Node, Plan
from . import netns, procs
from .ledger import Ledger

setLogLevel("error")
CONFIG_THREADS = 8


@dataclass
class Network:
    hosts: dict[str, Host] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # node -> its namespace's tag (the loopback's alias)

    def pid(self, node: str) -> int:
        return int(self.hosts[node].pid)

    def stop(self) -> None:
        """End every node's shell; a namespace (and its veths) goes when its last process does."""
        for host in self.hosts.values():
            with contextlib.suppress(OSError):
                host.terminate()
        self.hosts.clear()


def build(plan: Plan, ledger: Ledger, on_node: Callable[[str], None] | None = None) -> Network:
    """Create one namespaced host per node and one veth pair per link, recording each in the ledger."""
    net = Network()
    for node in plan.nodes.values():
        ledger.record("node", node.name, state="creating")
        host = Host(node.name, inNamespace=True)
        net.hosts[node.name] = host
        pid = int(host.pid)
        net.tags[node.name] = netns.namespace_tag(ledger.path.parent.name, node.name)
        ledger.record("node", node.name, pid=pid, start=procs.start_time(pid), netns=netns.netns_inode(pid),
                      tag=net.tags[node.name])
        if on_node:
            on_node(node.name)
    for link in plan.links:
        MnLink(net.hosts[link.a], net.hosts[link.b], intfName1=link.b, intfName2=link.a)
    return net


def configure(plan: Plan, net: Network) -> None:
    """Addresses, routes and per-namespace sysctls for every node, in parallel."""
    with ThreadPoolExecutor(CONFIG_THREADS) as pool:
        list(pool.map(lambda n: _configure_node(n, net.pid(n.name), net.tags.get(n.name)), plan.nodes.values()))


def _configure_node(node: Node, pid: int, tag: str | None) -> None:
    if node.is_router:
        netns.write_sysctl(pid, "net.ipv4.ip_forward", "1")
        # Anycast replies leave by whichever link BGP picks, not the one the request came in on.
        netns.write_sysctl(pid, "net.ipv4.conf.all.rp_filter", "0")
        netns.write_sysctl(pid, "net.ipv4.conf.default.rp_filter", "0")
    netns.write_sysctl(pid, "net.ipv6.conf.all.disable_ipv6", "1")
    with netns.iproute(pid) as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        ipr.link("set", index=lo, state="up")
        if tag is not None:
            ipr.link("set", index=lo, ifalias=tag)
        lo_addresses = list(node.lo_addresses)
        if node.loopback is not None:
            ipr.addr("add", index=lo, address=str(node.loopback), prefixlen=32)
        for address in lo_addresses:
            ipr.addr("add", index=lo, address=str(address.ip), prefixlen=address.network.prefixlen)
        for intf in node.interfaces:
            index = ipr.link_lookup(ifname=intf.name)[0]
            ipr.addr("add", index=index, address=str(intf.address.ip), prefixlen=intf.address.network.prefixlen)
            ipr.link("set", index=index, state="up")
        if node.gateway is not None:
            ipr.route("add", dst="0.0.0.0/0", gateway=str(node.gateway))
