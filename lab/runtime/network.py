"""Addresses, routes and per-namespace sysctls for every node, through netlink inside its namespace.

The same for every runtime: a node is reached by the pid that holds its network namespace.
"""

from __future__ import annotations

import ipaddress
import os
from concurrent.futures import ThreadPoolExecutor

from ..plan import Interface, Node, Plan
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


def add_veth(pid_a: int, name_in_a: str, pid_b: int, name_in_b: str) -> None:
    """One veth pair, born with an end in each node's namespace (never the host's)."""
    fd = os.open(f"/proc/{pid_b}/ns/net", os.O_RDONLY)
    try:
        with netns.iproute(pid_a) as ipr:
            ipr.link("add", ifname=name_in_a, kind="veth", peer={"ifname": name_in_b, "net_ns_fd": fd})
    finally:
        os.close(fd)


def delete_interface(pid: int, name: str) -> bool:
    """Delete one interface of the node (a veth takes its peer with it); False when it had none."""
    with netns.iproute(pid) as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return False
        ipr.link("del", index=found[0])
    return True


def configure_interface(pid: int, intf: Interface, gateway: ipaddress.IPv4Address | None = None) -> None:
    """Address an interface made at run time and bring it up; with `gateway`, the node's default route goes
    through it (replacing any other)."""
    with netns.iproute(pid) as ipr:
        index = ipr.link_lookup(ifname=intf.name)[0]
        ipr.addr("add", index=index, address=str(intf.address.ip), prefixlen=intf.address.network.prefixlen)
        ipr.link("set", index=index, state="up")
        if gateway is not None:
            ipr.route("replace", dst="0.0.0.0/0", gateway=str(gateway))
