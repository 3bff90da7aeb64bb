"""`anycastlab move CLIENT ISP`, `move CLIENT --home`, `move --home`: re-home clients of the running lab."""

from __future__ import annotations

import click
from anycastlab.lifecycle import Lab
from anycastlab.runtime import moves

from .output import emit_json, lab_option, reports_errors, table


@click.command()
@click.argument("client", required=False)
@click.argument("isp", required=False)
@click.option("--home", is_flag=True, help="back to the ISP the topology gives it (every moved client without CLIENT)")
@lab_option
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def move(client: str | None, isp: str | None, home: bool, lab_name: str | None, as_json: bool) -> None:
    """Move CLIENT to eyeball ISP (a user travelling): a new access link, address and resolver there; BGP
    steers its next packet. Open connections break. Without arguments, list the clients away from home."""
    if home and isp is not None:
        raise click.UsageError("give either ISP or --home")
    if client is None and isp is None and not home:
        lab = Lab.attach(lab_name).running
        away = moves.homes(lab.directory)
        rows = [{"client": c, "isp": lab.plan.nodes[c].isp, "home": h.isp} for c, h in sorted(away.items())]
        if as_json:
            emit_json(rows)
        else:
            click.echo(table(["client", "isp", "home"], [list(r.values()) for r in rows]) if rows
                       else "every client is on its home ISP")
        return
    if client is not None and isp is None and not home:
        raise click.UsageError("give the ISP to move to, or --home")
    lab = Lab.attach(lab_name).running
    if client is None:
        done = moves.all_home(lab)
    elif home:
        one = moves.move_home(lab, client)
        if one is None:
            raise click.ClickException(f"{client} is on its home ISP already")
        done = [one]
    else:
        assert isp is not None
        done = [moves.move(lab, client, isp)]
    if as_json:
        emit_json([m.to_json() for m in done])
        return
    for m in done:
        where = " (home)" if m.isp_to == m.home else f" (home: {m.home})"
        click.echo(f"{m.client}: {m.isp_from} -> {m.isp_to}{where}, address {m.address} via {m.gateway}, "
                   f"access delay {m.shaping.delay_ms:g} ms, in {m.took_s:.2f} s")
    if not done:
        click.echo("every client is on its home ISP")
