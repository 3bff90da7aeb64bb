"""The lab `anycastlab steering` boots when none with steering runs: a topology (the default one unless named)
with `steering: {dns: {}}` added, in a temporary file that lives as long as the block (the lab keeps its copy)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..topology_files import derived, resolve


@contextlib.contextmanager
def with_steering(topology: str = "default", prefix: str = "steering") -> Iterator[tuple[Path, str]]:
    """(topology file with DNS steering on, lab name `<prefix>-<topology>`)."""
    base = resolve(topology)

    def steering_on(doc: Any) -> None:
        steering = doc.get("steering") or {}
        dns = steering.get("dns") or {}
        dns["enabled"] = True
        steering["dns"] = dns
        doc["steering"] = steering

    name = f"{prefix}-{base.stem}"[:32]
    with derived(base, name, steering_on, "steering") as path:
        yield path, name
