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


def link_states(pid: int) -> dict[str, bool]:
    """Each interface's carrier (operstate up) in the node."""
    with iproute(pid) as ipr:
        return {link.get_attr("IFLA_IFNAME"): link.get_attr("IFLA_OPERSTATE") in ("UP", "UNKNOWN")
                for link in ipr.get_links()}
