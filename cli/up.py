"""`anycastlab up`: boot a topology and return once the lab is ready."""

from __future__ import annotations

import json

import click
from anycastlab.lifecycle import Lab
from anycastlab.runtime.events import FAILED, Event

from .output import reports_errors, runtime_option


def _printer(as_json: bool) -> object:
    def show(event: Event) -> None:
        if as_json:
            click.echo(json.dumps(event.__dict__))
            return
        if event.stage == FAILED:
            return  # reported once, as the command's error
        click.echo(f"[{event.t:6.2f}s] {event.stage:<7} {event.message}")
        shown = 3 if event.stage == "gate" else 40  # progress: a taste of what is awaited, not all of it
        for line in event.details[:shown]:
            click.echo(f"           - {line}")
        if len(event.details) > shown:
            click.echo(f"           - ... and {len(event.details) - shown} more")

    return show


@click.command()
@click.argument("topology", required=False)
@click.option("--name", default=None, help="Lab name (default: the topology's name).")
@click.option("--foreground", is_flag=True, help="Stay attached; Ctrl-C tears the lab down.")
@click.option("--timeout", default=60.0, show_default=True, help="Seconds to wait for readiness.")
@runtime_option("the lab's nodes")
@click.option("--json", "as_json", is_flag=True, help="Progress events as JSON lines.")
@reports_errors
def up(topology: str | None, name: str | None, foreground: bool, timeout: float, runtime: str | None,
       as_json: bool) -> None:
    """Boot TOPOLOGY (a file, or a shipped name; default: default) and wait until it is ready."""
    show = _printer(as_json)
    assert callable(show)
    if foreground:
        raise SystemExit(Lab.run_foreground(topology, name, timeout, show, runtime))
    lab = Lab.up(topology, name, timeout, show, runtime)
    if not as_json:
        from anycastlab.runtime.state import running_labs

        # With other labs running, the verbs need --lab; say so in the hint.
        flag = "" if running_labs() == [lab.name] else f" --lab {lab.name}"
        click.echo(f"lab {lab.name!r} is running. Try: anycastlab status{flag} | anycastlab nodes{flag} | "
                   f"anycastlab down{flag}")
