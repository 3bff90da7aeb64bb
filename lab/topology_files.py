"""Finding a topology file: a path, or the name of one shipped in topologies/ (default: `default`); and
derived copies of one for labs that need it changed (a drill's overrides, DNS steering turned on)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from .errors import LabError

DEFAULT = "default"


def shipped() -> list[str]:
    folder = resources.files("anycastlab.topologies")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def resolve(spec: str | Path | None) -> Path:
    """`None` -> the default topology; an existing path -> itself; a bare name -> the shipped file."""
    if spec is None:
        spec = DEFAULT
    path = Path(spec)
    if path.exists():
        return path
    if path.suffix == "" and path.name == str(spec):
        candidate = Path(str(resources.files("anycastlab.topologies") / f"{spec}.yaml"))
        if candidate.exists():
            return candidate.resolve()  # the source file, not the editable install's link to it
    raise LabError(f"no topology file {str(spec)!r} (shipped topologies: {', '.join(shipped())})")


@contextlib.contextmanager
def derived(base: Path, name: str, edit: Callable[[Any], None], prefix: str) -> Iterator[Path]:
    """A copy of topology `base` named `name`, with `edit(doc)` applied to its YAML (comments kept), in a
    temporary directory (`anycastlab-<prefix>-...`) removed when the block ends: a lab keeps its own copy
    of the topology from the moment it is booted."""
    yaml = YAML(typ="rt")
    doc = yaml.load(base.read_text())
    edit(doc)
    doc["name"] = name
    with tempfile.TemporaryDirectory(prefix=f"anycastlab-{prefix}-") as folder:
        path = Path(folder) / f"{name}.yaml"
        with open(path, "w") as f:
            yaml.dump(doc, f)
        yield path
