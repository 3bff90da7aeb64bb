"""What a running lab is: its plan (from the topology copied into its run directory), its runtime, and
how to reach each node (handles.py).

The supervisor writes state.json once the lab is ready; every other verb reads it, so verbs act on the
lab directly (through the nodes' handles and the routers' vty sockets) without asking the supervisor.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import LabError, NoLabError, UnknownNodeError
from . import handles, paths, procs
from .handles import NodeHandle
from .ledger import Ledger
from .vtysh import Vty

if TYPE_CHECKING:
    from ..plan import Plan


@dataclass
class RunningLab:
    name: str
    plan: Plan
    directory: Path
    runtime: str
    handles: dict[str, NodeHandle]
    supervisor_pid: int | None = None

    @property
    def pids(self) -> dict[str, int]:
        return {name: h.pid for name, h in self.handles.items()}

    @property
    def supervisor_running(self) -> bool:
        """Whether the very supervisor the ledger recorded (pid and start time) still runs."""
        recorded = Ledger(paths.ledger_file(self.directory)).process("supervisor")
        return recorded is not None and procs.is_alive(*recorded)

    def router_dir(self, router: str) -> Path:
        return self.directory / "nodes" / router

    def handle(self, node: str) -> NodeHandle:
        if node not in self.handles:
            raise UnknownNodeError(node, list(self.handles))
        return self.handles[node]

    def pid(self, node: str) -> int:
        """The pid holding the node's network namespace, for netlink and sockets opened in-process."""
        return self.handle(node).pid

    def exec_argv(self, node: str, argv: list[str]) -> list[str]:
        """Run the node's own software (its image's, on docker) inside the node."""
        return [*self.handle(node).exec, *argv]

    def missing_tools(self, node: str, tools: Sequence[str]) -> list[str]:
        """Which of `tools` (names on PATH, or absolute paths) the node's own software lacks, asked inside the
        node: the host's packages on netns, the image's on docker (a pinned image may lack what ours have)."""
        script = 'for t; do case $t in /*) [ -x "$t" ];; *) command -v "$t" >/dev/null;; esac || echo "$t"; done'
        out = subprocess.run(self.exec_argv(node, ["sh", "-c", script, "sh", *tools]), capture_output=True,
                             text=True, timeout=30)
        if out.returncode != 0:
            raise LabError(f"could not look for {', '.join(tools)} in {node}: {out.stderr.strip()[-200:]}")
        return out.stdout.split()

    def netns_argv(self, node: str, argv: list[str]) -> list[str]:
        """Run the host's software (the lab's own tools) in the node's network namespace only."""
        return [*self.handle(node).netns, *argv]

    def vty(self, router: str) -> Vty:
        return Vty(self.router_dir(router), tuple(self.handle(router).vtysh))

    def save(self) -> None:
        data = {"lab": self.name, "runtime": self.runtime, "supervisor_pid": self.supervisor_pid,
                "pids": self.pids}
        paths.replace_file(paths.state_file(self.directory), json.dumps(data, indent=1))


def running_labs() -> list[str]:
    root = paths.run_root()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if paths.state_file(d).exists())


def known_labs() -> list[str]:
    """Labs with a run directory, ready or not (a crashed `up` leaves one for `clean`)."""
    root = paths.run_root()
    return sorted(d.name for d in root.iterdir() if d.is_dir()) if root.is_dir() else []


def resolve_name(name: str | None) -> str:
    """The lab a verb acts on: the one named, or the only one running."""
    if name is not None:
        return name
    labs = running_labs()
    if not labs:
        raise NoLabError("no lab is running (start one with `anycastlab up`)")
    if len(labs) > 1:
        raise NoLabError(f"several labs are running ({', '.join(labs)}): choose one with --lab")
    return labs[0]


def _running_dir(name: str | None) -> tuple[str, Path, dict[str, object]]:
    lab = resolve_name(name)
    directory = paths.lab_dir(lab)
    try:
        data = json.loads(paths.state_file(directory).read_text())
    except FileNotFoundError:
        raise NoLabError(f"lab {lab!r} is not running (no {paths.state_file(directory)})") from None
    return lab, directory, data


def attach(name: str | None = None) -> RunningLab:
    from . import planfile  # the plan's modules: not needed by `exec` (node_handle)

    lab, directory, data = _running_dir(name)
    plan = planfile.load(directory)
    runtime, nodes = handles.load(directory)
    supervisor = data.get("supervisor_pid")
    return RunningLab(lab, plan, directory, runtime, nodes, supervisor if isinstance(supervisor, int) else None)


def node_handle(name: str | None, node: str) -> NodeHandle:
    """One node's handle of a running lab, without building its plan (what `exec` needs, fast)."""
    _, directory, _ = _running_dir(name)
    _, nodes = handles.load(directory)
    if node not in nodes:
        raise UnknownNodeError(node, list(nodes))
    return nodes[node]
