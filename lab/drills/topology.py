"""The topology a drill runs on: a shipped name or a file, optionally with overrides (e.g. BFD on)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ruamel.yaml import YAML

from ..runtime import paths
from ..topology_files import resolve
from .model import Drill


def drill_topology(drill: Drill, prefix: str = "drills") -> tuple[Path, str]:
    """(topology file, lab name starting with `prefix`) for booting the drill's own lab. Overrides produce a
    derived file."""
    base = resolve(drill.topology)
    if not drill.topology_overrides:
        return base, f"{prefix}-{base.stem}"[:32]
    yaml = YAML(typ="rt")
    doc = yaml.load(base.read_text())
    for key, value in drill.topology_overrides.items():
        if isinstance(value, dict) and isinstance(doc.get(key), dict):
            doc[key].update(value)
        else:
            doc[key] = value
    digest = hashlib.sha1(json.dumps(drill.topology_overrides, sort_keys=True).encode()).hexdigest()[:6]
    name = f"{prefix}-{base.stem}-{digest}"[:32]
    doc["name"] = name
    folder = paths.run_root().parent / "anycastlab-drill-topologies"
    folder.mkdir(parents=True, exist_ok=True, mode=0o755)
    path = folder / f"{name}.yaml"
    with open(path, "w") as f:
        yaml.dump(doc, f)
    os.chmod(path, 0o644)
    return path, name
