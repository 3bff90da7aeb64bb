"""`anycastlab clean`: recover after a crash, from each lab's ledger."""

from __future__ import annotations

import click
from anycastlab import lifecycle

from .output import emit_json, lab_option, reports_errors


@click.command()
@lab_option
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def clean(lab_name: str | None, as_json: bool) -> None:
    """Remove exactly what lab ledgers name: recorded processes (by pid), namespaces, run directories."""
    removed = lifecycle.clean(lab_name)
    if as_json:
        emit_json(removed)
        return
    if not removed:
        click.echo("nothing to clean")
    for lab, what in removed.items():
        click.echo(f"lab {lab!r}: removed run directory; ended {len(what)} recorded processes")
