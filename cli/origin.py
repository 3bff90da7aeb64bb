"""`anycastlab origin`: run the lab's origin HTTP server (static, dynamic, slow, fault injection)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from anycastlab.edge.origin import OriginConfig, OriginServer, run_origin
from anycastlab.edge.runner import parse_addr, run_until_signal


@click.command()
@click.option("--listen", "listen", multiple=True, default=("127.0.0.1:8000",), show_default=True,
              metavar="ADDR:PORT", help="Listener (repeatable).")
@click.option("--name", default="origin", show_default=True, help="Name reported in X-Origin and bodies.")
@click.option("--static-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Serve files from here under /static/ (built-in assets otherwise).")
@click.option("--static-max-age", default=3600, show_default=True, help="max-age of static assets.")
@click.option("--slow-ms", default=2000, show_default=True, help="Default delay of /slow.")
@click.option("--control-socket", type=click.Path(path_type=Path),
              help="Unix socket for fault injection (POST /mode) and stats.")
@click.option("--tls-listen", multiple=True, metavar="ADDR:PORT", help="HTTPS listener (repeatable).")
@click.option("--ca-dir", type=click.Path(path_type=Path), help="CA directory for the HTTPS certificate.")
@click.option("--hostname", "hostnames", multiple=True, help="Hostname the HTTPS certificate covers.")
def origin(listen: tuple[str, ...], name: str, static_dir: Path | None, static_max_age: int, slow_ms: int,
           control_socket: Path | None, tls_listen: tuple[str, ...], ca_dir: Path | None,
           hostnames: tuple[str, ...]) -> None:
    """Run an origin server until interrupted."""
    try:
        addrs = [parse_addr(v) for v in listen]
        secure = [parse_addr(v) for v in tls_listen]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    tls = None
    if secure:
        from anycastlab.edge.tls import default_ca_dir, ensure_ca, issue_leaf, server_context

        ca = ensure_ca(ca_dir or default_ca_dir())
        tls = server_context(issue_leaf(ca, [*hostnames, *sorted({h for h, _ in secure})] or ["localhost"]))
    config = OriginConfig(listen=addrs, name=name, static_dir=static_dir, static_max_age=static_max_age,
                          slow_ms=slow_ms, control_socket=control_socket, tls_listen=secure, tls=tls)

    def ready(server: OriginServer) -> None:
        for host, port in server.bound:
            scheme = "https" if (host, port) in server.config.tls_listen else "http"
            click.echo(f"anycastlab origin {name}: listening {scheme}://{host}:{port}")
        sys.stdout.flush()

    try:
        run_until_signal(run_origin(config, ready))
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
