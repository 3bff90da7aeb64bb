"""plan.json is read without pydantic (runtime/planfile.py's own decoder): it must give exactly the plan
pydantic's validator gives for the same file, on the shipped topologies and on generated ones, and stay
free of the topology model until the topology is asked for (what keeps `nodes` and `status` fast)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from anycastlab.errors import LabError
from anycastlab.generate import random_topology
from anycastlab.model import load_topology
from anycastlab.plan import Link, Node, Plan, build_plan
from anycastlab.runtime import paths, planfile
from anycastlab.topology_files import resolve
from pydantic import TypeAdapter
from ruamel.yaml import YAML


def generated(tmp_path: Path, seed: int) -> Path:
    """A generated topology with shaping on some links (jitter, loss, rate), so every Shaping field is set."""
    doc = random_topology(seed, transits=4, pops=3, eyeballs=4, clients=3)
    isp = doc["eyeballs"][0]["name"]
    doc["links"] = [{"between": [isp, f"{isp}-c1"], "delay": "7ms", "jitter": "1500us", "loss": "0.5%",
                     "rate": "10mbit"},
                    {"between": [doc["pops"][0]["name"], doc["pops"][0]["upstreams"][0]], "delay": "20ms"}]
    path = tmp_path / f"gen{seed}.yaml"
    with path.open("w") as out:
        YAML().dump(doc, out)
    return path


def saved(tmp_path: Path, topology: Path) -> tuple[Path, Plan]:
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    shutil.copyfile(topology, paths.topology_file(run))
    plan = build_plan(load_topology(topology))
    planfile.save(run, plan)
    return run, plan


def validated(run: Path) -> tuple[dict[str, Node], list[Link]]:
    """plan.json as pydantic's validator reads it (what planfile.load did before it had its own decoder)."""
    data = json.loads(paths.plan_file(run).read_bytes())
    return (TypeAdapter(dict[str, Node]).validate_python(data["nodes"]),
            TypeAdapter(list[Link]).validate_python(data["links"]))


@pytest.mark.parametrize("topology", ["default", "small", "world", "generated-1", "generated-7"])
def test_the_plain_reader_reads_what_pydantic_reads(tmp_path: Path, topology: str) -> None:
    source = generated(tmp_path, int(topology.split("-")[1])) if topology.startswith("generated") \
        else resolve(topology)
    run, plan = saved(tmp_path, source)
    loaded = planfile.load(run)
    nodes, links = validated(run)
    assert loaded.nodes == nodes == plan.nodes
    assert loaded.links == links == plan.links
    # repr shows the types too (5 == 5.0, but a delay read back as an int would print differently)
    assert repr(loaded.nodes) == repr(nodes) and repr(loaded.links) == repr(links)
    assert loaded.topology == plan.topology
    assert loaded == plan and plan == loaded
    if topology.startswith("generated"):
        shaped = [link.shaping for link in loaded.links if link.shaping.source == "topology"]
        assert {s.jitter_ms for s in shaped} == {1.5, 0.0} and any(s.rate_bps == 10_000_000 for s in shaped)


def test_reading_a_plan_needs_no_pydantic_until_the_topology_is_asked_for(tmp_path: Path) -> None:
    run, plan = saved(tmp_path, resolve("default"))
    script = f"""
import sys
from pathlib import Path
import anycastlab.cli.exec_, anycastlab.cli.nodes, anycastlab.cli.status
from anycastlab.runtime import planfile
plan = planfile.load(Path({str(run)!r}))
assert plan.nodes["fra"].unicast is not None
facts = (str(plan.anycast), plan.asn, plan.multipath, plan.pop_community("fra"))  # what `status` reads
heavy = sorted(m for m in sys.modules if m in ("pydantic", "anycastlab.model", "ruamel.yaml", "anycastlab.lifecycle"))
assert not heavy, heavy
print(plan.topology.asn, *facts)
assert "anycastlab.model" in sys.modules
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    topo = plan.topology
    assert out.stdout.split() == [str(topo.asn), str(topo.anycast), str(topo.asn), str(topo.bgp.multipath),
                                  plan.pop_community("fra")]


def test_a_plan_file_without_newer_fields_takes_their_defaults_and_ignores_unknown_ones(tmp_path: Path) -> None:
    run, plan = saved(tmp_path, resolve("small"))
    data = json.loads(paths.plan_file(run).read_bytes())
    for node in data["nodes"].values():
        del node["unicast"]  # as if written before PoPs had a unicast address
        node["added_later"] = 1  # as if written by a newer version
    for link in data["links"]:
        del link["shaping"]
    del data["facts"]  # as if written before the topology's facts were saved: they come from the topology
    paths.plan_file(run).write_text(json.dumps(data))
    loaded = planfile.load(run)
    assert (loaded.anycast, loaded.asn, loaded.multipath) == (plan.anycast, plan.asn, plan.multipath)
    assert all(n.unicast is None for n in loaded.nodes.values())
    assert all(link.shaping == type(link.shaping)() for link in loaded.links)
    assert [n.interfaces for n in loaded.nodes.values()] == [n.interfaces for n in plan.nodes.values()]
    assert (loaded.nodes, loaded.links) == validated(run)


@pytest.mark.parametrize(("change", "where"), [
    (lambda d: d["nodes"]["ams"]["interfaces"][0].update(address="10.0.0.300/31"), "nodes.ams.interfaces[0].address"),
    (lambda d: d["nodes"]["ams"].update(role="router"), "nodes.ams.role"),
    (lambda d: d["links"][2]["shaping"].update(delay_ms="5ms"), "links[2].shaping.delay_ms"),
    (lambda d: d["nodes"]["ams"].pop("name"), "nodes.ams.name"),
    (lambda d: d.pop("links"), "links"),
])
def test_a_damaged_plan_file_is_an_error_naming_the_file_and_field(tmp_path: Path, change: Any,
                                                                    where: str) -> None:
    run, _ = saved(tmp_path, resolve("small"))
    data = json.loads(paths.plan_file(run).read_bytes())
    change(data)
    paths.plan_file(run).write_text(json.dumps(data))
    with pytest.raises(LabError, match=re.escape(f"plan.json: {where}:")):
        planfile.load(run)
