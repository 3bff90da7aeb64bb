"""A running lab keeps the plan `up` derived: verbs read plan.json, not a plan rebuilt from the YAML."""

from __future__ import annotations

import dataclasses
import ipaddress
import shutil
from pathlib import Path

from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.runtime import paths, planfile
from anycastlab.topology_files import resolve


def run_dir(tmp_path: Path, topology: Path) -> Path:
    shutil.copyfile(topology, paths.topology_file(tmp_path))
    return tmp_path


def test_the_saved_plan_is_the_plan(tmp_path: Path) -> None:
    topology = resolve("default")
    plan = build_plan(load_topology(topology))
    planfile.save(run_dir(tmp_path, topology), plan)
    loaded = planfile.load(tmp_path)
    assert loaded.nodes == plan.nodes and loaded.links == plan.links
    assert loaded.topology == plan.topology


def test_addresses_come_from_the_saved_plan_not_from_a_rebuild(tmp_path: Path) -> None:
    # As if the lab had been started by a version that allocated fra's unicast address differently: the
    # verbs must keep believing what the data plane was given.
    topology = resolve("default")
    plan = build_plan(load_topology(topology))
    other = ipaddress.IPv4Address("192.0.2.200")
    plan.nodes["fra"] = dataclasses.replace(plan.nodes["fra"], unicast=other)
    planfile.save(run_dir(tmp_path, topology), plan)
    assert planfile.load(tmp_path).unicast_of("fra") == other
    assert build_plan(load_topology(topology)).unicast_of("fra") != other


def test_a_lab_started_before_plan_json_gets_its_plan_rebuilt(tmp_path: Path) -> None:
    topology = resolve("small")
    loaded = planfile.load(run_dir(tmp_path, topology))
    assert loaded.nodes == build_plan(load_topology(topology)).nodes
