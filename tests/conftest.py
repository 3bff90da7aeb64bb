"""Shared test set-up: where the shipped topologies are; the `integration` marker, by path."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ROOT / "topologies"
INTEGRATION = ROOT / "tests" / "integration"


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook of this name deselects by `-m`
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration carries the `integration` marker, so `-m "not integration"` leaves
    them all out. By path, here: pytest ignores `pytestmark` in a conftest."""
    for item in items:
        if item.path.is_relative_to(INTEGRATION):
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def topologies_dir() -> Path:
    return TOPOLOGIES
