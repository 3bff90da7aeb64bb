"""`anycastlab status`: sessions, announcing PoPs, and each client's predicted PoP."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click
from anycastlab.runtime.state import attach
from anycastlab.status import lab_status

from .output import emit_json, lab_option, reports_errors, table


def _sessions(routers: list[dict[str, Any]]) -> tuple[int, int]:
    """(established, total) BGP sessions, each counted once although both ends list it."""
    ends: dict[frozenset[str], list[bool]] = {}
    for router in routers:
        for session in router["sessions"]:
            ends.setdefault(frozenset((router["name"], session["peer"])), []).append(
                session["state"] == "Established")
    return sum(all(states) for states in ends.values()), len(ends)


@click.command()
@lab_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def status(lab_name: str | None, as_json: bool) -> None:
    """Show the running lab's BGP sessions, PoPs and client catchments."""
    running = attach(lab_name)  # not Lab (lifecycle): reading a lab needs none of what boots one
    data = lab_status(running)
    supervisor = running.supervisor_running
    if as_json:
        emit_json({**data, "supervisor_running": supervisor})
        return
    up, total = _sessions(data["routers"])
    click.echo(f"lab {data['lab']} ({data['runtime']} runtime)  anycast {data['anycast']}  AS{data['asn']}  "
               f"BGP sessions {up}/{total} established")
    if not supervisor:
        click.echo(f"supervisor NOT RUNNING (pid {running.supervisor_pid}): the lab crashed, nothing restarts "
                   f"or withdraws; `anycastlab clean --lab {data['lab']}` removes what is left")
    links = data["links"]
    releaser = links["releaser"]
    state = "" if releaser is None else f", releaser {'running' if releaser['running'] else 'NOT RUNNING'}"
    click.echo(f"link shaping {links['mechanism']}: {links['shaped_links']} links shaped{state} "
               f"({links['reason']})\n")
    rows = [(r["name"], r["role"], r["asn"],
             " ".join(f"{s['peer']}:{'up' if s['state'] == 'Established' else s['state']}" for s in r["sessions"]))
            for r in data["routers"]]
    click.echo(table(["router", "role", "asn", "sessions"], rows) + "\n")
    share = Counter(c["predicted_pop"] for c in data["clients"])
    click.echo(table(["pop", "unicast", "announcing anycast", "clients"],
                     [(p["name"], p["unicast"], "yes" if p["announcing"] else "NO", share.get(p["name"], 0))
                      for p in data["pops"]]) + "\n")
    click.echo(table(["client", "isp", "address", "predicted pop"],
                     [(c["name"], c["isp"], c["address"], c["predicted_pop"] or "-") for c in data["clients"]]))
