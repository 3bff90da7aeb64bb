"""`anycastlab validate [TOPOLOGY]`: check a topology file without creating anything."""

from __future__ import annotations

from pathlib import Path

import click
from anycastlab import topology_files
from anycastlab.errors import LabError
from anycastlab.model import load_topology
from anycastlab.plan import Plan, build_plan
from anycastlab.predict import predict

from .output import emit_json, reports_errors


@click.command()
@click.argument("topology", required=False)
@click.option("--json", "as_json", is_flag=True)
@click.option("--predict", "with_prediction", is_flag=True,
              help="Also print the offline catchment (as `anycastlab predict` does).")
@click.option("--render", "render_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="DIR", help="Also write each router's rendered frr.conf to DIR/<router>.frr.conf.")
@reports_errors
def validate(topology: str | None, as_json: bool, with_prediction: bool, render_dir: Path | None) -> None:
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
    rendered = _render(plan, render_dir) if render_dir is not None else []
    if render_dir is not None:
        summary["rendered"] = rendered
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
        if render_dir is not None:
            click.echo(f"rendered {len(rendered)} frr.conf files into {render_dir}")
        if prediction is not None:
            from .predict import render

            click.echo("\nexpected catchment (offline, from the AS graph):\n" + render(prediction))


def _render(plan: Plan, directory: Path) -> list[str]:
    """Each router's unified frr.conf (what the lab starts FRR from, and what the golden tests pin)."""
    from anycastlab.render.frr import render_all

    try:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, config in render_all(plan).items():
            path = directory / f"{name}.frr.conf"
            path.write_text(config.unified)
            written.append(str(path))
    except OSError as exc:
        raise LabError(f"cannot write the rendered configs into {directory}: {exc.strerror or exc}") from exc
    return written
