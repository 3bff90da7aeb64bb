"""`anycastlab down`: stop everything the lab started."""

from __future__ import annotations

import click
from anycastlab import lifecycle

from .output import lab_option, reports_errors


@click.command()
@lab_option
@reports_errors
def down(lab_name: str | None) -> None:
    """Stop the lab: its processes, namespaces, interfaces and run directory."""
    seconds = lifecycle.down(lab_name)
    click.echo(f"lab stopped in {seconds:.2f} s")
