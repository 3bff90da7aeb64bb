"""Every lab on this machine, from the run directories alone (`anycastlab labs`): nothing is asked of FRR.

A lab is `ready` once its supervisor wrote state.json; `starting` while `up` runs (no state.json yet, its
supervisor alive); `crashed` when the supervisor is dead (`anycastlab clean --lab NAME` removes what it left).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .runtime import paths, procs
from .runtime.ledger import Ledger


def _supervisor(directory: Path) -> tuple[int | None, bool]:
    """The supervisor's pid from the ledger, and whether that very process (pid and start time) lives."""
    recorded = Ledger(paths.ledger_file(directory)).process("supervisor")
    return (recorded[0], procs.is_alive(*recorded)) if recorded else (None, False)


def _topology_name(directory: Path, file: str = paths.TOPOLOGY_FILE) -> str | None:
    """The top-level `name:` of a topology file, read without loading (or validating) the rest."""
    try:
        for line in (directory / file).read_text().splitlines():
            if line.startswith("name:"):
                return line.split(":", 1)[1].split("#", 1)[0].strip().strip("'\"") or None
    except OSError:
        pass
    return None


def describe(directory: Path) -> dict[str, Any]:
    state: dict[str, Any] = {}
    try:
        loaded = json.loads(paths.state_file(directory).read_text())
        state = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    pid, alive = _supervisor(directory)
    status = ("ready" if alive else "crashed") if state else ("starting" if alive else "crashed")
    try:
        since = paths.state_file(directory).stat().st_mtime if state else directory.stat().st_mtime
    except OSError:
        since = None
    nodes = state.get("pids", {})
    return {
        "name": directory.name,
        "status": status,
        "topology": _topology_name(directory),
        "runtime": state.get("runtime", "netns" if state else None),
        "nodes": len(nodes) if state and isinstance(nodes, dict) else None,
        "supervisor_pid": pid,
        "supervisor_running": alive,
        "since": since,
        "age_s": None if since is None else round(time.time() - since, 1),
        "directory": str(directory),
    }


def all_labs() -> list[dict[str, Any]]:
    root = paths.run_root()
    if not root.is_dir():
        return []
    return [describe(d) for d in sorted(root.iterdir()) if d.is_dir()]
