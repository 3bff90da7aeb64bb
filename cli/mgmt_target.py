"""Shared option handling for verbs that talk to a proxy's management socket (purge, stats)."""

from __future__ import annotations

from pathlib import Path

import click

MGMT_SOCKET_NAME = "proxy.sock"


def resolve_socket(socket: Path | None, lab: str | None, pop: str | None) -> Path:
    """``--socket PATH`` wins; otherwise ``--lab NAME --pop P`` names ``pop_dir(lab, pop)/proxy.sock``."""
    if socket is not None:
        return socket
    if lab and pop:
        from anycastlab.runtime.paths import pop_dir

        return pop_dir(lab, pop) / MGMT_SOCKET_NAME
    raise click.UsageError("say which proxy: --socket PATH, or --lab NAME --pop POP")
