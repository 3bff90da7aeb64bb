"""The topology a drill runs on: a shipped name or a file, optionally with overrides (e.g. BFD on)."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..topology_files import derived, resolve
from .model import Drill


@contextlib.contextmanager
def drill_topology(drill: Drill, prefix: str = "drills") -> Iterator[tuple[Path, str]]:
    """(topology file, lab name starting with `prefix`) for booting the drill's own lab, inside the block.

    Overrides produce a derived file in a temporary directory, removed when the block ends: the lab keeps
    its own copy of the topology from the moment it is booted."""
    base = resolve(drill.topology)
    if not drill.topology_overrides:
        yield base, f"{prefix}-{base.stem}"[:32]
        return

    def override(doc: Any) -> None:
        for key, value in drill.topology_overrides.items():
            if isinstance(value, dict) and isinstance(doc.get(key), dict):
                doc[key].update(value)
            else:
                doc[key] = value

    digest = hashlib.sha1(json.dumps(drill.topology_overrides, sort_keys=True).encode()).hexdigest()[:6]
    name = f"{prefix}-{base.stem}-{digest}"[:32]
    with derived(base, name, override, "drill") as path:
        yield path, name


def topology_name(drill: Drill) -> str | None:
    """The `name:` of the topology the drill names (a shipped name or a file), None if it cannot be read."""
    from ..errors import LabError
    from ..labs import _topology_name

    try:
        path = resolve(drill.topology)
    except LabError:
        return None
    return _topology_name(path.parent, path.name)


def runs_topology_of(lab_name: str | None, drill: Drill) -> bool:
    """Whether the running lab `lab_name` runs the drill's topology (its copy in the run directory has the
    same `name:`), so that a drill without --lab never attaches to a lab of another topology."""
    from ..labs import _topology_name
    from ..runtime import paths

    if lab_name is None or drill.topology_overrides:
        return False
    wanted = topology_name(drill)
    return wanted is not None and _topology_name(paths.lab_dir(lab_name)) == wanted
