"""Errors a user can act on. Each one names where the problem is, so the CLI can print it as one line."""

from __future__ import annotations

from pathlib import Path


class LabError(Exception):
    """A failure the CLI reports as one clear line and a non-zero exit, without a traceback."""


class TopologyError(LabError):
    """A topology file is wrong: names the file, the line and the field."""

    def __init__(self, path: Path | str, line: int | None, field: str, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {field}: {message}" if field else f"{where}: {message}")


class UnknownNodeError(LabError):
    def __init__(self, name: str, known: list[str]) -> None:
        hint = ", ".join(sorted(known)[:12]) + (" ..." if len(known) > 12 else "")
        super().__init__(f"unknown node {name!r} (known: {hint})")
        self.name = name


class NoLabError(LabError):
    pass
