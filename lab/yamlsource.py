"""YAML loading that remembers where each value came from, so errors can name a line."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
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


def first_problem(doc: Any, exc: ValidationError, root: type[BaseModel] | None = None) -> tuple[int | None, str, str]:
    """The first pydantic error as (line, field, message), worded for a person editing the file.

    An unknown key that looks like a field of the same mapping is reported before that field's "missing"
    (a typo explains both), with the field it probably meant when `root` (the file's model) is given."""
    errors = exc.errors()
    first = errors[0]
    extras = [e for e in errors if e["type"] == "extra_forbidden"]
    if first["type"] == "missing" and extras:
        parent = tuple(first["loc"][:-1])
        first = next((e for e in extras if tuple(e["loc"][:-1]) == parent), first)
    loc = tuple(first["loc"])
    return line_of(doc, loc), field_name(loc), _wording(first, _fields_at(root, loc[:-1]) if root else None)


def _scalar(value: Any) -> str:
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    return repr(value)


def _choices(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


# pydantic's type errors, as what the value must be.
_MUST_BE = {
    "int_parsing": "a whole number", "int_type": "a whole number", "int_from_float": "a whole number",
    "float_parsing": "a number", "float_type": "a number",
    "bool_parsing": "true or false", "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list", "tuple_type": "a list", "set_type": "a list",
    "dict_type": "a mapping (key: value)", "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}
_BOUNDS = {"greater_than_equal": ("at least", "ge"), "greater_than": ("more than", "gt"),
           "less_than_equal": ("at most", "le"), "less_than": ("less than", "lt")}


def _wording(error: Any, fields: list[str] | None) -> str:
    """pydantic's message for a person: our own ValueErrors as written, pydantic's in the lab's words."""
    kind, ctx, given = error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        if not fields:
            return f"unknown field {key!r}"
        close = difflib.get_close_matches(key, fields, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(fields)})"
        return f"unknown field {key!r}{hint}"
    if kind == "missing":
        return "required field is missing"
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind in _MUST_BE:
        return f"must be {_MUST_BE[kind]}, not {_scalar(given)}"
    if kind == "too_short":
        n = ctx.get("min_length", 1)
        return f"needs at least {n} item{'s' if n != 1 else ''}"
    if kind == "too_long":
        n = ctx.get("max_length")
        return f"takes at most {n} item{'s' if n != 1 else ''}"
    if kind == "literal_error":
        expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"must be {_choices(expected)}, not {_scalar(given)}" if expected else "is not one of the choices"
    if kind in _BOUNDS:
        words, key = _BOUNDS[kind]
        return f"must be {words} {ctx.get(key)}, not {_scalar(given)}"
    if kind in ("string_too_short", "string_too_long", "string_pattern_mismatch"):
        return f"{_scalar(given)} is not a valid value here"
    if kind.startswith("ip_v4"):
        what = "an IPv4 prefix like 100.64.0.0/20" if "network" in kind else \
            "an IPv4 address like 198.51.100.10/32" if "interface" in kind else "an IPv4 address"
        return f"must be {what}, not {_scalar(given)}"
    return str(error["msg"]).removeprefix("Value error, ")


def _fields_at(root: type[BaseModel], loc: Sequence[str | int]) -> list[str] | None:
    """The field names of the model that the mapping at `loc` is validated as (None if not a model)."""
    annotation: Any = root
    for part in loc:
        model = _model_of(annotation)
        if isinstance(part, str):
            if model is None or part not in model.model_fields:
                return None
            annotation = model.model_fields[part].annotation
        else:
            annotation = _element_of(annotation)
            if annotation is None:
                return None
    model = _model_of(annotation)
    return list(model.model_fields) if model is not None else None


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):  # Optional[Model], Annotated[Model, ...]
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _element_of(annotation: Any) -> Any:
    """list[X] -> X, tuple[X, ...] -> X, X | None -> the element of X."""
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (list, tuple, set, frozenset) and args:
        return args[0]
    for arg in args:
        if typing.get_origin(arg) in (list, tuple):
            return typing.get_args(arg)[0]
    return None
