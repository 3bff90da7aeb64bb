"""Netlink work inside a node's network namespace, through pyroute2.

Nodes live in unnamed namespaces held by their Mininet shell, reached through /proc/PID/ns/net (see
nsenter). Entering moves only the calling thread, which lets worker threads visit several nodes at once
while the rest of the process stays in the host namespace.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyroute2 import IPRoute

from .nsenter import entered


def netns_inode(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def namespace_tag(lab: str, node: str) -> str:
    """What the lab writes as the alias of a node's loopback. The kernel hands a freed namespace's inode
    number to the next namespace made, so the inode alone cannot tell our namespace from another lab's."""
    return f"anycastlab:{lab}:{node}"


def loopback_alias(pid: int) -> str | None:
    """The alias of the loopback in `pid`'s namespace (None if it has none, or the process is gone)."""
    try:
        with iproute(pid) as ipr:
            links = ipr.get_links(ipr.link_lookup(ifname="lo")[0])
    except (OSError, IndexError):
        return None
    alias = links[0].get_attr("IFLA_IFALIAS") if links else None
    return str(alias) if alias is not None else None


@contextmanager
def iproute(pid: int) -> Iterator[IPRoute]:
    """An IPRoute socket opened inside the node's namespace (the socket stays bound to it)."""
    with entered(pid):
        ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def write_sysctl(pid: int, key: str, value: str) -> None:
    """Set a per-namespace sysctl (net.*) of the node, never of the host."""
    assert key.startswith("net."), "only network sysctls are per-namespace"
    with entered(pid):
        Path("/proc/sys", *key.split(".")).write_text(value)


def route_to(pid: int, prefix: ipaddress.IPv4Network) -> dict[str, object] | None:
    """The node's FIB entry for exactly `prefix` in the main table, or None."""
    with iproute(pid) as ipr:
        for route in ipr.get_routes(family=2, table=254):
            if route.get("dst_len") == prefix.prefixlen and route.get_attr("RTA_DST") == str(
                    prefix.network_address):
                return {"dst": str(prefix), "gateway": route.get_attr("RTA_GATEWAY"),
                        "proto": route.get("proto")}
    return None


def missing_routes(pid: int, prefixes: list[ipaddress.IPv4Network]) -> list[ipaddress.IPv4Network]:
    """Which of `prefixes` the node's main table has no entry for exactly (one route dump for all of them)."""
    with iproute(pid) as ipr:
        have = {(route.get_attr("RTA_DST"), route.get("dst_len")) for route in ipr.get_routes(family=2, table=254)}
    return [p for p in prefixes if (str(p.network_address), p.prefixlen) not in have]


def link_states(pid: int) -> dict[str, bool]:
    """Each interface's carrier (operstate up) in the node."""
    with iproute(pid) as ipr:
        return {link.get_attr("IFLA_IFNAME"): link.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
                for link in ipr.get_links()}
