"""`anycastlab predict [TOPOLOGY]`: the expected catchment from the AS graph alone; boots nothing."""

from __future__ import annotations

from typing import Any

import click
from anycastlab import topology_files
from anycastlab.model import load_topology
from anycastlab.predict import predict as predict_catchment

from .output import emit_json, reports_errors, table


@click.command()
@click.argument("topology", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def predict(topology: str | None, as_json: bool) -> None:
    """Each ISP's expected PoPs under Gao-Rexford policy (customer > peer > provider, then the shortest AS
    path, valley-free export), computed offline. Ties are kept as sets: with `bgp: {multipath: true}`
    flows spread over the set; with it off, BGP's tie-break picks one PoP of it."""
    path = topology_files.resolve(topology)
    data = predict_catchment(load_topology(path)).to_json()
    data["file"] = str(path)
    if as_json:
        emit_json(data)
    else:
        click.echo(render(data))


def render(data: dict[str, Any]) -> str:
    """The per-ISP table and the per-PoP counts, as `predict` and `validate --predict` print them."""
    rows = []
    for e in data["eyeballs"]:
        route = e["route"]
        rows.append([e["name"], len(e["clients"]), " | ".join(e["pops"]) or "(no route)",
                     route["relation"] if route else "-", route["as_path_length"] if route else "-",
                     ", ".join(route["via"]) if route else "-"])
    parts = [table(["isp", "clients", "pops", "route from", "as-path", "via"], rows), ""]
    parts.append(table(["pop", "clients (only here)", "clients (in a tie)"],
                       [[p["pop"], p["certain"], p["tied"]] for p in data["pops"]]))
    ties = [e["name"] for e in data["eyeballs"] if e["tie"]]
    if ties:
        how = ("multipath on: flows spread over the tied PoPs (ECMP)" if data["multipath"]
               else "multipath off: BGP's tie-break (router-id) picks one PoP of each tie")
        parts.append(f"\nties at {', '.join(ties)}; {how}")
    if data["unreachable"]:
        parts.append(f"no route to the anycast address: {', '.join(data['unreachable'])}")
    return "\n".join(parts)
