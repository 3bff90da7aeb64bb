"""`anycastlab ca`: print the CA certificate path, for `curl --cacert "$(anycastlab ca)" https://...`."""

from __future__ import annotations

import click
from anycastlab.edge.tls import CA_CERT, default_ca_dir, ensure_ca


@click.command()
@click.option("--lab", metavar="NAME",
              help="Which lab (default: the only one running; with no lab running, the standalone CA).")
@click.option("--create", is_flag=True, help="Print the standalone CA, creating it if it does not exist yet.")
def ca(lab: str | None, create: bool) -> None:
    """Print the path of the lab's CA certificate (or the standalone proxy's)."""
    from anycastlab.runtime import state
    from anycastlab.runtime.paths import ca_dir

    if lab is not None and create:
        raise click.UsageError("--create is for the standalone CA; a lab's CA is created by `up`")
    if lab is None and not create:
        running = state.running_labs()
        if len(running) > 1:
            raise click.ClickException(f"several labs are running ({', '.join(running)}): choose one with --lab")
        lab = running[0] if running else None
    if lab is not None:
        path = ca_dir(lab) / CA_CERT
        if not path.exists():
            raise click.ClickException(f"no CA at {path} (is lab {lab!r} up?)")
    else:
        directory = default_ca_dir()
        if create:
            ensure_ca(directory)
        path = directory / CA_CERT
        if not path.exists():
            raise click.ClickException(f"no lab is running and no standalone CA at {path} (create it with --create)")
    click.echo(str(path))
