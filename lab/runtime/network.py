"""Addresses, routes and per-namespace sysctls for every node, through netlink inside its namespace.

The same for every runtime: a node is reached by the pid that holds its network namespace.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ..plan import Node, Plan
from . import netns

CONFIG_THREADS = 8


def configure(plan: Plan, pids: dict[str, int], lab: str) -> None:
    """Every node in parallel; each namespace's loopback gets the lab's tag (netns.namespace_tag)."""
    with ThreadPoolExecutor(CONFIG_THREADS) as pool:
        list(pool.map(lambda n: _configure_node(n, pids[n.name], netns.namespace_tag(lab, n.name)),
                      plan.nodes.values()))


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
