"""`anycastlab purge`: drop cached objects from one PoP's proxy, by URL, by Cache-Tag, or everything."""

from __future__ import annotations

from pathlib import Path

import click
from anycastlab.cli.mgmt_target import resolve_sockets
from anycastlab.edge.mgmt import MgmtError, call

from .output import emit_json


@click.command()
@click.option("--url", help="Purge one URL (http://host/path?query; scheme does not matter), or a path "
              "(/path?query) under every hostname it is cached for.")
@click.option("--tag", help="Purge every object whose Cache-Tag lists this tag.")
@click.option("--all", "purge_all", is_flag=True, help="Purge everything.")
@click.option("--socket", "socket", type=click.Path(path_type=Path), help="Proxy management socket.")
@click.option("--lab", metavar="NAME", help="Which lab (default: the only one running).")
@click.option("--pop", help="Only this PoP (default: every PoP of the lab).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output: {purged, pops: {pop: n}}.")
def purge(url: str | None, tag: str | None, purge_all: bool, socket: Path | None, lab: str | None,
          pop: str | None, as_json: bool) -> None:
    """Purge cached objects: at every PoP of the lab, one PoP (--pop), or one socket (--socket)."""
    chosen = [x for x in (url is not None, tag is not None, purge_all) if x]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --url, --tag or --all")
    if url is not None and not url.startswith("/") and "/" not in url.split("://", 1)[-1]:
        raise click.UsageError(f"--url {url!r} names no path: give http://host/path, or /path for every hostname")
    targets = resolve_sockets(socket, lab, pop)
    body: dict[str, object] = {"url": url} if url is not None else {"tag": tag} if tag is not None \
        else {"all": True}
    failed: list[str] = []
    counts: dict[str, int] = {}
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
        counts[name] = int(data.get("purged", 0))
        if not as_json:
            click.echo(f"{prefix}purged {counts[name]} object(s)")
    total = sum(counts.values())
    what = f"URL {url}" if url is not None and not url.startswith("/") else \
        f"path {url} (under every hostname)" if url is not None else f"tag {tag}" if tag is not None else "everything"
    if as_json:
        emit_json({"purged": total, "what": what, "pops": counts, "failed": failed})
    elif counts and total == 0 and not purge_all:
        where = "the PoP" if len(targets) == 1 else f"any of the {len(counts)} PoPs"
        hint = "" if url is None or url.startswith("/") else \
            "; the host must be the one clients ask for (or give /path alone for every hostname)"
        click.echo(f"nothing was cached for {what} at {where}{hint}")
    if failed:
        raise click.ClickException("; ".join(failed))
