"""Shared test set-up: where the shipped topologies are."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ROOT / "topologies"


@pytest.fixture
def topologies_dir() -> Path:
    return TOPOLOGIES
