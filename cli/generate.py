"""`anycastlab generate`: a world-sized topology in real cities (lab/world.py), checked before it is written."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click
from anycastlab.errors import LabError

from .output import emit_json, reports_errors


@click.command()
@click.option("--pops", type=int, default=40, show_default=True, help="PoPs, shared out over continents by population.")
@click.option("--eyeballs", type=int, default=50, show_default=True, help="Eyeball (access) ISPs.")
@click.option("--clients-per-isp", type=int, default=4, show_default=True, help="Client hosts per ISP.")
@click.option("--seed", type=int, default=1, show_default=True, help="The same seed gives the same file.")
@click.option("--name", default=None, help="The lab name in the file (default: world<SEED>).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE",
              help="Write here (default: stdout).")
@click.option("--json", "as_json", is_flag=True, help="With --out: a summary as JSON.")
@reports_errors
def generate(pops: int, eyeballs: int, clients_per_isp: int, seed: int, name: str | None, out: Path | None,
             as_json: bool) -> None:
    """Generate a topology: PoPs and eyeballs in real GeoNames cities, tier-1 mesh, regional transits."""
    from anycastlab.model import load_topology
    from anycastlab.world import to_yaml, world_topology

    try:
        doc = world_topology(seed, pops=pops, eyeballs=eyeballs, clients_per_isp=clients_per_isp, name=name)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    command = (f"anycastlab generate --pops {pops} --eyeballs {eyeballs} --clients-per-isp {clients_per_isp} "
               f"--seed {seed}" + (f" --name {name}" if name else ""))
    text = to_yaml(doc, command)
    with tempfile.TemporaryDirectory() as tmp:  # what validate would say, before anything is written
        check = Path(tmp) / "generated.yaml"
        check.write_text(text)
        topo = load_topology(check)
    if out is None:
        click.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        raise LabError(f"cannot write {out}: {exc.strerror or exc}") from exc
    clients = sum(e.clients for e in topo.eyeballs)
    summary = {"file": str(out), "name": topo.name, "seed": seed, "pops": len(topo.pops),
               "transits": len(topo.transits), "eyeballs": len(topo.eyeballs), "clients": clients}
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"{out}: {summary['pops']} PoPs, {summary['transits']} transits, {summary['eyeballs']} "
                   f"eyeball ISPs, {clients} clients (seed {seed})")
