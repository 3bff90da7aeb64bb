"""The drill file model: what a user writes in topologies/drills/*.yaml, validated.

    name: withdraw-fra
    topology: default
    steps:
      - fail: {pop: fra, mode: withdraw}
      - wait: {until: stable, timeout: 15s}
      - expect: {catchment: {dtag-c1: iad}}
      - restore: {}
      - wait: {until: stable}
    expect: {convergence_p95: 1s, max_lost_probes: 20}

A `move: {client: dtag-c1, to: comcast}` step re-homes a client to another ISP (a travelling user); the drill
moves it back at its end, or at `restore: {client: dtag-c1}` (`restore: {}` puts back everything).

Errors name the file, the line and the field, as topology errors do.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from .. import durations
from ..errors import TopologyError
from ..yamlsource import first_problem, line_of, load_yaml

Mode = Literal["withdraw", "graceful-shutdown", "session-down", "kill-bgpd", "crash", "link-down", "blackhole",
               "proxy-crash", "origin-down"]
POP_MODES = {"withdraw", "graceful-shutdown", "session-down", "kill-bgpd", "crash", "blackhole", "proxy-crash"}
MAX_DURATION_S = 600.0
# The probes and the HTTP load stop by themselves after MAX_DRILL_S; a drill's waits, baseline and settle
# may take at most MAX_PLANNED_S of it, which leaves the rest for injecting, restoring and warming caches.
MAX_DRILL_S = 900.0
MAX_PLANNED_S = 600.0


class DrillFileError(TopologyError):
    """A drill file is wrong: names the file, the line and the field."""


def parse_duration(value: Any) -> float:
    """`1.5s`, `200ms`, `500us`, `2m` (the lab's one grammar, lab/durations.py) -> seconds; a bare number
    is refused (it used to mean seconds here and milliseconds in links)."""
    seconds = durations.seconds(value, "a duration")
    if not 0 <= seconds <= MAX_DURATION_S:
        raise ValueError(f"{value!r} is out of range (0 to {MAX_DURATION_S:.0f} s)")
    return seconds


Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fault(Strict):
    mode: Mode
    pop: str | None = None
    link: tuple[str, str] | None = Field(default=None, description="link-down: the link's two ends")
    neighbors: list[str] | None = Field(default=None, description="session-down: which peers (default: all)")

    @model_validator(mode="after")
    def _target(self) -> Fault:
        if self.mode == "link-down":
            if self.link is None:
                raise ValueError("link-down needs `link: [node, node]`")
        elif self.mode in POP_MODES and self.pop is None:
            raise ValueError(f"{self.mode} needs `pop: NAME`")
        if self.neighbors is not None and self.mode != "session-down":
            raise ValueError("`neighbors` only applies to session-down")
        return self

    @property
    def label(self) -> str:
        target = self.pop if self.link is None else f"{self.link[0]}-{self.link[1]}"
        return f"{self.mode} {target}" if target else self.mode


class Wait(Strict):
    """Wait a fixed time, or until every client's PoP has been steady (all answered) for `steady`;
    `baseline` also wants every client back on the PoP it had before the drill."""

    seconds: Seconds | None = None
    until: Literal["stable", "baseline"] | None = None
    steady: Seconds = 1.0
    timeout: Seconds = 30.0

    @model_validator(mode="before")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            return {"seconds": value}
        return value

    @model_validator(mode="after")
    def _one(self) -> Wait:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("a wait is either a duration (`wait: 2s`) or `wait: {until: stable}`")
        return self


class Move(Strict):
    """Re-home a client to another eyeball ISP at run time (lab/runtime/moves.py)."""

    client: str
    to: str


class Restore(Strict):
    """Undo an injected fault (by its mode and target) or move a client home; when empty, everything."""

    mode: Mode | None = None
    pop: str | None = None
    link: tuple[str, str] | None = None
    client: str | None = None

    @property
    def everything(self) -> bool:
        return self.mode is None and self.pop is None and self.link is None and self.client is None


class Expect(Strict):
    catchment: dict[str, str] | None = None
    max_outage: Seconds | None = None
    max_lost_probes: int | None = Field(default=None, ge=0)
    max_http_errors: int | None = Field(default=None, ge=0)
    convergence_p95: Seconds | None = None
    convergence_max: Seconds | None = None

    def items(self) -> list[tuple[str, Any]]:
        return [(k, v) for k, v in self.model_dump().items() if v is not None]


STEP_KINDS = ("fail", "move", "wait", "restore", "expect")


class Step(Strict):
    fail: Fault | None = None
    move: Move | None = None
    wait: Wait | None = None
    restore: Restore | None = None
    expect: Expect | None = None

    @model_validator(mode="before")
    @classmethod
    def _restore_all(cls, value: Any) -> Any:
        if isinstance(value, dict) and "restore" in value and value["restore"] in (None, "all"):
            return {**value, "restore": {}}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Step:
        given = [k for k in STEP_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"each step is exactly one of {', '.join(STEP_KINDS)}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if getattr(self, k) is not None)


class Probes(Strict):
    rate_hz: float = Field(default=20.0, gt=0, le=100)
    timeout: Seconds = 1.0
    clients: list[str] | None = None


# Shared static assets (fresh for 1 h) and four objects per client and drill run (fresh for 5 min; `{run}` is
# new for every run): none expires during a drill, so the origin sees nothing in the steady state, and a PoP
# that receives moved clients fetches their objects once (the cold-cache penalty), however many drills ran
# before. origin-down.yaml uses short-lived objects instead (stale-if-error).
DEFAULT_HTTP_PATHS = ["/static/index.html", "/cache/drill/{run}/{client}/a?max-age=300&sie=600", "/static/app.js",
                      "/cache/drill/{run}/{client}/b?max-age=300&sie=600", "/static/style.css",
                      "/cache/drill/{run}/{client}/c?max-age=300&sie=600", "/static/10k.bin",
                      "/cache/drill/{run}/{client}/d?max-age=300&sie=600"]


class Http(Strict):
    """Background HTTPS load from clients to the anycast address: `rate_hz` requests a second per client on
    one keep-alive connection (when `keepalive`), plus `new_conn_hz` on new connections. Paths are taken in
    turn; `{client}` becomes the client's name, `{run}` a token new for each drill run."""

    enabled: bool = True
    rate_hz: float = Field(default=4.0, gt=0, le=50)
    new_conn_hz: float = Field(default=1.0, ge=0, le=20)
    paths: list[str] = Field(default=DEFAULT_HTTP_PATHS, min_length=1)
    keepalive: bool = True
    timeout: Seconds = 2.0
    clients: list[str] | None = None

    @model_validator(mode="after")
    def _paths(self) -> Http:
        bad = [p for p in self.paths if not p.startswith("/") or any(c in p for c in " \r\n")]
        if bad:
            raise ValueError(f"paths must start with / and have no spaces: {bad[0]!r}")
        return self


class Drill(Strict):
    name: str
    description: str = ""
    topology: str = "default"
    topology_overrides: dict[str, Any] = {}
    probes: Probes = Probes()
    http: Http = Http()
    baseline: Seconds = 2.0
    settle: Seconds = 40.0
    steps: list[Step] = Field(min_length=1)
    expect: Expect = Expect()
    source: str | None = None

    @model_validator(mode="after")
    def _has_fault(self) -> Drill:
        if not any(s.fail is not None or s.move is not None for s in self.steps):
            raise ValueError("a drill needs at least one `fail` or `move` step")
        if self.planned_s > MAX_PLANNED_S:
            raise ValueError(f"the waits, baseline and settle add up to {self.planned_s:.0f} s; "
                             f"at most {MAX_PLANNED_S:.0f} s")
        return self

    @property
    def planned_s(self) -> float:
        """The longest the drill's waits, baseline and settle can take."""
        waits = [s.wait.seconds if s.wait.seconds is not None else s.wait.timeout for s in self.steps if s.wait]
        return self.baseline + self.settle + sum(waits)

    @property
    def faults(self) -> list[Fault]:
        return [s.fail for s in self.steps if s.fail is not None]


def load_drill(path: Path | str) -> Drill:
    """Read and validate a drill file; any problem raises one DrillFileError naming file, line, field."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise DrillFileError(path, line_of(doc, ()), "", "a drill must be a YAML mapping")
    try:
        return Drill.model_validate({**doc, "source": str(path)})
    except ValidationError as exc:
        raise DrillFileError(path, *first_problem(doc, exc, Drill)) from None


def check_against(drill: Drill, node_names: set[str], pops: set[str], clients: set[str],
                  isps: set[str] | None = None) -> list[str]:
    """What a drill names that the lab does not have (checked before anything is injected)."""
    problems = [f"http.clients: unknown client {c!r}" for c in drill.http.clients or () if c not in node_names]
    for i, step in enumerate(drill.steps):
        if step.move is not None:
            if step.move.client not in clients:
                problems.append(f"steps[{i}].move.client: unknown client {step.move.client!r}")
            if isps is not None and step.move.to not in isps:
                problems.append(f"steps[{i}].move.to: unknown eyeball ISP {step.move.to!r} "
                                f"(known: {', '.join(sorted(isps))})")
        fault = step.fail
        if fault is not None:
            if fault.pop is not None and fault.pop not in pops:
                problems.append(f"steps[{i}].fail.pop: unknown PoP {fault.pop!r} (known: {', '.join(sorted(pops))})")
            for end in fault.link or ():
                if end not in node_names:
                    problems.append(f"steps[{i}].fail.link: unknown node {end!r}")
        if step.expect is not None and step.expect.catchment:
            for client, pop in step.expect.catchment.items():
                if client not in clients:
                    problems.append(f"steps[{i}].expect.catchment: unknown client {client!r}")
                if pop not in pops:
                    problems.append(f"steps[{i}].expect.catchment.{client}: unknown PoP {pop!r}")
    return problems
