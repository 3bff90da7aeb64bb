"""`anycastlab exec NODE -- CMD...`: run a command inside a node."""

from __future__ import annotations

import os
import shutil

import click
from anycastlab.lifecycle import Lab

from .output import lab_option, reports_errors


@click.command("exec", context_settings={"ignore_unknown_options": True})
@lab_option
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@reports_errors
def exec_(lab_name: str | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND in NODE's network namespace (interactive commands work: it replaces this process)."""
    pid = Lab.attach(lab_name).running.pid(node)
    if shutil.which(command[0]) is None:  # nodes share the host's filesystem, so its PATH answers for them
        click.echo(f"error: {command[0]}: command not found", err=True)
        raise SystemExit(127)  # what a shell says, where mnexec would say 1
    os.execvp("mnexec", ["mnexec", "-a", str(pid), *command])
