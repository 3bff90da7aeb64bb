"""`anycastlab status`: sessions, announcing PoPs, and each client's predicted PoP."""

from __future__ import annotations

from collections import Counter

import click
from anycastlab.lifecycle import Lab

from .output import emit_json, lab_option, reports_errors, table


@click.command()
@lab_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@reports_errors
def status(lab_name: str | None, as_json: bool) -> None:
    """Show the running lab's BGP sessions, PoPs and client catchments."""
    data = Lab.attach(lab_name).status()
    if as_json:
        emit_json(data)
        return
    sessions = [s for r in data["routers"] for s in r["sessions"]]
    up = sum(s["state"] == "Established" for s in sessions)
    click.echo(f"lab {data['lab']}  anycast {data['anycast']}  AS{data['asn']}  "
               f"BGP sessions {up}/{len(sessions)} established")
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
    click.echo(table(["pop", "announcing", "clients"],
                     [(p["name"], "yes" if p["announcing"] else "NO", share.get(p["name"], 0))
                      for p in data["pops"]]) + "\n")
    click.echo(table(["client", "isp", "address", "predicted pop"],
                     [(c["name"], c["isp"], c["address"], c["predicted_pop"] or "-") for c in data["clients"]]))
