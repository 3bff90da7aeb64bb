"""`anycastlab exec NODE -- CMD...`: run a command inside a node."""

from __future__ import annotations

import os

import click
from anycastlab.runtime.state import node_handle

from .output import lab_option, reports_errors


@click.command("exec", context_settings={"ignore_unknown_options": True})
@lab_option
@click.argument("node")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@reports_errors
def exec_(lab_name: str | None, node: str, command: tuple[str, ...]) -> None:
    """Run COMMAND inside NODE, with the node's own tools (the image's, on docker); interactive commands
    work, since it replaces this process. It exits with the command's status (127: not found)."""
    argv = [*node_handle(lab_name, node).exec, *command]
    os.execvp(argv[0], argv)
