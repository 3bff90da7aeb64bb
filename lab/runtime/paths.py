"""Where a lab keeps its state on disk: one run directory per lab, under a root shared by all labs."""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_ROOT = Path("/run/anycastlab")


def run_root() -> Path:
    """The directory holding every lab's run directory (ANYCASTLAB_RUN_ROOT overrides, for tests)."""
    return Path(os.environ.get("ANYCASTLAB_RUN_ROOT", str(DEFAULT_ROOT)))


def lab_dir(lab: str) -> Path:
    return run_root() / lab


def node_dir(lab: str, node: str) -> Path:
    return lab_dir(lab) / "nodes" / node


def ca_dir(lab: str) -> Path:
    """The lab's TLS certificate authority (written at `up`, printed by `anycastlab ca`)."""
    return lab_dir(lab) / "ca"


def pop_dir(lab: str, pop: str) -> Path:
    """A PoP's service state: proxy management socket, cache files, logs."""
    return lab_dir(lab) / "pops" / pop


# -- the files of a run directory (`lab_dir(lab)`): every reader and writer names them through these --

LEDGER_FILE = "ledger.jsonl"  # everything the lab created, for `down` and `clean` (runtime/ledger.py)
EVENTS_FILE = "events.jsonl"  # the bring-up's progress, which `up` follows (runtime/events.py)
STATE_FILE = "state.json"  # written once the lab is ready: supervisor pid, service pids (runtime/state.py)
NODES_FILE = "nodes.json"  # the runtime's name and each node's handle (runtime/handles.py)
RUNTIME_FILE = "runtime.json"  # what the runtime's `prepare` decided (runtime/backends/base.py)
LINKS_FILE = "links.json"  # each link's shaping, as set (runtime/links/control.py)
TOPOLOGY_FILE = "topology.yaml"  # the lab's copy of its topology file
PLAN_FILE = "plan.json"  # the addresses and links `up` derived from it, which every verb reads (runtime/planfile.py)
MOVES_FILE = "moves.json"  # each client moved to another ISP at run time, with its home (runtime/moves.py)
DRILL_LIVE_FILE = "drill.jsonl"  # the latest drill's steps and probes as they happen (drills/live.py)
HOSTS_FILE = "hosts"  # every container's /etc/hosts, which Docker does not write for them (backends/docker.py)


def ledger_file(directory: Path) -> Path:
    return directory / LEDGER_FILE


def events_file(directory: Path) -> Path:
    return directory / EVENTS_FILE


def state_file(directory: Path) -> Path:
    return directory / STATE_FILE


def nodes_file(directory: Path) -> Path:
    return directory / NODES_FILE


def runtime_file(directory: Path) -> Path:
    return directory / RUNTIME_FILE


def hosts_file(directory: Path) -> Path:
    return directory / HOSTS_FILE


def links_file(directory: Path) -> Path:
    return directory / LINKS_FILE


def topology_file(directory: Path) -> Path:
    return directory / TOPOLOGY_FILE


def plan_file(directory: Path) -> Path:
    return directory / PLAN_FILE


def drill_live_file(directory: Path) -> Path:
    return directory / DRILL_LIVE_FILE


def moves_file(directory: Path) -> Path:
    return directory / MOVES_FILE


def replace_file(target: Path, data: str | bytes) -> None:
    """Write `target` whole or not at all: every verb and lab process reads these files while they change, so
    a reader must never see half of one (a sibling .tmp, then a rename over it)."""
    tmp = target.with_name(target.name + ".tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data)
    os.replace(tmp, target)
