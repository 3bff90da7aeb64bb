"""Finding a topology file: a path, or the name of one shipped in topologies/ (default: `default`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

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
