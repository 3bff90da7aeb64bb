"""`anycastlab validate [TOPOLOGY]`: check a topology file without creating anything."""

from __future__ import annotations

import click
from anycastlab.lifecycle import load
from anycastlab.plan import build_plan

from .output import emit_json, reports_errors


@click.command()
@click.argument("topology", required=False)
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def validate(topology: str | None, as_json: bool) -> None:
    """Validate TOPOLOGY and print a summary of its address plan."""
    path, topo = load(topology)
    plan = build_plan(topo)
    pops = [p.name for p in plan.pops]
    summary: dict[str, object] = {
        "file": str(path), "name": topo.name, "routers": len(plan.routers), "clients": len(plan.clients),
        "links": len(plan.links), "sessions": len(plan.sessions()), "pops": pops,
        "delayed_links": sum(link.shaping.needs_delay for link in plan.links),
        "max_delay_ms": max((link.shaping.delay_ms for link in plan.links), default=0.0),
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"{path}: ok: {summary['routers']} routers, {summary['clients']} clients, "
                   f"{summary['links']} links ({summary['delayed_links']} delayed, up to "
                   f"{summary['max_delay_ms']:g} ms one-way), {summary['sessions']} BGP sessions, "
                   f"PoPs {', '.join(pops)}")
