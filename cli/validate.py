"""`anycastlab validate [TOPOLOGY]`: check a topology file without creating anything."""

from __future__ import annotations

import click
from anycastlab import topology_files
from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.predict import predict

from .output import emit_json, reports_errors


@click.command()
@click.argument("topology", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--predict", "with_prediction", is_flag=True,
              help="Also print the offline catchment (as `anycastlab predict` does).")
@reports_errors
def validate(topology: str | None, as_json: bool, with_prediction: bool) -> None:
    """Validate TOPOLOGY and print a summary of its address plan."""
    path = topology_files.resolve(topology)
    topo = load_topology(path)
    plan = build_plan(topo)
    pops = [p.name for p in plan.pops]
    summary: dict[str, object] = {
        "file": str(path), "name": topo.name, "routers": len(plan.routers), "clients": len(plan.clients),
        "links": len(plan.links), "sessions": len(plan.sessions()), "pops": pops,
        "delayed_links": sum(link.shaping.needs_delay for link in plan.links),
        "max_delay_ms": max((link.shaping.delay_ms for link in plan.links), default=0.0),
    }
    prediction = predict(topo).to_json() if with_prediction else None
    if prediction is not None:
        summary["prediction"] = prediction
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"{path}: ok: {summary['routers']} routers, {summary['clients']} clients, "
                   f"{summary['links']} links ({summary['delayed_links']} delayed, up to "
                   f"{summary['max_delay_ms']:g} ms one-way), {summary['sessions']} BGP sessions, "
                   f"PoPs {', '.join(pops)}")
        if prediction is not None:
            from .predict import render

            click.echo("\nexpected catchment (offline, from the AS graph):\n" + render(prediction))
