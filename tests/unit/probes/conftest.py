"""Plans of the shipped topologies, for probe tests that need addresses but no running lab."""

from __future__ import annotations

from pathlib import Path

import pytest
from anycastlab.model import load_topology
from anycastlab.plan import Plan, build_plan
from anycastlab.runtime.state import RunningLab


@pytest.fixture
def small_plan(topologies_dir: Path) -> Plan:
    return build_plan(load_topology(topologies_dir / "small.yaml"))


@pytest.fixture
def default_plan(topologies_dir: Path) -> Plan:
    return build_plan(load_topology(topologies_dir / "default.yaml"))


@pytest.fixture
def small_lab(small_plan: Plan, tmp_path: Path) -> RunningLab:
    """The small topology's plan as a RunningLab record (no namespaces: for name and address logic)."""
    return RunningLab("unit", small_plan, tmp_path, "netns", {})
