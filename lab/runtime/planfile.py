"""A running lab's plan, as `up` derived it: written once to the run directory and read by every verb.

Rebuilding the plan from the topology on each verb would let an upgrade of the package under a running
lab (a new address allocation, a new default) change the addresses the verbs believe in while the data
plane keeps the old ones. The topology itself is still read from the lab's own copy (it is the user's
input, and validating it again changes nothing it says); the nodes and links come from here.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import paths

if TYPE_CHECKING:
    from ..plan import Link, Node, Plan


@cache
def _adapters() -> tuple[Any, Any]:
    from pydantic import TypeAdapter

    from ..plan import Link, Node

    return TypeAdapter(dict[str, Node]), TypeAdapter(list[Link])


def save(directory: Path, plan: Plan) -> None:
    nodes, links = _adapters()
    body = b'{"nodes": ' + nodes.dump_json(plan.nodes) + b', "links": ' + links.dump_json(plan.links) + b"}\n"
    target = paths.plan_file(directory)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_bytes(body)
    os.replace(tmp, target)


def load(directory: Path) -> Plan:
    """The lab's plan; a lab started before plan.json existed gets its plan rebuilt from its topology copy."""
    import json

    from ..model import load_topology
    from ..plan import Plan, build_plan

    topology = load_topology(paths.topology_file(directory))
    try:
        data = json.loads(paths.plan_file(directory).read_bytes())
    except FileNotFoundError:
        return build_plan(topology)
    nodes, links = _adapters()
    loaded_nodes: dict[str, Node] = nodes.validate_python(data["nodes"])
    loaded_links: list[Link] = links.validate_python(data["links"])
    return Plan(topology, loaded_nodes, loaded_links)
