"""`anycastlab purge`: drop cached objects from one PoP's proxy, by URL, by Cache-Tag, or everything."""

from __future__ import annotations

from pathlib import Path

import click
from anycastlab.cli.mgmt_target import resolve_sockets
from anycastlab.edge.mgmt import MgmtError, call


@click.command()
@click.option("--url", help="Purge one URL (http://host/path?query; scheme does not matter).")
@click.option("--tag", help="Purge every object whose Cache-Tag lists this tag.")
@click.option("--all", "purge_all", is_flag=True, help="Purge everything.")
@click.option("--socket", "socket", type=click.Path(path_type=Path), help="Proxy management socket.")
@click.option("--lab", metavar="NAME", help="Which lab (default: the only one running).")
@click.option("--pop", help="Only this PoP (default: every PoP of the lab).")
def purge(url: str | None, tag: str | None, purge_all: bool, socket: Path | None, lab: str | None,
          pop: str | None) -> None:
    """Purge cached objects: at every PoP of the lab, one PoP (--pop), or one socket (--socket)."""
    chosen = [x for x in (url is not None, tag is not None, purge_all) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --url, --tag or --all")
    targets = resolve_sockets(socket, lab, pop)
    body: dict[str, object] = {"url": url} if url is not None else {"tag": tag} if tag is not None \
        else {"all": True}
    failed: list[str] = []
    for name, path in targets:
        prefix = f"{name}: " if len(targets) > 1 else ""
        try:
            status, data = call(path, "POST", "/purge", body)
        except MgmtError as exc:
            failed.append(f"{prefix}{exc}")
            continue
        if status != 200 or not isinstance(data, dict):
            failed.append(f"{prefix}purge failed ({status}): {data}")
            continue
        click.echo(f"{prefix}purged {data.get('purged', 0)} object(s)")
    if failed:
        raise click.ClickException("; ".join(failed))
