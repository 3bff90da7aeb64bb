"""`anycastlab web`: serve a live, read-only page of a running lab (map, catchments, PoPs, drills) and print
its URL. Loopback unless --listen says otherwise; Ctrl-C (or SIGTERM, SIGHUP) stops it, exit status 128 +
the signal, as the other long verbs."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import sys

import click
from anycastlab.lifecycle import Lab

from .output import lab_option, reports_errors


def parse_listen(value: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets), or a bare PORT on 127.0.0.1."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if host != "localhost":
            raise click.BadParameter(f"{value!r}: the host must be an IP address (or localhost)") from None
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r}: the port must be a number from 0 to 65535") from None
    return host, int(port)


@click.command()
@lab_option
@click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
              callback=lambda _ctx, _param, value: parse_listen(value),
              help="Where to serve (port 0: any free port). Loopback by default; the page is read-only.")
@click.option("--json", "as_json", is_flag=True, help="Print the URL as one JSON line once serving.")
@reports_errors
def web(lab_name: str | None, listen: tuple[str, int], as_json: bool) -> None:
    """Serve a live page of the lab: every node on a world map, each client coloured by the PoP it is measured
    on, each PoP's announcement, proxy health and load, BGP sessions down, and a drill as it happens."""
    host, port = listen
    from anycastlab.web import server

    missing = server.missing_vendor_files()
    if missing:
        raise click.ClickException(f"the map's assets are not installed ({', '.join(missing)} missing in "
                                   f"{server.STATIC / 'vendor'}): run `make web-assets` (npm)")
    lab = Lab.attach(lab_name).running
    try:
        exposed = not ipaddress.ip_address(host if host != "localhost" else "127.0.0.1").is_loopback
    except ValueError:
        exposed = True

    def ready(url: str) -> None:
        if as_json:
            click.echo(json.dumps({"lab": lab.name, "url": url, "listen": f"{host}:{port}"}))
        else:
            click.echo(f"serving lab {lab.name} at {url}  (read-only; Ctrl-C stops)")
        if exposed:
            click.echo(f"warning: listening on {host}, not loopback: anyone who reaches it sees the lab", err=True)
        sys.stdout.flush()

    try:
        status = asyncio.run(server.serve(lab, host, port, ready))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sys.exit(status)
