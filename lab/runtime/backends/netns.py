"""The `netns` runtime: each node is a Mininet host, a shell holding its own network namespace, on the
host's filesystem (FRR, vtysh, curl and Python are the host's).

Only Mininet's Host and Link are used. Its `Mininet` class is avoided on purpose: its first use tunes
host-wide sysctls and resource limits, and the lab never changes the host's root namespace.
"""

from __future__ import annotations

import contextlib
import grp
import pwd
import shutil
import sys
from pathlib import Path
from typing import Any

from mininet.link import Link as MnLink
from mininet.log import setLogLevel
from mininet.node import Host
from typing_extensions import override

from ...errors import LabError
from ...plan import Plan
from .. import netns, procs
from ..frr import FRR_DIR, FRR_USER
from ..handles import NodeHandle
from ..ledger import Ledger
from .base import OnNode, Runtime, ZygoteHome

setLogLevel("error")
REQUIRED_TOOLS = ["mnexec", "vtysh", "ip", "ping", str(FRR_DIR / "zebra"), str(FRR_DIR / "bgpd")]


def handle(pid: int, start: float | None) -> NodeHandle:
    """mnexec enters the node's namespaces; `env` runs the command as a shell would (127: not found)."""
    enter = ["mnexec", "-a", str(pid)]
    return NodeHandle(pid=pid, start=start, exec=[*enter, "env"], spawn=enter, netns=enter, vtysh=[],
                      python=sys.executable)


class NetnsRuntime(Runtime):
    name = "netns"
    shares_host_fs = True

    def __init__(self, lab: str, directory: Path, ledger: Ledger) -> None:
        super().__init__(lab, directory, ledger)
        self.hosts: dict[str, Host] = {}

    @classmethod
    @override
    def preflight(cls, plan: Plan, settings: dict[str, Any]) -> None:
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None and not Path(t).exists()]
        if missing:
            raise LabError(f"missing on this machine: {', '.join(missing)} (run `make up` or `make deps` to install)")

    @override
    def zygote_home(self, node: str) -> ZygoteHome:
        """Every node runs the host's Python: one zygote, the host's interpreter, entering the network only."""
        del node
        return ZygoteHome("host", [sys.executable], ("net",))

    def create_nodes(self, plan: Plan, on_node: OnNode | None = None) -> dict[str, NodeHandle]:
        for node in plan.nodes.values():
            self.ledger.record("node", node.name, state="creating")
            host = Host(node.name, inNamespace=True)
            self.hosts[node.name] = host
            pid = int(host.pid)
            start = procs.start_time(pid)
            self.ledger.record("node", node.name, pid=pid, start=start, netns=netns.netns_inode(pid),
                               tag=netns.namespace_tag(self.lab, node.name))
            self.handles[node.name] = handle(pid, start)
            if on_node:
                on_node(node.name)
        return self.handles

    def create_links(self, plan: Plan) -> None:
        # `ip link add NAME netns A type veth peer name PEER netns B`: both ends are born in the nodes.
        for link in plan.links:
            MnLink(self.hosts[link.a], self.hosts[link.b], intfName1=link.b, intfName2=link.a)

    def frr_owner(self) -> tuple[int, int]:
        return pwd.getpwnam(FRR_USER).pw_uid, grp.getgrnam(FRR_USER).gr_gid

    def destroy(self) -> None:
        """End every node's shell; a namespace (and its veths) goes when its last process does."""
        shells = list(self.hosts.values())
        for host in shells:
            with contextlib.suppress(OSError):
                host.terminate()
        self.hosts.clear()
        procs.terminate([(int(h.pid), None) for h in shells if h.shell is not None and h.shell.poll() is None],
                        grace=0.5)

    @classmethod
    @override
    def remove_recorded(cls, ledger: Ledger) -> list[str]:
        return []  # node shells are recorded processes: cleanup ends them with the rest

    @classmethod
    @override
    def leftovers(cls, ledger: Ledger) -> list[str]:
        return []  # namespaces are checked for every runtime by cleanup.live_namespaces
