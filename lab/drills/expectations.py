"""A drill's expectations, checked: `catchment` when its step runs, the others over the whole drill.

Each declared expectation gives exactly one result (one JUnit test case); `catchment` gives one per client.
A drill that stops early reports the ones it never reached as not evaluated, so none silently vanishes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .analysis import Timeline
from .model import Drill, Expect

DURATIONS = ("max_outage", "convergence_p95", "convergence_max")


@dataclass
class ExpectationResult:
    name: str
    expected: Any
    actual: Any
    passed: bool | None  # None: not measured (no HTTP load in this lab) or not reached (the drill stopped early)
    message: str
    step: int | None = None  # the `expect` step's index; None for the drill's top-level `expect`


def declared(drill: Drill) -> list[tuple[int | None, str, Any]]:
    """(step, name, expected) for every expectation the drill file states: steps first, then the top level."""
    out: list[tuple[int | None, str, Any]] = []
    sources: list[tuple[int | None, Expect]] = [(i, s.expect) for i, s in enumerate(drill.steps) if s.expect]
    for step, expect in [*sources, (None, drill.expect)]:
        for name, value in expect.items():
            if name == "catchment":
                out += [(step, f"catchment {client}", pop) for client, pop in value.items()]
            else:
                out.append((step, name, value))
    return out


def catchment(expect: Expect, current: dict[str, str | None], step: int) -> list[ExpectationResult]:
    """Where each named client is now (its last answered probe), against where the step expects it."""
    out = []
    for client, pop in (expect.catchment or {}).items():
        actual = current.get(client)
        out.append(ExpectationResult(f"catchment {client}", pop, actual, actual == pop,
                                     f"{client} is on {actual or 'no PoP (lost)'}, expected {pop}", step))
    return out


def _allowed(name: str, value: Any) -> str:
    return f"allowed {value:g}s" if name in DURATIONS else f"allowed {value}"


def whole_drill(drill: Drill, timeline: Timeline, lost_probes: int, http: dict[str, Any]) -> list[ExpectationResult]:
    """Every expectation other than `catchment`, against what the whole drill measured."""
    conv = timeline.convergence()
    worst = max(timeline.clients, key=lambda c: c.outage_s, default=None)
    outage = worst.outage_s if worst is not None else 0.0
    p95, slowest, failed = conv["p95"] or 0.0, conv["max"] or 0.0, http.get("failed")
    measured: dict[str, tuple[Any, str]] = {
        "max_outage": (outage, f"longest outage {outage:.3f}s" + (f" ({worst.name})" if worst and outage else "")),
        "max_lost_probes": (lost_probes, f"{lost_probes} probes lost"),
        "convergence_p95": (p95, f"p95 convergence {p95:.3f}s over {conv['n']} affected "
                                 f"client{'' if conv['n'] == 1 else 's'}"),
        "convergence_max": (slowest, f"max convergence {slowest:.3f}s"),
        "max_http_errors": (failed, f"{failed} HTTP error{'' if failed == 1 else 's'}"),
    }
    out = []
    for step, name, expected in declared(drill):
        if name.startswith("catchment "):
            continue
        actual, said = measured[name]
        if actual is None:
            out.append(ExpectationResult(name, expected, None, None, f"not measured: {http.get('note')}", step))
        else:
            out.append(ExpectationResult(name, expected, actual, actual <= expected,
                                         f"{said}, {_allowed(name, expected)}", step))
    return out


def not_reached(drill: Drill, done: list[ExpectationResult], why: str) -> list[ExpectationResult]:
    """The declared expectations missing from `done`, each marked not evaluated because of `why`."""
    seen = {(e.step, e.name) for e in done}
    return [ExpectationResult(name, expected, None, None, f"not evaluated: the drill stopped early ({why})", step)
            for step, name, expected in declared(drill) if (step, name) not in seen]
