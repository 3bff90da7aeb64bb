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
