"""`anycastlab backbone`: the private backbone's measured RTTs, OSPF costs and paths; smart routing and the
tiered cache switched at runtime."""

from __future__ import annotations

from typing import Any

import click
from anycastlab.cli.output import emit_json, lab_option, reports_errors, table


def _fmt(value: Any, unit: str = "") -> str:
    return "-" if value is None else f"{value}{unit}"


def render(data: dict[str, Any]) -> str:
    tiered = data["tiered_cache"]
    tier = (f"on (upper: {', '.join(tiered['upper'])})" if tiered["enabled"] else
            f"off (upper: {', '.join(tiered['upper'])})" if tiered["upper"] else "not configured")
    lines = [f"lab {data['lab']}: smart routing {'on' if data['smart_routing'] else 'off'}, tiered cache {tier}, "
             f"prober pid {data['prober_pid']} ({'running' if data['prober_alive'] else 'gone'}, "
             f"{data['probe_hz']:g} probes/s per link, updated {data['updated_ago_s']} s ago)", ""]
    rows = [(f"{link['router']} -> {link['peer']}", _fmt(link.get("set_delay_ms"), " ms"),
             _fmt(link["rtt_ms"], " ms"), f"{link['loss'] * 100:.0f}%", _fmt(link["ospf_cost"]),
             "smart" if link["cost"] is not None else "default") for link in data["links"]]
    lines.append(table(["link", "one-way delay set", "rtt measured", "loss", "ospf cost", "cost from"], rows))
    lines.append("")
    paths = [(p["pop"], p["fetches_from"], " > ".join(p["path"]), _fmt(p["path_rtt_ms"], " ms")) for p in data["pops"]]
    lines.append(table(["pop", "fetches from", "path (from the routers' FIBs)", "path rtt"], paths))
    return "\n".join(lines)


@click.group()
def backbone() -> None:
    """The private backbone: RTTs, costs, paths; smart routing and tiered cache."""


@backbone.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@lab_option
@reports_errors
def show(as_json: bool, lab_name: str | None) -> None:
    """Links with measured RTT and OSPF cost, and each PoP's path to where it fetches misses."""
    from anycastlab.backbone import control
    from anycastlab.runtime.state import attach

    data = control.show(attach(lab_name))
    emit_json(data) if as_json else click.echo(render(data))


@backbone.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@lab_option
@reports_errors
def smart(state: str, as_json: bool, lab_name: str | None) -> None:
    """Smart routing: OSPF costs follow measured RTT (on) or OSPF's defaults, fewest hops (off)."""
    from anycastlab.backbone import control
    from anycastlab.runtime.state import attach

    lab = attach(lab_name)
    control.set_smart(lab, state == "on")
    if as_json:
        emit_json({"lab": lab.name, "smart_routing": state == "on"})
        return
    click.echo(f"smart routing {state}")


@backbone.command()
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@lab_option
@reports_errors
def tiered(state: str, as_json: bool, lab_name: str | None) -> None:
    """Tiered cache: lower-tier PoPs fetch misses from their upper tier (on) or from the origin (off)."""
    from anycastlab.backbone import tiered as tier
    from anycastlab.runtime.state import attach

    lab = attach(lab_name)
    origins = tier.switch(lab, state == "on")
    if as_json:
        emit_json({"lab": lab.name, "tiered_cache": state == "on", "origins": origins})
        return
    for pop, url in origins.items():
        click.echo(f"{pop}: misses go to {url}")
