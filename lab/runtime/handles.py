"""How to reach each node of a running lab, whatever runtime made it: written once the nodes exist, read by
every verb and every lab process (the prober, drills), so none of them needs to know which runtime it is.

A handle is data, not code: the pid whose network namespace is the node's (for netlink and sockets opened
in-process), and argv prefixes for running things in the node. A runtime with no host pid for its nodes
(Kubernetes pods on another machine) would leave `pid` unset and give only prefixes (`kubectl exec ...`);
the in-process paths (probes, the releaser) would then run inside a helper pod instead.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .paths import nodes_file, replace_file


@dataclass(frozen=True)
class NodeHandle:
    pid: int  # a host pid holding the node's network namespace (/proc/PID/ns/net)
    start: float | None  # its start time (procs.start_time), so a reused pid is never taken for it
    exec: list[str]  # prefix: run the node's own software (its filesystem, its tools) and wait for it
    spawn: list[str]  # prefix: start a long-lived process in the node; it dies when the spawner does
    netns: list[str]  # prefix: run the host's software in the node's network namespace only
    vtysh: list[str]  # prefix before `vtysh --vty_socket DIR` ([]: the host's own vtysh reaches the sockets)
    python: str  # an interpreter with anycastlab installed, as seen from inside the node
    interactive: list[str] = field(default_factory=list)  # prefix for a terminal session (default: exec)
    container: str | None = None  # the container's name, where the node is one

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NodeHandle:
        return cls(**data)


def save(directory: Path, runtime: str, handles: dict[str, NodeHandle]) -> None:
    data = {"runtime": runtime, "nodes": {name: h.to_json() for name, h in handles.items()}}
    replace_file(nodes_file(directory), json.dumps(data, indent=1))


def load(directory: Path) -> tuple[str, dict[str, NodeHandle]]:
    """The runtime's name and every node's handle; FileNotFoundError before the nodes exist."""
    data = json.loads(nodes_file(directory).read_text())
    return str(data["runtime"]), {name: NodeHandle.from_json(h) for name, h in data["nodes"].items()}
