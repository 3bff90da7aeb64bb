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
from pathlib import Path
from typing import Any

from .. import interrupts
from ..errors import LabError
from ..runtime import moves
from ..runtime.state import RunningLab
from . import edgestats, expectations, faults, http_load, logs
from .analysis import Probe, analyse
from .live import LiveLog
from .model import MAX_DRILL_S, Drill, Restore, Step, Wait, check_against
from .result import DrillResult, StepResult

Progress = Callable[[str], None]
STABLE_TIMEOUT_S = 30.0


class RestoreFailed(LabError):
    """A drill stopped and could not undo a fault: the lab may still carry it, so no drill should follow."""


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
    plan = running.plan
    clients = drill.probes.clients or [c.name for c in plan.clients]
    problems = check_against(drill, set(plan.nodes), {p.name for p in plan.pops}, {c.name for c in plan.clients},
                             {e.name for e in plan.eyeballs})
    if problems:
        raise LabError(f"drill {drill.name!r} does not fit lab {running.name!r}", problems)
    run = _DrillRun(running, drill, clients, progress or (lambda _message: None))
    try:
        run.prepare()
        for index, step in enumerate(drill.steps):
            run.step(index, step)
        run.end()
    except BaseException as exc:
        run.stopped(exc, report_dir, junit)
        raise
    run.finish(report_dir, junit)
    return run.result


class _DrillRun:
    """One drill's state while it runs: probes, log follower, HTTP load, the faults in place, the clients it moved,
    and the result. Each step kind has its own handler (`_fail`, `_move`, `_wait`, `_restore`, `_expect`)."""

    def __init__(self, running: RunningLab, drill: Drill, clients: list[str], say: Progress) -> None:
        self.running, self.drill, self.clients, self.say = running, drill, clients, say
        self.result = DrillResult(drill=drill, lab=running.name, started=time.time(),
                                  pops=[p.name for p in running.plan.pops])
        self.stream = LiveLog(running.directory)  # for observers in other processes (anycastlab web)
        self.probing = _Probing(running, drill, clients, self.stream)
        self.result.probe_source = self.probing.source
        self.follower = logs.LogFollower(running)
        self.injected: list[faults.Injected] = []
        self.moved: list[str] = []  # clients this drill moved away from home, in order
        self.load = _http_load(running, drill, clients)
        self.result.http = {"available": False, "ok": None, "failed": None, "by_class": {},
                            "keepalive_survived": None,
                            "note": "HTTP load off in this drill" if not drill.http.enabled
                            else "no edge proxy serves this lab: HTTP load not measured"}
        self.result.cache = edgestats.summarise(None, None, None, [], [])
        self.snaps: dict[str, edgestats.Snapshot] = {}
        self.baseline: dict[str, str | None] = {}

    def rel(self, t: float) -> float:
        return round(t - self.result.t0, 3)

    def wait_stable(self, steady: float, timeout: float, back: bool = False) -> bool:
        deadline = time.monotonic() + timeout
        since = time.time()
        while time.monotonic() < deadline:
            if self.probing.stable(steady, since, self.baseline if back else None):
                return True
            time.sleep(0.05)
        return False

    def _restoring(self) -> None:
        if self.result.fault_t is not None and self.result.restore_t is None:
            if self.load is not None:
                self.snaps["end"] = edgestats.snapshot(self.running)
            self.result.restore_t = time.time()

    def restore(self, which: Restore) -> list[str]:
        done = []
        if which.client is None:
            for item in reversed(list(self.injected)):
                if item.matches(which.mode, which.pop, which.link):
                    self._restoring()
                    item.undo()
                    self.injected.remove(item)
                    done.append(item.fault.label)
        if which.everything or which.client is not None:
            for client in reversed([c for c in self.moved if which.client in (None, c)]):
                self._restoring()
                with interrupts.held():
                    back = moves.move_home(self.running, client)
                    self.moved.remove(client)
                if back is not None:
                    done.append(f"move {client} home to {back.isp_to}")
        return done

    def prepare(self) -> None:
        """Probes and load running, the catchment stable, caches warm: the baseline before the first step."""
        drill, load = self.drill, self.load
        logs.debug_updates(self.running, True)
        self.stream.start(drill.name, drill.description or "", self.clients, self.result.pops, drill.probes.rate_hz)
        self.follower.start()
        self.probing.start()
        self.say(f"probing {len(self.clients)} clients at {drill.probes.rate_hz:g} Hz ({self.probing.source})")
        if load is not None:
            load.start()
            self.say(f"HTTP load from {len(load.settings.clients)} clients: {load.settings.keepalive_hz:g}/s "
                     f"keep-alive + {load.settings.new_conn_hz:g}/s new connections each")
        if not self.wait_stable(max(drill.baseline, 1.0), STABLE_TIMEOUT_S):
            raise LabError(f"the lab's catchment was not stable within {STABLE_TIMEOUT_S:.0f} s before the drill "
                           f"(current: {self.probing.current()})")
        self.baseline.update(self.probing.current())
        if load is not None:
            # Let every client ask for every path once (warm caches), then measure `baseline` seconds of
            # the steady state before the fault.
            time.sleep(max(0.0, load.started + load.warmup_s - time.time()))
            self.snaps["start"] = edgestats.snapshot(self.running)
            time.sleep(drill.baseline)

    def step(self, index: int, step: Step) -> None:
        started = time.time()
        handler = {"fail": self._fail, "move": self._move, "wait": self._wait, "restore": self._restore,
                   "expect": self._expect}
        label, ok, detail, started = handler[step.kind](index, step, started)
        self.result.steps.append(StepResult(index, step.kind, label, self.rel(started),
                                            round(time.time() - started, 3), ok, detail))
        self.stream.step(step.kind, label, ok, started, fault=None if step.fail is None else
                         {"mode": step.fail.mode, "pop": step.fail.pop, "link": step.fail.link})

    def _fail(self, _index: int, step: Step, started: float) -> tuple[str, bool, str, float]:
        assert step.fail is not None
        label = f"fail {step.fail.label}"
        self.say(label)
        started = self._event(started)
        with interrupts.held():  # a Ctrl-C half-way through would leave a fault nobody undoes
            item = faults.inject(self.running, step.fail)
            self.injected.append(item)
        self.result.injected.append({"mode": step.fail.mode, "pop": step.fail.pop, "link": step.fail.link,
                                     "t": self.rel(started), **item.details})
        return label, True, "", started

    def _event(self, started: float) -> float:
        """The drill's first fault or move is its event: the analysis measures from it."""
        if self.result.fault_t is None:
            if self.load is not None:
                self.snaps["fault"] = edgestats.snapshot(self.running)
            started = self.result.fault_t = time.time()
        return started

    def _move(self, _index: int, step: Step, started: float) -> tuple[str, bool, str, float]:
        assert step.move is not None
        client, to = step.move.client, step.move.to
        label = f"move {client} to {to}"
        self.say(label)
        started = self._event(started)
        with interrupts.held():  # a move is whole or not at all, and the drill knows to undo it
            done = moves.move(self.running, client, to)
            if done.isp_to == done.home:
                self.moved = [c for c in self.moved if c != client]
            elif client not in self.moved:
                self.moved.append(client)
        self.result.injected.append({"mode": "move", "client": client, "from": done.isp_from, "to": done.isp_to,
                                     "address": done.address, "t": self.rel(started), "took_s": round(done.took_s, 3)})
        return label, True, f"{client} now {done.address} via {done.gateway}", started

    def _wait(self, _index: int, step: Step, started: float) -> tuple[str, bool, str, float]:
        assert step.wait is not None
        ok, label = _wait(step.wait, self.wait_stable)
        self.say(label + ("" if ok else " (timed out)"))
        return label, ok, "" if ok else "timed out: some clients were still losing probes or moving", started

    def _restore(self, _index: int, step: Step, started: float) -> tuple[str, bool, str, float]:
        assert step.restore is not None
        label = "restore " + (", ".join(self.restore(step.restore)) or "(nothing to restore)")
        self.say(label)
        return label, True, "", started

    def _expect(self, index: int, step: Step, started: float) -> tuple[str, bool, str, float]:
        assert step.expect is not None
        self.result.expectations += expectations.catchment(step.expect, self.probing.current(), index)
        return "expect " + ", ".join(k for k, _ in step.expect.items()), True, "", started

    def end(self) -> None:
        """Undo what is still in place, then wait (bounded by `settle`) for every client to be back."""
        result = self.result
        if self.injected or self.moved:
            result.steps.append(StepResult(len(self.drill.steps), "restore", "restore (end of drill) "
                                           + ", ".join(self.restore(Restore())), self.rel(time.time()), 0.0, True))
            self.stream.step("restore", result.steps[-1].label)
        settled, back = time.time(), self.wait_stable(1.0, self.drill.settle, back=True)
        if not back:
            self.say(f"the clients were not all back on their PoPs {self.drill.settle:.0f} s after the drill")
        result.steps.append(StepResult(len(result.steps), "wait", "every client back on its PoP (end of drill)",
                                       self.rel(settled), round(time.time() - settled, 3), back,
                                       "" if back else f"not within settle ({self.drill.settle:g}s): "
                                                       f"{self.probing.current()}"))
        result.complete = True

    def stopped(self, exc: BaseException, report_dir: Path | str | None, junit: Path | str | None) -> None:
        """Restore every fault, write the partial report; raise RestoreFailed if a fault could not be undone."""
        result = self.result
        result.error = interrupts.describe(exc) if isinstance(exc, KeyboardInterrupt) \
            else f"{type(exc).__name__}: {exc}"
        self.say(f"drill stopped ({result.error}); restoring {len(self.injected)} fault(s)"
                 + (f" and moving {len(self.moved)} client(s) home" if self.moved else ""))
        # Restoring and writing the partial report both finish: a second signal (CI sends SIGINT, then
        # SIGTERM) waits, and is dropped, since this one is already unwinding the drill.
        with interrupts.held(raise_pending=False):
            for item in reversed(list(self.injected)):
                try:
                    self.restore(Restore(mode=item.fault.mode, pop=item.fault.pop, link=item.fault.link))
                except Exception as undo_error:  # keep restoring the others
                    result.restore_failures.append(f"{item.fault.label}: {undo_error}")
            for client in list(self.moved):
                try:
                    self.restore(Restore(client=client))
                except Exception as undo_error:
                    result.restore_failures.append(f"move {client} home: {undo_error}")
            with contextlib.suppress(Exception):
                self.wait_stable(1.0, self.drill.settle, back=True)
            self._collect()
            self.stream.end(False, False, result.error, result.timeline.convergence())
            result.expectations += expectations.not_reached(self.drill, result.expectations, result.error)
            _write(result, report_dir, junit)
        if result.restore_failures:
            raise RestoreFailed(f"drill {self.drill.name!r} stopped ({result.error}) and could not restore every "
                                f"fault; lab {self.running.name!r} may still carry them",
                                result.restore_failures) from exc

    def finish(self, report_dir: Path | str | None, junit: Path | str | None) -> None:
        result = self.result
        self._collect()
        result.expectations += expectations.whole_drill(self.drill, result.timeline, result.lost_probes, result.http)
        self.stream.end(result.passed, True, None, result.timeline.convergence())
        _write(result, report_dir, junit)

    def _collect(self) -> None:
        _finish(self.result, self.probing, self.follower, self.running, self.clients, self.drill, self.load,
                self.snaps)


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
