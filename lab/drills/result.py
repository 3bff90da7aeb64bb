"""What a drill measured and did: its steps, probes, HTTP records, expectations; report.py renders it.

Its own module so that the runner (which fills it) and the reports (which read it) don't import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import http_load, logs
from .analysis import Probe, Timeline
from .expectations import ExpectationResult
from .model import Drill


@dataclass
class StepResult:
    index: int
    kind: str
    label: str
    t: float  # seconds from the fault (negative: before it)
    duration_s: float
    ok: bool
    detail: str = ""


@dataclass
class DrillResult:
    drill: Drill
    lab: str
    started: float
    fault_t: float | None = None
    restore_t: float | None = None
    finished: float | None = None
    complete: bool = False
    error: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    expectations: list[ExpectationResult] = field(default_factory=list)
    timeline: Timeline = field(default_factory=Timeline)
    records: list[Probe] = field(default_factory=list)
    events: list[logs.LogEvent] = field(default_factory=list)
    injected: list[dict[str, Any]] = field(default_factory=list)
    probe_source: str = ""
    http: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)
    http_records: list[http_load.HttpRecord] = field(default_factory=list)
    restore_failures: list[str] = field(default_factory=list)  # faults whose restore failed after an error
    pops: list[str] = field(default_factory=list)  # the topology's PoPs in plan order: their colours

    @property
    def passed(self) -> bool:
        return self.complete and all(e.passed is not False for e in self.expectations)

    @property
    def t0(self) -> float:
        return self.fault_t if self.fault_t is not None else self.started

    @property
    def lost_probes(self) -> int:
        return sum(c.lost_probes for c in self.timeline.clients)

    def to_json(self) -> dict[str, Any]:
        t0 = self.t0
        conv = self.timeline.convergence()
        return {
            "drill": self.drill.name,
            "description": self.drill.description,
            "source": self.drill.source,
            "lab": self.lab,
            "passed": self.passed,
            "complete": self.complete,
            "error": self.error,
            "restore_failures": self.restore_failures,
            "started_unix": round(self.started, 3),
            "fault_unix": None if self.fault_t is None else round(self.fault_t, 3),
            "restore_s": None if self.restore_t is None else round(self.restore_t - t0, 3),
            "faults": self.injected,
            "probes": {"source": self.probe_source, "rate_hz": self.drill.probes.rate_hz,
                       "timeout_s": self.drill.probes.timeout, "sent": len(self.records),
                       "lost": sum(1 for r in self.records if r.pop is None)},
            "steps": [vars(s) for s in self.steps],
            "expectations": [vars(e) for e in self.expectations],
            "clients": [c.to_json() for c in self.timeline.clients],
            "affected_clients": len(self.timeline.affected),
            "lost_probes": self.lost_probes,
            "max_outage_s": max((c.outage_s for c in self.timeline.clients), default=0.0),
            "convergence_s": conv,
            "restore_convergence_s": self.timeline.restore_convergence(),
            "http": self.http,
            "cache": self.cache,
            "control_plane": [e.to_json(t0) for e in self.events],
        }
