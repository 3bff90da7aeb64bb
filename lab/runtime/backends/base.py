"""The one interface between the lab and whatever holds its nodes (Kathara's "managers").

Everything above lab/runtime/ reaches nodes only through what a runtime hands out: `NodeHandle`s (see
handles.py), recorded in the run directory for every later verb and lab process. A runtime creates the
nodes and the links between them, says how to run things in a node, tears down, and finds what a crashed
lab left behind from its ledger.

Two implementations live beside this file: `netns` (Mininet hosts: bare network namespaces on the host's
filesystem) and `docker` (one container per node, from images/). A Kubernetes runtime would be a third
module here (`kubernetes.py`: one pod per node, links as VXLAN between pods as clabernetes does, handles
whose prefixes are `kubectl exec`), registered in `backends/__init__.py`; nothing above this package changes.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...plan import Plan
from ..handles import NodeHandle
from ..ledger import Ledger
from ..paths import runtime_file

OnNode = Callable[[str], None]


@dataclass(frozen=True)
class ZygoteHome:
    """Where the supervisor's service zygote (runtime/zygote.py) for a node runs. `key` names the software
    the node shares with others (one zygote serves them all), `python` is the argv of that software's
    interpreter as it sees those files, and `namespaces` are the node's namespaces each child enters."""

    key: str
    python: list[str]
    namespaces: tuple[str, ...]


class Runtime(ABC):
    name: str  # what `up --runtime`, topologies (`runtime:`) and state files call it
    shares_host_fs: bool = False  # nodes run the host's software (FRR's dry run can start before they exist)

    def __init__(self, lab: str, directory: Path, ledger: Ledger) -> None:
        self.lab = lab
        self.directory = directory
        self.ledger = ledger
        self.handles: dict[str, NodeHandle] = {}
        path = runtime_file(directory)  # what `prepare` decided, for the supervisor and every later verb
        self.settings: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def prepare(cls, plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
        """Make what the nodes need and what outlives the lab (the docker runtime builds missing images),
        saying what it does through `progress`. Nothing of the lab exists yet. What it returns is saved
        as the lab's runtime.json, so the lab runs exactly what was prepared (the images just built)."""
        del plan, progress  # by default there is nothing to prepare
        return {}

    @classmethod
    @abstractmethod
    def preflight(cls, plan: Plan, settings: dict[str, Any]) -> None:
        """Raise LabError, before anything is created, when this machine cannot run `plan` this way
        (missing tools, no daemon, a missing image: each named with its fix)."""

    @abstractmethod
    def create_nodes(self, plan: Plan, on_node: OnNode | None = None) -> dict[str, NodeHandle]:
        """Every node, each recorded in the ledger before it exists; returns their handles."""

    @abstractmethod
    def create_links(self, plan: Plan) -> None:
        """One point-to-point veth pair per link, made inside the nodes' namespaces (never the host's).
        The end in node A is named after node B, so `ip link` in a node reads as a list of neighbours."""

    def zygote_home(self, node: str) -> ZygoteHome | None:
        """Where to fork `node`'s Python services from a pre-loaded zygote; None: each starts from the
        node's own interpreter (a runtime whose nodes are not on this machine)."""
        del node
        return None

    @abstractmethod
    def frr_owner(self) -> tuple[int, int]:
        """The uid and gid FRR runs as inside the nodes (its config and socket directories belong to it)."""

    @abstractmethod
    def destroy(self) -> None:
        """End every node this runtime made (its processes, namespace and links go with it)."""

    @classmethod
    @abstractmethod
    def remove_recorded(cls, ledger: Ledger) -> list[str]:
        """After a crash: remove what the ledger says this runtime made (and only that); returns what went."""

    @classmethod
    @abstractmethod
    def leftovers(cls, ledger: Ledger) -> list[str]:
        """What the ledger names that this runtime made and still exists (for `down`'s and tests' checks)."""
