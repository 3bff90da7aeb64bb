"""`anycastlab graph`: draw the topology with each client coloured by the PoP a fresh census finds
(`--from-last`: the last probe's, said with its age and how many clients it covered); `graph TOPOLOGY`
draws a file before any lab runs it, with nothing measured."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from anycastlab.lifecycle import Lab
from anycastlab.probes import graph as catchment
from anycastlab.probes.probe import load_last, run_probe

from .output import lab_option, reports_errors


@click.command()
@click.argument("topology", required=False)
@lab_option
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=Path("catchments.svg"),
              show_default=True, help="Output file: .svg, .png, .pdf or .dot.")
@click.option("--from-last", is_flag=True,
              help="Colour by the last probe's results instead of a fresh census (says their age and coverage).")
@reports_errors
def graph(topology: str | None, lab_name: str | None, out: Path, from_last: bool) -> None:
    """Draw ASes, routers, PoPs and clients, each client coloured by its measured PoP (a census run now);
    with TOPOLOGY (a file or a shipped name), draw that file as it stands, before `up`: nothing coloured."""
    if topology is not None:
        if lab_name or from_last:
            raise click.UsageError("TOPOLOGY draws a file, not a lab: it takes neither --lab nor --from-last")
        from anycastlab.lifecycle import load
        from anycastlab.plan import build_plan

        path, topo = load(topology)
        catchment.render(build_plan(topo), None, out)
        click.echo(f"wrote {out} (the topology in {path}, not booted: clients are not coloured)")
        return
    lab = Lab.attach(lab_name).running
    last = load_last(lab) if from_last else None
    note = "a census run now"
    if from_last and last is None:
        click.echo("no probe result yet in this lab: running a census instead", err=True)
    if last is None:
        last = run_probe(lab, ["census"]).to_json()
    else:
        note = coverage_note(last, len(lab.plan.clients), time.time())
    catchment.render(lab.plan, last, out, lab.name)
    methods = ", ".join(last.get("methods", [])) or "no"
    click.echo(f"wrote {out} (clients coloured by {methods} measurement: {note})")


def coverage_note(last: dict[str, Any], clients: int, now: float) -> str:
    """How old a reused probe is and how many of the lab's clients it measured."""
    age = max(0.0, now - float(last.get("started", now)))
    measured = sum(1 for c in last.get("clients", []) if c.get("pop"))
    when = f"{age:.0f} s ago" if age < 120 else f"{age / 60:.0f} min ago"
    cover = f"{measured} of {clients} clients" + ("" if measured == clients else ", the others uncoloured")
    return f"the last probe, {when}, {cover}"
