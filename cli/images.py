"""`anycastlab images build|list`: the node images the docker runtime runs (library: anycastlab.images)."""

from __future__ import annotations

import click
from anycastlab.images import catalog

from .output import emit_json, reports_errors, table


@click.group()
def images() -> None:
    """Build and list the node images (router, pop, origin, client) for the docker runtime, and the runner
    (the whole tool in one privileged container: `anycastlab images build runner`)."""


def _stderr(line: str) -> None:
    click.echo(line, err=True)


@images.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--no-cache", is_flag=True, help="Rebuild the named images (the node images by default) from scratch.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout (progress stays on stderr).")
@click.option("-v", "--verbose", is_flag=True, help="Show every line of build output, not only the steps.")
@reports_errors
def build(names: tuple[str, ...], no_cache: bool, as_json: bool, verbose: bool) -> None:
    """Build NAME... (default: router, pop, origin, client; `runner` only when named), and what they are
    built FROM, unless their inputs' tag exists.

    Tags are anycastlab/NAME:HASH, a hash of everything the build reads (Dockerfile, sources, pinned
    dependency versions, base image), so a second build with nothing changed does nothing. If
    debian:bookworm-slim is missing and cannot be pulled, it is built from Debian's packages (mmdebstrap).
    """
    from anycastlab.images import build as builder

    for name in names:
        catalog.spec(name)  # an unknown name fails before the daemon is asked anything
    report = builder.build(list(names) or None, no_cache=no_cache, progress=_stderr, verbose=verbose)
    if as_json:
        emit_json(report.as_dict())
        return
    if report.base.source != "present":
        click.echo(report.base.message())
    for result in report.images:
        click.echo(result.line())


def _size(size: int | None) -> str:
    return "-" if size is None else f"{size / 1e6:.0f} MB"


@images.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@reports_errors
def list_(as_json: bool) -> None:
    """Each image with the tag the current source would build, whether the daemon has it, size, created."""
    statuses = catalog.status()
    if as_json:
        emit_json([s.as_dict() for s in statuses])
        return
    rows = []
    for s in statuses:
        state = "present" if s.present else "missing"
        if s.older_builds:
            state += f" ({s.older_builds} older build{'s' if s.older_builds > 1 else ''})"
        rows.append((s.name, s.tag, state, _size(s.size), (s.created or "-")[:19].replace("T", " ")))
    click.echo(table(("image", "tag", "state", "size", "created"), rows))
    missing = [s.name for s in statuses if not s.present]
    if missing:
        click.echo(f"build the missing ones: anycastlab images build {' '.join(missing)}", err=True)
