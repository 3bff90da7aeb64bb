"""Shared rendering for the verbs: errors as one line, JSON for scripts, aligned tables for people."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import click
from anycastlab.errors import LabError

P = ParamSpec("P")
R = TypeVar("R")
FC = TypeVar("FC", bound=Callable[..., Any])


def reports_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn a LabError into one clear line on stderr and exit status 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LabError as exc:
            click.echo(f"error: {exc.args[0] if exc.args else exc}", err=True)
            if len(exc.args) > 1 and exc.args[1]:
                for line in exc.args[1][:40]:
                    click.echo(f"  - {line}", err=True)
            sys.exit(1)

    return wrapper


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


lab_option = click.option("--lab", "lab_name", default=None, metavar="NAME",
                          help="Which lab (default: the only one running).")


def runtime_option(what: str) -> Callable[[FC], FC]:
    """--runtime for a verb that boots labs itself (`what` they are), named as `up --runtime` names it."""
    from anycastlab.runtime.backends import NAMES

    return click.option("--runtime", type=click.Choice(NAMES), default=None,
                        help=f"Runtime of {what} (default: the topology's `runtime:`, else netns).")
