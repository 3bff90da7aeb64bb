"""`anycastlab down`: stop everything the lab started."""

from __future__ import annotations

import click
from anycastlab import lifecycle

from .output import emit_json, lab_option, reports_errors


@click.command()
@lab_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@reports_errors
def down(lab_name: str | None, as_json: bool) -> None:
    """Stop the lab: its processes, namespaces, interfaces, containers and run directory."""
    seconds = lifecycle.down(lab_name)
    if as_json:
        emit_json({"lab": lab_name, "stopped": True, "seconds": round(seconds, 3)})
        return
    click.echo(f"lab stopped in {seconds:.2f} s")
