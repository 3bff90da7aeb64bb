"""Running a drill against a running lab: probes in the background, steps in order, every fault undone.

Whatever happens in the middle (a failed step, Ctrl-C, SIGTERM turned into KeyboardInterrupt by the
CLI), every injected fault is restored, the lab is given `settle` seconds to come back, and the result
is marked incomplete; with a report directory the partial report is written before the error goes on.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import interrupts
from ..errors import LabError
from ..runtime.state import RunningLab
from . import edgestats, expectations, faults, http_load, logs
from .analysis import Probe, Timeline, analyse
from .expectations import ExpectationResult
from .live import LiveLog
from .model import MAX_DRILL_S, Drill, Restore, Wait, check_against

Progress = Callable[[str], None]
STABLE_TIMEOUT_S = 30.0


class RestoreFailed(LabError):
    """A drill stopped and could not undo a fault: the lab may still carry it, so no drill should follow."""


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


class _Probing:
    """Runs the DNS probes in a thread; keeps every record and each client's answers for `stable`."""

    def __init__(self, lab: RunningLab, drill: Drill, clients: list[str], stream: LiveLog | None = None) -> None:
        self.lab, self.drill, self.clients, self.stream = lab, drill, clients, stream
        self.records: list[Probe] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.source, self._watch = _watch_function()
        self._thread = threading.Thread(target=self._run, name="drill-probes", daemon=True)

    def _run(self) -> None:
        try:
            for record in self._watch(self.lab, self.drill.probes.rate_hz, MAX_DRILL_S, self.clients, self.stop_event,
                                      timeout_s=self.drill.probes.timeout):
                self.records.append(record)
                if self.stream is not None:
                    self.stream.probe(record)
        except BaseException as exc:  # reported by the runner
            self.error = exc

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        self._thread.join(self.drill.probes.timeout + 5)

    def stable(self, steady: float, since: float, want: dict[str, str | None] | None = None) -> bool:
        """Every client answered every probe sent in the last `steady` s (ending a probe timeout ago, and all
        sent after `since`), from one PoP."""
        if self.error is not None:
            raise LabError(f"the probes stopped: {self.error}")
        now = time.time()
        hi = now - self.drill.probes.timeout
        lo = hi - steady
        if lo < since:
            return False
        need = max(1, int(steady * self.drill.probes.rate_hz * 0.7))
        window: dict[str, list[str | None]] = {c: [] for c in self.clients}
        for r in reversed(self.records):
            if r.t < lo - self.drill.probes.timeout:
                break
            if lo <= r.t <= hi and r.client in window:
                window[r.client].append(r.pop)
        return all(len(p) >= need and None not in p and len(set(p)) == 1 and (want is None or p[0] == want.get(c))
                   for c, p in window.items())

    def current(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {c: None for c in self.clients}
        for r in reversed(self.records):
            if r.pop is not None and out.get(r.client, "x") is None:
                out[r.client] = r.pop
            if all(v is not None for v in out.values()):
                break
        return out



def _watch_function() -> tuple[str, Callable[..., Iterator[Probe]]]:
    from ..probes.watch import watch

    return "anycastlab.probes.watch (DNS CHAOS id.server)", watch


def run_drill(lab: Any, drill: Drill, report_dir: Path | str | None = None, junit: Path | str | None = None,
              progress: Progress | None = None) -> DrillResult:
    """Run `drill` on `lab` (a Lab or a RunningLab); write reports when asked. Restores on any exit."""
    running: RunningLab = getattr(lab, "running", lab)
    say = progress or (lambda _message: None)
    plan = running.plan
    clients = drill.probes.clients or [c.name for c in plan.clients]
    problems = check_against(drill, set(plan.nodes), {p.name for p in plan.pops}, set(clients))
    if problems:
        raise LabError(f"drill {drill.name!r} does not fit lab {running.name!r}", problems)

    result = DrillResult(drill=drill, lab=running.name, started=time.time(), pops=[p.name for p in plan.pops])
    stream = LiveLog(running.directory)  # for observers in other processes (anycastlab web)
    probing = _Probing(running, drill, clients, stream)
    result.probe_source = probing.source
    follower = logs.LogFollower(running)
    injected: list[faults.Injected] = []
    load = _http_load(running, drill, clients)
    result.http = {"available": False, "ok": None, "failed": None, "by_class": {}, "keepalive_survived": None,
                   "note": "HTTP load off in this drill" if not drill.http.enabled
                   else "no edge proxy serves this lab: HTTP load not measured"}
    result.cache = edgestats.summarise(None, None, None, [], [])
    snaps: dict[str, edgestats.Snapshot] = {}

    def rel(t: float) -> float:
        return round(t - result.t0, 3)

    baseline: dict[str, str | None] = {}

    def wait_stable(steady: float, timeout: float, back: bool = False) -> bool:
        deadline = time.monotonic() + timeout
        since = time.time()
        while time.monotonic() < deadline:
            if probing.stable(steady, since, baseline if back else None):
                return True
            time.sleep(0.05)
        return False

    def restore(which: Restore) -> list[str]:
        done = []
        for item in reversed(list(injected)):
            if item.matches(which.mode, which.pop, which.link):
                if result.fault_t is not None and result.restore_t is None:
                    if load is not None:
                        snaps["end"] = edgestats.snapshot(running)
                    result.restore_t = time.time()
                item.undo()
                injected.remove(item)
                done.append(item.fault.label)
        return done

    try:
        logs.debug_updates(running, True)
        stream.start(drill.name, drill.description or "", clients, result.pops, drill.probes.rate_hz)
        follower.start()
        probing.start()
        say(f"probing {len(clients)} clients at {drill.probes.rate_hz:g} Hz ({probing.source})")
        if load is not None:
            load.start()
            say(f"HTTP load from {len(load.settings.clients)} clients: {load.settings.keepalive_hz:g}/s keep-alive "
                f"+ {load.settings.new_conn_hz:g}/s new connections each")
        if not wait_stable(max(drill.baseline, 1.0), STABLE_TIMEOUT_S):
            raise LabError(f"the lab's catchment was not stable within {STABLE_TIMEOUT_S:.0f} s before the drill "
                           f"(current: {probing.current()})")
        baseline.update(probing.current())
        if load is not None:
            # Let every client ask for every path once (warm caches), then measure `baseline` seconds of
            # the steady state before the fault.
            time.sleep(max(0.0, load.started + load.warmup_s - time.time()))
            snaps["start"] = edgestats.snapshot(running)
            time.sleep(drill.baseline)
        for index, step in enumerate(drill.steps):
            started = time.time()
            label, ok, detail = step.kind, True, ""
            if step.fail is not None:
                label = f"fail {step.fail.label}"
                say(label)
                if result.fault_t is None:
                    if load is not None:
                        snaps["fault"] = edgestats.snapshot(running)
                    started = result.fault_t = time.time()
                with interrupts.held():  # a Ctrl-C half-way through would leave a fault nobody undoes
                    item = faults.inject(running, step.fail)
                    injected.append(item)
                result.injected.append({"mode": step.fail.mode, "pop": step.fail.pop, "link": step.fail.link,
                                        "t": rel(started), **item.details})
            elif step.wait is not None:
                ok, label = _wait(step.wait, wait_stable)
                say(label + ("" if ok else " (timed out)"))
                detail = "" if ok else "timed out: some clients were still losing probes or moving"
            elif step.restore is not None:
                done = restore(step.restore)
                label = "restore " + (", ".join(done) or "(nothing to restore)")
                say(label)
            elif step.expect is not None:
                label = "expect " + ", ".join(k for k, _ in step.expect.items())
                result.expectations += expectations.catchment(step.expect, probing.current(), index)
            result.steps.append(StepResult(index, step.kind, label, rel(started), round(time.time() - started, 3),
                                           ok, detail))
            stream.step(step.kind, label, ok, started, fault=None if step.fail is None else
                        {"mode": step.fail.mode, "pop": step.fail.pop, "link": step.fail.link})
        if injected:
            result.steps.append(StepResult(len(drill.steps), "restore", "restore (end of drill) "
                                           + ", ".join(restore(Restore())), rel(time.time()), 0.0, True))
            stream.step("restore", result.steps[-1].label)
        settled, back = time.time(), wait_stable(1.0, drill.settle, back=True)
        if not back:
            say(f"the clients were not all back on their PoPs {drill.settle:.0f} s after the drill")
        result.steps.append(StepResult(len(result.steps), "wait", "every client back on its PoP (end of drill)",
                                       rel(settled), round(time.time() - settled, 3), back,
                                       "" if back else f"not within settle ({drill.settle:g}s): {probing.current()}"))
        result.complete = True
    except BaseException as exc:
        result.error = interrupts.describe(exc) if isinstance(exc, KeyboardInterrupt) \
            else f"{type(exc).__name__}: {exc}"
        say(f"drill stopped ({result.error}); restoring {len(injected)} fault(s)")
        # Restoring and writing the partial report both finish: a second signal (CI sends SIGINT, then
        # SIGTERM) waits, and is dropped, since this one is already unwinding the drill.
        with interrupts.held(raise_pending=False):
            for item in reversed(list(injected)):
                try:
                    restore(Restore(mode=item.fault.mode, pop=item.fault.pop, link=item.fault.link))
                except Exception as undo_error:  # keep restoring the others
                    result.restore_failures.append(f"{item.fault.label}: {undo_error}")
            with contextlib.suppress(Exception):
                wait_stable(1.0, drill.settle, back=True)
            _finish(result, probing, follower, running, clients, drill, load, snaps)
            stream.end(False, False, result.error, result.timeline.convergence())
            result.expectations += expectations.not_reached(drill, result.expectations, result.error)
            _write(result, report_dir, junit)
        if result.restore_failures:
            raise RestoreFailed(f"drill {drill.name!r} stopped ({result.error}) and could not restore every "
                                f"fault; lab {running.name!r} may still carry them", result.restore_failures) from exc
        raise
    _finish(result, probing, follower, running, clients, drill, load, snaps)
    result.expectations += expectations.whole_drill(drill, result.timeline, result.lost_probes, result.http)
    stream.end(result.passed, True, None, result.timeline.convergence())
    _write(result, report_dir, junit)
    return result


def _write(result: DrillResult, report_dir: Path | str | None, junit: Path | str | None) -> None:
    if report_dir is not None or junit is not None:
        from .report import write_reports  # matplotlib: only when a report is wanted

        write_reports(result, report_dir, junit)


def _http_load(lab: RunningLab, drill: Drill, probe_clients: list[str]) -> http_load.HttpLoad | None:
    """The drill's HTTP load, or None when it is off or no PoP of the lab runs an edge proxy."""
    from ..probes.http import lab_ca
    from ..services.edge import proxy_healthy

    spec = drill.http
    if not spec.enabled or not any(proxy_healthy(lab.name, p.name) for p in lab.plan.pops):
        return None
    settings = http_load.LoadSettings(
        clients=spec.clients or probe_clients, paths=list(spec.paths),
        keepalive_hz=spec.rate_hz if spec.keepalive else 0.0, new_conn_hz=spec.new_conn_hz,
        timeout_s=spec.timeout, max_s=MAX_DRILL_S)
    return http_load.HttpLoad(lab, settings, lab_ca(lab))


def _finish(result: DrillResult, probing: _Probing, follower: logs.LogFollower, lab: RunningLab,
            clients: list[str], drill: Drill, load: http_load.HttpLoad | None,
            snaps: dict[str, edgestats.Snapshot]) -> None:
    if load is not None:
        if "end" not in snaps and "fault" in snaps:
            snaps["end"] = edgestats.snapshot(lab)
        load.stop()
    probing.stop()
    follower.stop()
    logs.debug_updates(lab, False)
    result.finished = time.time()
    result.records = sorted(probing.records, key=lambda r: (r.t, r.client))
    result.events = sorted(follower.events, key=lambda e: e.t)
    fault_t = result.fault_t if result.fault_t is not None else result.finished
    result.timeline = analyse(result.records, clients, fault_t, result.restore_t, 1.0 / drill.probes.rate_hz)
    if load is not None:
        result.http_records = sorted(load.records, key=lambda r: r.t)
        result.http = http_load.summarise(load, result.fault_t, result.restore_t)
        if load.error is not None:
            result.http["note"] = f"the HTTP load stopped early: {load.error}"
        moved = [c for c in result.timeline.clients if c.pop_after is not None and c.pop_after != c.pop_before]
        receiving = sorted({c.pop_after for c in moved if c.pop_after is not None})
        serving = sorted({c.pop_before for c in result.timeline.clients if c.pop_before is not None})
        result.cache = edgestats.summarise(snaps.get("start"), snaps.get("fault"), snaps.get("end"),
                                           receiving, serving)


def _wait(wait: Wait, wait_stable: Callable[[float, float, bool], bool]) -> tuple[bool, str]:
    if wait.seconds is not None:
        time.sleep(wait.seconds)
        return True, f"wait {wait.seconds:g}s"
    ok = wait_stable(wait.steady, wait.timeout, wait.until == "baseline")
    return ok, f"wait until {wait.until} ({wait.steady:g}s steady, at most {wait.timeout:g}s)"
