"""`anycastlab stats`: one PoP proxy's counters (requests, cache statuses, origin, TLS, errors)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from anycastlab.cli.mgmt_target import resolve_sockets
from anycastlab.edge.mgmt import MgmtError, call


def render(data: dict[str, Any]) -> str:
    """Human-readable counters, one per line, cache statuses in Cloudflare's order."""
    lines = [f"pop {data.get('pop', '?')}  uptime {data.get('uptime', 0):.0f}s"]
    for key in ("requests", "connections", "connections_open", "origin_fetches", "origin_errors", "coalesced",
                "bytes_out", "bytes_from_origin", "tls_handshakes", "tls_resumptions", "errors", "timeouts",
                "purges"):
        lines.append(f"  {key:<18} {data.get(key, 0)}")
    statuses = data.get("cache_status", {})
    order = ["HIT", "MISS", "EXPIRED", "STALE", "UPDATING", "REVALIDATED", "BYPASS", "DYNAMIC"]
    lines.append("  cache-status       " + "  ".join(f"{s}={statuses.get(s, 0)}" for s in order))
    cache = data.get("cache", {})
    lines.append(f"  cache              entries={cache.get('entries', 0)} bytes={cache.get('bytes', 0)}"
                 f"/{cache.get('max_bytes', 0)} evictions={cache.get('evictions', 0)}")
    return "\n".join(lines)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON counters (no --pop: one object per PoP).")
@click.option("--socket", "socket", type=click.Path(path_type=Path), help="Proxy management socket.")
@click.option("--lab", metavar="NAME", help="Which lab (default: the only one running).")
@click.option("--pop", help="Only this PoP (default: every PoP of the lab).")
def stats(as_json: bool, socket: Path | None, lab: str | None, pop: str | None) -> None:
    """Show the proxies' counters: every PoP of the lab, one PoP (--pop), or one socket (--socket)."""
    targets = resolve_sockets(socket, lab, pop)
    results: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    for name, path in targets:
        try:
            status, data = call(path, "GET", "/stats")
        except MgmtError as exc:
            failed.append(f"{name}: {exc}" if len(targets) > 1 else str(exc))
            continue
        if status != 200 or not isinstance(data, dict):
            failed.append(f"{name}: stats failed ({status}): {data}" if len(targets) > 1
                          else f"stats failed ({status}): {data}")
            continue
        results[name] = data
    if len(targets) == 1:
        if failed:
            raise click.ClickException(failed[0])
        data = next(iter(results.values()))
        click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else render(data))
        return
    if as_json:
        click.echo(json.dumps(results, indent=2, sort_keys=True))
    else:
        click.echo("\n\n".join(render(data) for data in results.values()))
    if failed:
        raise click.ClickException("; ".join(failed))
