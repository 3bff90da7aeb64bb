"""Shared option handling for verbs that talk to proxies' management sockets (purge, stats)."""

from __future__ import annotations

from pathlib import Path

import click

MGMT_SOCKET_NAME = "proxy.sock"


def resolve_sockets(socket: Path | None, lab: str | None, pop: str | None) -> list[tuple[str, Path]]:
    """(PoP, socket) pairs to act on: ``--socket PATH`` alone; otherwise ``--pop P`` of the lab (``--lab NAME``,
    default the only lab running), or every PoP of that lab when ``--pop`` is not given."""
    if socket is not None:
        if lab is not None or pop is not None:
            raise click.UsageError("give either --socket PATH, or --lab NAME / --pop POP, not both")
        return [(str(socket), socket)]
    from anycastlab.errors import LabError
    from anycastlab.runtime import paths, state

    try:
        name = state.resolve_name(lab)
    except LabError as exc:
        raise click.ClickException(str(exc.args[0] if exc.args else exc)) from None
    if name not in state.running_labs():
        raise click.ClickException(f"lab {name!r} is not running")
    pops_root = paths.lab_dir(name) / "pops"
    known = sorted(d.name for d in pops_root.iterdir() if d.is_dir()) if pops_root.is_dir() else []
    if pop is None:
        if not known:
            raise click.ClickException(f"lab {name!r} has no PoP proxies")
        return [(p, paths.pop_dir(name, p) / MGMT_SOCKET_NAME) for p in known]
    if pop not in known:
        raise click.ClickException(f"lab {name!r} has no PoP {pop!r} (known: {', '.join(known) or 'none'})")
    return [(pop, paths.pop_dir(name, pop) / MGMT_SOCKET_NAME)]
