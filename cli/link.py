"""`anycastlab link set A B ...` and `anycastlab link show`: change and read each link's delay, loss and rate."""

from __future__ import annotations

from typing import Any

import click
from anycastlab import units
from anycastlab.lifecycle import Lab
from anycastlab.runtime.links import control

from .output import emit_json, lab_option, reports_errors, table


@click.group()
def link() -> None:
    """Per-link delay, jitter, loss and rate of the running lab."""


def _row(e: dict[str, Any]) -> tuple[Any, ...]:
    km = "-" if e["distance_km"] is None else f"{e['distance_km']:.0f}"
    return (f"{e['a']}-{e['b']}", e["kind"], km, units.show_ms(e["delay_ms"]),
            units.show_ms(e["jitter_ms"]) if e["jitter_ms"] else "-", f"{e['loss_pct']:g}%" if e["loss_pct"] else "-",
            e["rate"], e["source"], "yes" if e.get("applied", True) else "no (< 0.5 ms)",
            "up" if e.get("up", True) else "DOWN")


@link.command("set")
@click.argument("a")
@click.argument("b")
@click.option("--delay", default=None, help="one-way delay, each direction (e.g. 40ms)")
@click.option("--jitter", default=None, help="uniform +- jitter (e.g. 1ms; the nfqueue path never reorders)")
@click.option("--loss", default=None, help="packets dropped, each direction (e.g. 1%)")
@click.option("--rate", default=None, help="rate limit (e.g. 100mbit; `none` removes it)")
@click.option("--reset", is_flag=True, help="back to what the topology derives (geography or its links: entry)")
@click.option("--down", "carrier", flag_value="down", default=None, help="cut the link (both interfaces down)")
@click.option("--up", "carrier", flag_value="up", help="bring a cut link back")
@lab_option
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def set_(a: str, b: str, delay: str | None, jitter: str | None, loss: str | None, rate: str | None, reset: bool,
         carrier: str | None, lab_name: str | None, as_json: bool) -> None:
    """Change the link between nodes A and B (both directions); unnamed fields keep their values."""
    given = [delay, jitter, loss, rate]
    if carrier is not None and (reset or any(v is not None for v in given)):
        raise click.UsageError("--down/--up change only the link's state: give them alone")
    if reset and any(v is not None for v in given):
        raise click.UsageError("--reset puts every field back: give it without --delay, --jitter, --loss, --rate")
    lab = Lab.attach(lab_name).running
    if carrier is not None:
        entry = control.set_carrier(lab.plan, lab.directory, a, b, carrier == "up")
        if as_json:
            emit_json(entry)
        else:
            click.echo(f"link {a}-{b} {carrier}")
        return
    changes = control.parse_changes(delay, jitter, loss, rate)
    entry = control.set_link(lab.plan, lab.directory, a, b, changes, reset=reset)
    if as_json:
        emit_json(entry)
        return
    click.echo(table(["link", "kind", "km", "delay", "jitter", "loss", "rate", "source", "applied", "state"],
                     [_row({**entry, "rate": units.show_rate(entry["rate_bps"])})]))


@link.command("show")
@lab_option
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def show(lab_name: str | None, as_json: bool) -> None:
    """Every link's shaping now, and the mechanism that applies it."""
    lab = Lab.attach(lab_name).running
    data = control.show(lab.directory)
    if as_json:
        emit_json(data)
        return
    releaser = data["releaser"]
    running = "" if releaser is None else (f", releaser pid {releaser['pid']} "
                                          f"{'running' if releaser['running'] else 'NOT RUNNING'}")
    click.echo(f"mechanism {data['mechanism']} ({data['reason']}){running}\n")
    click.echo(table(["link", "kind", "km", "delay", "jitter", "loss", "rate", "source", "applied", "state"],
                     [_row(e) for e in data["links"]]))
