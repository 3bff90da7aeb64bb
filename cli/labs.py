"""`anycastlab labs`: every lab on this machine, whoever started it (from /run/anycastlab)."""

from __future__ import annotations

import click
from anycastlab.labs import all_labs

from .output import emit_json, reports_errors, table


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def labs(as_json: bool) -> None:
    """List every lab: name, status (ready, starting, crashed), topology, runtime, nodes, age."""
    found = all_labs()
    if as_json:
        emit_json(found)
        return
    if not found:
        click.echo("no labs (start one with `anycastlab up`)")
        return
    click.echo(table(["lab", "status", "topology", "runtime", "nodes", "age", "supervisor"],
                     [[lab["name"], lab["status"], lab["topology"] or "-", lab["runtime"] or "-",
                       lab["nodes"] if lab["nodes"] is not None else "-", _age(lab["age_s"]),
                       lab["supervisor_pid"] or "-"] for lab in found]))
    crashed = [lab["name"] for lab in found if lab["status"] == "crashed"]
    if crashed:
        click.echo(f"crashed: {', '.join(crashed)}: `anycastlab clean --lab NAME` removes what each left")
