"""Property-based fuzzing of the topology and drill loaders: any input ends as a valid model or as one
TopologyError (`file:line: field: message`, in the lab's words), never another exception.

Bounded here (`make test`); `make fuzz` runs many more examples (HYPOTHESIS_PROFILE=fuzz)."""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import Any

from anycastlab.drills.model import load_drill
from anycastlab.errors import TopologyError
from anycastlab.model import load_topology
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

settings.register_profile("default", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.register_profile("fuzz", max_examples=3000, deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

TOPOLOGY: dict[str, Any] = {
    "name": "f", "bgp": {"profile": "default", "multipath": False},
    "latency": {"from_geography": False, "per_hop_ms": 0.1},
    "transits": [{"name": "ta", "asn": 64510, "peers": ["tb"]}, {"name": "tb", "asn": 64511}],
    "pops": [{"name": "ams", "upstreams": ["ta"]}, {"name": "ord", "upstreams": ["tb"], "peers": ["ispa"]}],
    "eyeballs": [{"name": "ispa", "asn": 64520, "upstreams": ["ta"], "clients": 2}],
    "origin": {"upstreams": ["tb"], "pops": ["ord"]},
    "backbone": [["ams", "ord"]],
    "links": [{"between": ["ams", "ta"], "delay": "5ms"}],
}
DRILL: dict[str, Any] = {
    "name": "d", "topology": "small",
    "steps": [{"fail": {"pop": "ams", "mode": "withdraw"}}, {"wait": {"until": "stable", "timeout": "15s"}},
              {"expect": {"catchment": {"ispa-c1": "ord"}}}, {"restore": "all"}, {"wait": "2s"}],
    "expect": {"convergence_p95": "1s", "max_lost_probes": 20},
}
PYDANTIC_WORDS = ("Input should", "Field required", "validation error", "Extra inputs", "type=", "pydantic")

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["5", "5ms", "2m", "ta", "ams", "-1", "1e9", "", "0"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=6)


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += paths(v, (*prefix, i))
    return out


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.sampled_from(paths(doc)[1:]))
        parent: Any = doc
        for part in where[:-1]:
            parent = parent[part]
        key = where[-1]
        action = draw(st.sampled_from(["replace", "delete", "rename", "add"]))
        if action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif action == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from([str(key) + "s", str(key)[:-1] or "x", str(key).upper(), "colour"]))] = \
                parent.pop(key)
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=8))] = draw(values)
        elif isinstance(parent, list):
            parent.append(draw(values))
    return doc


def dump(doc: Any) -> str:
    out = io.StringIO()
    YAML(typ="safe").dump(doc, out)
    return out.getvalue()


def check(path: Path, load: Any) -> None:
    try:
        load(path)
    except TopologyError as err:  # DrillFileError is one
        assert err.message and str(err).startswith(str(path)), str(err)
        assert not any(w in err.message for w in PYDANTIC_WORDS), err.message
        if err.line is not None:
            assert str(err).startswith(f"{path}:{err.line}: ")


@given(mutated(TOPOLOGY))
def test_any_mutated_topology_loads_or_fails_with_one_clear_error(tmp_path_factory: Any, doc: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("topo") / "t.yaml"
    path.write_text(dump(doc))
    check(path, load_topology)


@given(mutated(DRILL))
def test_any_mutated_drill_loads_or_fails_with_one_clear_error(tmp_path_factory: Any, doc: dict[str, Any]) -> None:
    path = tmp_path_factory.mktemp("drill") / "d.yaml"
    path.write_text(dump(doc))
    check(path, load_drill)


@given(st.text(max_size=200))
def test_any_text_loads_or_fails_with_one_clear_error(tmp_path_factory: Any, text: str) -> None:
    folder = tmp_path_factory.mktemp("text")
    (folder / "t.yaml").write_text(text)
    check(folder / "t.yaml", load_topology)
    check(folder / "t.yaml", load_drill)
