"""`anycastlab ca`: print the CA certificate path, for `curl --cacert "$(anycastlab ca)" https://...`."""

from __future__ import annotations

import click
from anycastlab.edge.tls import CA_CERT, default_ca_dir, ensure_ca


@click.command()
@click.option("--lab", help="The lab whose CA to print (its run directory); default: the standalone CA.")
@click.option("--create", is_flag=True, help="Create the standalone CA if it does not exist yet.")
def ca(lab: str | None, create: bool) -> None:
    """Print the path of the CA certificate."""
    if lab is not None:
        from anycastlab.runtime.paths import ca_dir

        directory = ca_dir(lab)
    else:
        directory = default_ca_dir()
        if create:
            ensure_ca(directory)
    path = directory / CA_CERT
    if not path.exists():
        raise click.ClickException(f"no CA at {path} (is the lab up? standalone: use --create)")
    click.echo(str(path))
