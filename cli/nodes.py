"""`anycastlab nodes`: list the lab's nodes."""

from __future__ import annotations

from typing import Any

import click
from anycastlab.plan import Node
from anycastlab.runtime.state import attach

from .output import emit_json, lab_option, reports_errors, table


def _addresses(node: Node) -> list[str]:
    out = [f"{node.loopback}/32"] if node.loopback else []
    out += [str(a) for a in node.lo_addresses]
    out += [f"{i.address} ({i.name})" for i in node.interfaces]
    return out


@click.command()
@lab_option
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def nodes(lab_name: str | None, as_json: bool) -> None:
    """List every node: routers, clients and the origin, with their addresses."""
    running = attach(lab_name)  # not Lab (lifecycle): reading a lab needs none of what boots one
    plan = running.plan
    items: list[dict[str, Any]] = [{"name": n.name, "role": n.role, "asn": n.asn, "runtime": running.runtime,
                                    "pid": running.pid(n.name), "container": running.handle(n.name).container,
                                    "addresses": _addresses(n),
                                    **({"unicast": str(n.unicast)} if n.unicast is not None else {})}
                                   for n in plan.nodes.values()]
    if as_json:
        emit_json(items)
        return
    containers = any(i["container"] for i in items)
    where = f": each node is the container {running.name}-<node>" if containers else ""
    click.echo(f"runtime {running.runtime}{where}")
    click.echo(table(["node", "role", "asn", "addresses"],
                     [(i["name"], i["role"], i["asn"] or "-", ", ".join(i["addresses"][:3])
                       + (" ..." if len(i["addresses"]) > 3 else "")) for i in items]))
