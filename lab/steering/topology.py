"""The lab `anycastlab steering` boots when none with steering runs: a topology (the default one unless named)
with `steering: {dns: {}}` added, in a temporary file that lives as long as the block (the lab keeps its copy)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml import YAML

from ..topology_files import resolve


@contextlib.contextmanager
def with_steering(topology: str = "default", prefix: str = "steering") -> Iterator[tuple[Path, str]]:
    """(topology file with DNS steering on, lab name `<prefix>-<topology>`)."""
    base = resolve(topology)
    yaml = YAML(typ="rt")
    doc = yaml.load(base.read_text())
    steering = doc.get("steering") or {}
    dns = steering.get("dns") or {}
    dns["enabled"] = True
    steering["dns"] = dns
    doc["steering"] = steering
    name = f"{prefix}-{base.stem}"[:32]
    doc["name"] = name
    with tempfile.TemporaryDirectory(prefix="anycastlab-steering-") as folder:
        path = Path(folder) / f"{name}.yaml"
        with open(path, "w") as f:
            yaml.dump(doc, f)
        yield path, name
