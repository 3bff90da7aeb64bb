"""A running lab's plan, as `up` derived it: written once to the run directory and read by every verb.

Rebuilding the plan from the topology on each verb would let an upgrade of the package under a running
lab (a new address allocation, a new default) change the addresses the verbs believe in while the data
plane keeps the old ones. The topology itself is still read from the lab's own copy (it is the user's
input, and validating it again changes nothing it says); the nodes and links come from here.

Reading is the hot path of every verb, so it needs no pydantic (importing it and the topology model is a
quarter of a second): plan.json is decoded by the plan's own dataclass field types (`_decoder`), and the
topology is validated only when something first asks for it (`SavedPlan.topology`), which `nodes` and
`exec` never do. Writing (at `up`, and wherever a verb rewrites the plan) keeps pydantic's encoder.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import threading
import types
import typing
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LabError
from ..plan import Link, Node, Plan
from . import paths

if TYPE_CHECKING:
    from ..model import Topology


@cache
def _adapters() -> tuple[Any, Any]:
    from pydantic import TypeAdapter

    return TypeAdapter(dict[str, Node]), TypeAdapter(list[Link])


def save(directory: Path, plan: Plan) -> None:
    nodes, links = _adapters()
    facts = json.dumps({"anycast": str(plan.anycast), "asn": plan.asn, "multipath": plan.multipath}).encode()
    body = (b'{"nodes": ' + nodes.dump_json(plan.nodes) + b', "links": ' + links.dump_json(plan.links)
            + b', "facts": ' + facts + b"}\n")
    paths.replace_file(paths.plan_file(directory), body)


def load(directory: Path) -> Plan:
    """The lab's plan; a lab started before plan.json existed gets its plan rebuilt from its topology copy."""
    file = paths.plan_file(directory)
    try:
        data = json.loads(file.read_bytes())
    except FileNotFoundError:
        from ..model import load_topology
        from ..plan import build_plan

        return build_plan(load_topology(paths.topology_file(directory)))
    except ValueError as exc:
        raise LabError(f"{file}: not JSON ({exc})") from None
    try:
        nodes = _at(".nodes", _decoder(dict[str, Node]), _field(data, "nodes"))
        links = _at(".links", _decoder(list[Link]), _field(data, "links"))
        facts = _at(".facts", _facts, data["facts"]) if "facts" in data else None  # older files: the topology's
    except _Bad as exc:
        raise LabError(f"{file}: {exc.where()}: {exc.message}") from None
    return SavedPlan(None, nodes, links, topology_file=paths.topology_file(directory), facts=facts)


def _facts(value: Any) -> tuple[ipaddress.IPv4Interface, int, bool]:
    data = _typed(value, dict)
    return (_at(".anycast", _address(ipaddress.IPv4Interface), _field(data, "anycast")),
            _at(".asn", lambda v: _typed(v, int), _field(data, "asn")),
            _at(".multipath", lambda v: _typed(v, bool), _field(data, "multipath")))


class SavedPlan(Plan):
    """A plan read from plan.json, whose topology is the lab's own copy, validated on first use (once,
    whichever thread asks first). Equal to a Plan with the same topology, nodes and links."""

    def __init__(self, topology: Topology | None, nodes: dict[str, Node], links: list[Link],
                 topology_file: Path | None = None,
                 facts: tuple[ipaddress.IPv4Interface, int, bool] | None = None) -> None:
        if topology is None and topology_file is None:
            raise ValueError("a SavedPlan needs its topology or the file to read it from")
        self._facts = facts
        self._topology = topology
        self._topology_file = topology_file
        self._lock = threading.Lock()
        self.nodes = nodes
        self.links = links

    @property
    def topology(self) -> Topology:
        with self._lock:
            if self._topology is None:
                from ..model import load_topology

                assert self._topology_file is not None
                self._topology = load_topology(self._topology_file)
            return self._topology

    @topology.setter
    def topology(self, value: Topology) -> None:
        self._topology = value

    @property
    def anycast(self) -> ipaddress.IPv4Interface:
        return self._facts[0] if self._facts is not None else self.topology.anycast

    @property
    def asn(self) -> int:
        return self._facts[1] if self._facts is not None else self.topology.asn

    @property
    def multipath(self) -> bool:
        return self._facts[2] if self._facts is not None else self.topology.bgp.multipath

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Plan):
            return NotImplemented
        return (self.nodes, self.links, self.topology) == (other.nodes, other.links, other.topology)

    __hash__ = None  # type: ignore[assignment]  # mutable, as Plan is


# -- decoding the JSON pydantic wrote, by the dataclasses' own field types ---------------------------------

Decode = Callable[[Any], Any]


class _Bad(Exception):
    """A value of plan.json that does not fit its field; `path` is where, outermost first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def where(self) -> str:
        return "".join(self.path).lstrip(".") or "(top)"


def _field(data: Any, key: str) -> Any:
    if key not in _typed(data, dict):
        raise _missing(key)
    return data[key]


def _missing(key: str) -> _Bad:
    bad = _Bad("missing")
    bad.path.insert(0, f".{key}")
    return bad


def _at(step: str, decode: Decode, value: Any) -> Any:
    try:
        return decode(value)
    except _Bad as exc:
        exc.path.insert(0, step)
        raise


def _typed(value: Any, kind: type[Any]) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _Bad(f"expected {kind.__name__}, got {value!r}")
    return value


def _address(kind: type[Any]) -> Decode:
    def decode(value: Any) -> Any:
        try:
            return kind(_typed(value, str))
        except ValueError as exc:
            raise _Bad(str(exc)) from None
    return decode


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Bad(f"expected a number, got {value!r}")
    return float(value)


def _one_of(allowed: tuple[Any, ...]) -> Decode:
    def decode(value: Any) -> Any:
        if value not in allowed:
            raise _Bad(f"{value!r} is not one of {', '.join(map(repr, allowed))}")
        return value
    return decode


def _optional(inner: Decode) -> Decode:
    return lambda value: None if value is None else inner(value)


def _list(item: Decode) -> Decode:
    return lambda value: [_at(f"[{i}]", item, x) for i, x in enumerate(_typed(value, list))]


def _dict(item: Decode) -> Decode:
    return lambda value: {key: _at(f".{key}", item, x) for key, x in _typed(value, dict).items()}


def _dataclass(cls: type[Any]) -> Decode:
    """Fields absent from the file take their defaults (files written before a field was added); fields
    the file has and the class lacks are ignored, as pydantic ignored them."""
    hints = typing.get_type_hints(cls)
    fields = [f for f in dataclasses.fields(cls) if f.init]
    decoders = {f.name: _decoder(hints[f.name]) for f in fields}
    required = [f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]

    def decode(value: Any) -> Any:
        data = _typed(value, dict)
        for name in required:
            if name not in data:
                raise _missing(name)
        return cls(**{name: _at(f".{name}", decoders[name], data[name]) for name in decoders if name in data})
    return decode


_SCALARS: dict[Any, Decode] = {
    str: lambda value: _typed(value, str),
    int: lambda value: _typed(value, int),
    bool: lambda value: _typed(value, bool),
    float: _number,
    ipaddress.IPv4Address: _address(ipaddress.IPv4Address),
    ipaddress.IPv4Interface: _address(ipaddress.IPv4Interface),
    ipaddress.IPv4Network: _address(ipaddress.IPv4Network),
}


@cache
def _decoder(kind: Any) -> Decode:
    """How to turn what pydantic's encoder wrote for `kind` back into it. Only the types the plan uses: a
    field of another type added to the plan fails here at once (and in tests/unit/test_planfile_reader.py)."""
    if kind in _SCALARS:
        return _SCALARS[kind]
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is typing.Literal:
        return _one_of(args)
    if origin in (types.UnionType, typing.Union) and len(args) == 2 and type(None) in args:
        return _optional(_decoder(next(a for a in args if a is not type(None))))
    if origin is list and len(args) == 1:
        return _list(_decoder(args[0]))
    if origin is dict and args and args[0] is str:
        return _dict(_decoder(args[1]))
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        return _dataclass(kind)
    raise TypeError(f"plan.json cannot hold a {kind!r}: teach runtime/planfile.py's _decoder the type")
