"""`anycastlab proxy`: run one edge proxy (standalone, or as a lab PoP's proxy) until Ctrl-C."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from anycastlab.edge.proxy import EdgeProxy, ProxyConfig, run_proxy
from anycastlab.edge.runner import parse_addr, parse_size, run_until_signal


def _addrs(values: tuple[str, ...]) -> list[tuple[str, int]]:
    try:
        return [parse_addr(v) for v in values]
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@click.command()
@click.option("--listen", "listen", multiple=True, metavar="ADDR:PORT",
              help="Plain HTTP listener (repeatable). With --tls these serve HTTPS instead.")
@click.option("--tls-listen", multiple=True, metavar="ADDR:PORT", help="HTTPS listener (repeatable).")
@click.option("--tls", "tls_flag", is_flag=True, help="Serve HTTPS on the --listen addresses.")
@click.option("--origin", required=True, metavar="URL", help="Origin base URL, e.g. http://10.0.0.1:8080")
@click.option("--pop", default="LAB", show_default=True, help="PoP name for cf-pop, cf-ray and colo=.")
@click.option("--mgmt-socket", type=click.Path(path_type=Path), help="Unix socket for purge/stats/health.")
@click.option("--ca-dir", type=click.Path(path_type=Path), help="CA directory (created if missing).")
@click.option("--hostname", "hostnames", multiple=True, help="Hostname to issue a certificate for.")
@click.option("--cache-size", default="256M", show_default=True, help="Cache memory budget.")
@click.option("--max-object-size", default="16M", show_default=True, help="Largest cached object.")
@click.option("--origin-timeout", default=30.0, show_default=True, help="Origin read timeout, seconds.")
@click.option("--header-timeout", default=10.0, show_default=True,
              help="Seconds a client has to send a request head (slow clients get 408).")
@click.option("--keepalive-timeout", default=30.0, show_default=True, help="Idle keep-alive timeout, seconds.")
@click.option("--no-preserve-host", is_flag=True, help="Send the origin's own Host instead of the client's.")
@click.option("-v", "--verbose", is_flag=True)
def proxy(
    listen: tuple[str, ...], tls_listen: tuple[str, ...], tls_flag: bool, origin: str, pop: str,
    mgmt_socket: Path | None, ca_dir: Path | None, hostnames: tuple[str, ...], cache_size: str,
    max_object_size: str, origin_timeout: float, header_timeout: float, keepalive_timeout: float,
    no_preserve_host: bool, verbose: bool,
) -> None:
    """Run an edge proxy in front of ORIGIN until interrupted."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    plain = _addrs(listen) if listen else ([] if tls_listen else [("127.0.0.1", 8080)])
    secure = _addrs(tls_listen)
    if tls_flag:
        plain, secure = [], secure + plain
    tls = None
    ca_path: Path | None = None
    if secure:
        from anycastlab.edge.tls import build_sni_contexts, default_ca_dir, ensure_ca

        ca = ensure_ca(ca_dir or default_ca_dir())
        ca_path = ca.cert_path
        addresses = sorted({host for host, _ in secure if host not in ("0.0.0.0", "::", "")} | {"127.0.0.1"})
        tls = build_sni_contexts(ca, list(hostnames) or ["localhost"], addresses)
    config = ProxyConfig(
        origin=origin, pop=pop, listen=plain, tls_listen=secure, tls=tls, mgmt_socket=mgmt_socket,
        cache_bytes=parse_size(cache_size), max_object_bytes=parse_size(max_object_size),
        origin_read_timeout=origin_timeout, preserve_host=not no_preserve_host,
        header_timeout=header_timeout, keepalive_timeout=keepalive_timeout,
    )

    def ready(p: EdgeProxy) -> None:
        for scheme, host, port in p.bound:
            click.echo(f"anycastlab proxy {pop}: listening {scheme}://{host}:{port}")
        if mgmt_socket is not None:
            click.echo(f"anycastlab proxy {pop}: management socket {mgmt_socket}")
        if ca_path is not None:
            click.echo(f"anycastlab proxy {pop}: CA certificate {ca_path} (curl --cacert)")
        sys.stdout.flush()

    try:
        run_until_signal(run_proxy(config, ready))
    except OSError as exc:
        raise click.ClickException(str(exc)) from exc
