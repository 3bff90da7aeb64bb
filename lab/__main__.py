"""`python -m anycastlab ...` is the same as the `anycastlab` command (the lab starts its services this way)."""

from anycastlab.cli.main import cli

cli()
