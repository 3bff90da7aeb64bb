"""YAML loading that remembers where each value came from, so errors can name a line."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from .errors import TopologyError

Loc = Sequence[str | int]


def load_yaml(path: Path) -> Any:
    """Parse a YAML file into ruamel's position-carrying maps and lists."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise TopologyError(path, None, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise TopologyError(path, line, "", f"invalid YAML: {problem}") from exc
    except Exception as exc:  # ruamel raises a few unmarked errors (duplicate keys, bad anchors)
        raise TopologyError(path, None, "", f"invalid YAML: {exc}") from exc


def line_of(doc: Any, loc: Loc) -> int | None:
    """The 1-based line of the deepest part of `loc` that exists in `doc`."""
    line: int | None = None
    node = doc
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(doc, CommentedMap | CommentedSeq):
        line = doc.lc.line + 1
    return line


def field_name(loc: Loc) -> str:
    """`('pops', 2, 'upstreams', 0)` -> `pops[2].upstreams[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def first_problem(doc: Any, exc: ValidationError) -> tuple[int | None, str, str]:
    """The first pydantic error as (line, field, message), worded for a person editing the file."""
    first = exc.errors()[0]
    loc = tuple(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown field"
    elif first["type"] == "missing":
        message = "required field is missing"
    return line_of(doc, loc), field_name(loc), message
