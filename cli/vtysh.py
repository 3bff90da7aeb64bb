"""`anycastlab vtysh ROUTER [-c CMD]`: FRR's shell on a router."""

from __future__ import annotations

import os

import click
from anycastlab.errors import LabError
from anycastlab.lifecycle import Lab

from .output import lab_option, reports_errors


@click.command()
@lab_option
@click.argument("router")
@click.option("-c", "commands", multiple=True, help="Run this command and exit (repeatable).")
@reports_errors
def vtysh(lab_name: str | None, router: str, commands: tuple[str, ...]) -> None:
    """Open FRR's vtysh on ROUTER, or run -c commands there."""
    lab = Lab.attach(lab_name)
    node = lab.running.plan.nodes.get(router)
    if node is not None and not node.is_router:
        routers = ", ".join(sorted(n.name for n in lab.running.plan.routers))
        raise LabError(f"{router!r} is a {node.role}, not a router (routers: {routers}); "
                       f"for a shell there: anycastlab exec {router} -- CMD")
    argv = lab.vtysh_argv(router, *commands)
    os.execvp(argv[0], argv)
