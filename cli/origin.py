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
def origin(listen: tuple[str, ...], name: str, static_dir: Path | None, static_max_age: int, slow_ms: int,
           control_socket: Path | None) -> None:
    """Run an origin server until interrupted."""
    try:
        addrs = [parse_addr(v) for v in listen]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    config = OriginConfig(listen=addrs, name=name, static_dir=static_dir, static_max_age=static_max_age,
                          slow_ms=slow_ms, control_socket=control_socket)

    def ready(server: OriginServer) -> None:
        for host, port in server.bound:
            click.echo(f"anycastlab origin {name}: listening http://{host}:{port}")
        sys.stdout.flush()

    try:
        run_until_signal(run_origin(config, ready))
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
