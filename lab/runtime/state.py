"""What a running lab is: its plan (from the topology copied into its run directory) and its node pids.

The supervisor writes state.json once the lab is ready; every other verb reads it, so verbs act on the
lab directly (through the nodes' namespaces and the routers' vty sockets) without asking the supervisor.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import NoLabError, UnknownNodeError
from ..model import load_topology
from ..plan import Plan, build_plan
from . import paths

STATE_FILE = "state.json"
TOPOLOGY_FILE = "topology.yaml"


@dataclass
class RunningLab:
    name: str
    plan: Plan
    directory: Path
    pids: dict[str, int]
    supervisor_pid: int | None = None

    def router_dir(self, router: str) -> Path:
        return self.directory / "nodes" / router

    def pid(self, node: str) -> int:
        if node not in self.pids:
            raise UnknownNodeError(node, list(self.pids))
        return self.pids[node]

    def save(self) -> None:
        data = {"lab": self.name, "supervisor_pid": self.supervisor_pid, "pids": self.pids}
        tmp = self.directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.directory / STATE_FILE)


def running_labs() -> list[str]:
    root = paths.run_root()
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir() if (d / STATE_FILE).exists())


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


def attach(name: str | None = None) -> RunningLab:
    lab = resolve_name(name)
    directory = paths.lab_dir(lab)
    try:
        data = json.loads((directory / STATE_FILE).read_text())
    except FileNotFoundError:
        raise NoLabError(f"lab {lab!r} is not running (no {directory / STATE_FILE})") from None
    plan = build_plan(load_topology(directory / TOPOLOGY_FILE))
    return RunningLab(lab, plan, directory, {k: int(v) for k, v in data["pids"].items()},
                      data.get("supervisor_pid"))
