"""`anycastlab graph`: draw the topology with each client coloured by the PoP its last probe found."""

from __future__ import annotations

from pathlib import Path

import click
from anycastlab.lifecycle import Lab
from anycastlab.probes import graph as catchment
from anycastlab.probes.probe import load_last, run_probe

from .output import lab_option, reports_errors


@click.command()
@lab_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("catchments.svg"),
              show_default=True, help="Output file: .svg, .png, .pdf or .dot.")
@reports_errors
def graph(lab_name: str | None, out: Path) -> None:
    """Draw ASes, routers, PoPs and clients, each client coloured by its measured PoP."""
    lab = Lab.attach(lab_name).running
    last = load_last(lab)
    if last is None:
        click.echo("no probe result yet in this lab: running a census first", err=True)
        last = run_probe(lab, ["census"]).to_json()
    catchment.render(lab.plan, last, out, lab.name)
    click.echo(f"wrote {out} (clients coloured by {', '.join(last.get('methods', [])) or 'no'} measurement)")
