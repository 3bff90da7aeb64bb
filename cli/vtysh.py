"""`anycastlab vtysh ROUTER [-c CMD]`: FRR's shell on a router."""

from __future__ import annotations

import os

import click
from anycastlab.lifecycle import Lab

from .output import lab_option, reports_errors


@click.command()
@lab_option
@click.argument("router")
@click.option("-c", "commands", multiple=True, help="Run this command and exit (repeatable).")
@reports_errors
def vtysh(lab_name: str | None, router: str, commands: tuple[str, ...]) -> None:
    """Open FRR's vtysh on ROUTER, or run -c commands there."""
    argv = Lab.attach(lab_name).vtysh_argv(router, *commands)
    os.execvp(argv[0], argv)
