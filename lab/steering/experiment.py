"""Anycast against DNS-based steering, measured: the experiment behind `anycastlab steering`.

Each arm runs the same bounded HTTPS load from every client (lab/drills/http_load.py): one kept-alive connection
and fresh connections, each client resolving its arm's name through its ISP's unbound with a stub cache
(stub.py). The anycast arm asks for the anycast name (always the anycast address: BGP moves the clients); a DNS
arm asks for the steered name (its PoP's unicast address, until gdnsd's health checks mark the PoP DOWN and the
caches let go). The same fault (lab/drills/faults.py) goes in at the same PoP in every arm, once per TTL for the
DNS arms. Outages come from the drill analysis (lab/drills/analysis.py) run over the HTTP answers; a watch of
every ISP's resolver (4 queries a second) says when its answer changed.

Every wait is bounded; `budget_s` is the whole run's upper bound, printed before anything starts.
"""

from __future__ import annotations

import contextlib
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .. import interrupts
from ..drills import analysis, faults, http_load
from ..drills.model import Fault
from ..errors import LabError
from ..runtime import paths
from ..runtime.state import RunningLab
from . import service
from .dnsquery import query
from .plan import SteeringPlan, steering_plan
from .stub import PRESETS, CachePolicy, StubResolver

FAULTS = ("crash", "withdraw", "proxy-crash")
RESTORE_ALLOWANCE_S = 30.0  # a crash's restore waits for routes and the proxy (bounded inside faults.py)
LOAD_PATHS = ["/static/1k.bin", "/cdn-cgi/trace", "/cache/{client}-{run}?max-age=300"]
WATCH_HZ = 4.0
STILL_AFTER_S = (5.0, 15.0, 30.0)


@dataclass
class Settings:
    fault: str = "crash"
    pop: str | None = None  # default: the PoP serving the most ISPs by the steering plan
    ttls: list[int] | None = None  # default: the topology's steering.dns.ttl
    cache: CachePolicy = PRESETS["ttl"]
    fault_s: float | None = None  # default: the DNS model's upper bound + 5 s, for the longest TTL
    baseline_s: float = 3.0
    settle_s: float = 3.0
    keepalive_hz: float = 4.0
    new_conn_hz: float = 4.0
    timeout_s: float = 2.0

    @property
    def interval_s(self) -> float:
        """The load's time resolution: one request per client every this many seconds."""
        return 1.0 / (self.keepalive_hz + self.new_conn_hz)


def model(sp: SteeringPlan, fault: str, ttl: int, cache: CachePolicy) -> dict[str, float]:
    """What the mechanisms imply for a DNS client of the failed PoP: failed from the fault until gdnsd marks the
    PoP DOWN (detection) and the resolver's and the stub's copies of the old answer have expired."""
    if fault == "withdraw":  # the unicast /32 stays announced and the proxy up: nothing to detect
        return {"detection_min_s": 0.0, "detection_max_s": 0.0, "outage_min_s": 0.0, "outage_max_s": 0.0}
    low, high = sp.config.health.detection_s
    r = sp.config.resolvers
    resolver_ttl = max(ttl, r.min_ttl) + (r.serve_expired_ttl if r.serve_expired else 0)
    return {"detection_min_s": low, "detection_max_s": high, "resolver_ttl_s": float(resolver_ttl),
            "client_floor_s": cache.floor_s, "outage_min_s": low,
            "outage_max_s": high + resolver_ttl + cache.floor_s}


def fault_window(settings: Settings, sp: SteeringPlan, ttl: int) -> float:
    if settings.fault_s is not None:
        return settings.fault_s
    return max(8.0, model(sp, "crash", ttl, settings.cache)["outage_max_s"] + 5.0)


def ready_timeout(sp: SteeringPlan) -> float:
    h = sp.config.health
    return h.up_after * h.interval + h.timeout + 10.0


def budget_s(settings: Settings, sp: SteeringPlan) -> float:
    """Upper bound of the whole run: every arm's readiness wait, baseline, fault, restore and settle."""
    ttls = settings.ttls or [sp.config.ttl]
    window = fault_window(settings, sp, max(ttls))
    arm = ready_timeout(sp) + settings.baseline_s + window + RESTORE_ALLOWANCE_S + settings.settle_s + 5.0
    return round(arm * (1 + len(ttls)), 1)


@dataclass(frozen=True)
class Answer:
    t: float
    isp: str
    address: str | None


class ResolverWatch:
    """Asks every ISP's resolver for a name, WATCH_HZ times a second, from the ISP router's namespace."""

    def __init__(self, lab: RunningLab, sp: SteeringPlan, name: str, max_s: float) -> None:
        self.lab, self.sp, self.name, self.max_s = lab, sp, name, max_s
        self.answers: list[Answer] = []
        self.states: list[tuple[float, dict[str, str]]] = []  # gdnsd's view of each PoP, twice a second
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steering-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        deadline = time.monotonic() + self.max_s
        pids = {isp: self.lab.pid(isp) for isp in self.sp.resolvers}
        tick = 0
        while not self._stop.is_set() and time.monotonic() < deadline:
            tick += 1
            if tick % 2:
                with contextlib.suppress(LabError, ValueError, OSError, subprocess.TimeoutExpired):
                    self.states.append((time.time(), service.pop_states(self.lab)))
            for isp, resolver in self.sp.resolvers.items():
                try:
                    got = query(pids[isp], str(resolver.address), self.name, timeout_s=0.5, tries=1)
                except OSError:  # the node is gone (the lab is being torn down): nothing more to watch
                    return
                self.answers.append(Answer(time.time(), isp, None if got is None else got.address))
            self._stop.wait(1.0 / WATCH_HZ)


@dataclass(frozen=True)
class Point:
    """One HTTP answer as the drill analysis reads it (pop None: the request failed)."""

    t: float
    client: str
    seq: int
    pop: str | None
    rtt_ms: float | None


@dataclass
class Arm:
    name: str  # "anycast" or "dns-ttl<T>"
    kind: str  # "anycast" or "dns"
    hostname: str
    ttl: int
    fault_t: float = 0.0
    restore_t: float | None = None
    clients: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    model: dict[str, float] = field(default_factory=dict)
    records: list[http_load.HttpRecord] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    states: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "hostname": self.hostname, "ttl": self.ttl,
                "fault_t": self.fault_t, "restore_s": None if self.restore_t is None else
                round(self.restore_t - self.fault_t, 3), "model": self.model, "summary": self.summary,
                "clients": self.clients, "error": self.error}


@dataclass
class Result:
    lab: str
    fault: str
    pop: str
    settings: Settings
    budget_s: float
    health: dict[str, Any]
    resolvers: dict[str, Any]
    arms: list[Arm] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    complete: bool = False
    error: str | None = None

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {"lab": self.lab, "fault": self.fault, "pop": self.pop, "complete": self.complete,
                "error": self.error, "budget_s": self.budget_s, "took_s": round(self.finished - self.started, 1),
                "settings": {"ttls": s.ttls, "cache": s.cache.name, "cache_floor_s": s.cache.floor_s,
                             "baseline_s": s.baseline_s, "settle_s": s.settle_s, "keepalive_hz": s.keepalive_hz,
                             "new_conn_hz": s.new_conn_hz, "timeout_s": s.timeout_s,
                             "interval_s": round(s.interval_s, 3)},
                "health_checks": self.health, "resolvers": self.resolvers,
                "arms": [a.to_json() for a in self.arms]}


def default_pop(sp: SteeringPlan, origin_pops: list[str]) -> str:
    """The PoP most ISPs' resolvers are given first, leaving out the origin's backbone PoPs where possible (a
    crash there cuts every PoP's misses off the origin, which is another experiment); ties: topology order."""
    firsts = Counter(r.pops[0] for r in sp.resolvers.values())
    candidates = [p for p in sp.unicast if p not in origin_pops] or list(sp.unicast)
    return max(candidates, key=lambda p: (firsts[p], -candidates.index(p)))


def wait_for_first_choices(lab: RunningLab, sp: SteeringPlan, name: str, timeout: float) -> list[str]:
    """Until every ISP's resolver answers `name` with its first-choice PoP (all healthy again); what is not."""
    deadline = time.monotonic() + timeout
    while True:
        wrong = []
        for isp, resolver in sp.resolvers.items():
            got = query(lab.pid(isp), str(resolver.address), name, timeout_s=0.5, tries=1)
            want = str(sp.unicast[resolver.pops[0]])
            if got is None or got.address != want:
                wrong.append(f"{isp}'s resolver answers {got.address if got else 'nothing'}, not {want}")
        if not wrong or time.monotonic() >= deadline:
            return wrong
        service.flush_resolvers(lab)
        time.sleep(0.5)


def _first_change(answers: list[Answer], isp: str, fault_t: float) -> tuple[str | None, float | None]:
    mine = [a for a in answers if a.isp == isp and a.address is not None]
    before = next((a.address for a in reversed(mine) if a.t < fault_t), None)
    changed = next((a.t for a in mine if a.t >= fault_t and a.address != before), None)
    return before, None if changed is None else round(changed - fault_t, 3)


def analyse_arm(arm: Arm, lab: RunningLab, pop: str, load: http_load.HttpLoad, settings: Settings) -> None:
    plan = lab.plan
    names = [c.name for c in plan.clients]
    records = sorted(load.records, key=lambda r: r.t)
    points = [Point(r.t, r.client, i, r.pop if r.error is None else None, r.ms) for i, r in enumerate(records)]
    timeline = analysis.analyse(points, names, arm.fault_t, arm.restore_t, settings.interval_s)
    arm.records = records
    end_fault = arm.restore_t if arm.restore_t is not None else float("inf")
    for c in timeline.clients:
        isp = plan.nodes[c.name].isp or ""
        mine = [r for r in records if r.client == c.name]
        after = [r for r in mine if r.t >= arm.fault_t]
        failed = Counter(r.error for r in after if r.error is not None)
        moved = next((r.t for r in after if r.error is None and r.pop != c.pop_before and r.t < end_fault), None)
        alive = [k for k in load.keepalives if k.client == c.name and k.opened <= arm.fault_t
                 and (k.broken is None or k.broken >= arm.fault_t)]
        survived = [k for k in alive if k.broken is None or (arm.restore_t is not None and k.broken >= arm.restore_t)]
        ok_ms = [r.ms for r in after if r.error is None and r.t >= (moved or arm.fault_t)]
        entry: dict[str, Any] = {
            "name": c.name, "isp": isp, "affected": c.pop_before == pop,
            "pop_before": c.pop_before, "pop_after": c.pop_after, "pop_end": c.pop_end,
            "outage_s": c.outage_s, "outage_window": c.outage_window,
            "failed": sum(failed.values()), "failed_by_class": dict(failed),
            "used_new_pop_s": None if moved is None else round(moved - arm.fault_t, 3),
            "keepalive_at_fault": len(alive), "keepalive_survived": len(survived) == len(alive) if alive else None,
            "request_ms_median_after": round(statistics.median(ok_ms), 2) if ok_ms else None,
        }
        if arm.kind == "dns":
            before, changed = _first_change(arm.answers, isp, arm.fault_t)
            entry["resolver_answer_before"] = before
            entry["resolver_changed_s"] = changed
        arm.clients.append(entry)
    affected = [c for c in arm.clients if c["affected"]]
    others = [c for c in arm.clients if not c["affected"]]
    still = {f"{n:g}s": sum(1 for c in affected if c["outage_window"] is not None and (
        c["outage_window"][1] is None or c["outage_window"][1] > n)) for n in STILL_AFTER_S}
    arm.summary = {
        "affected_clients": len(affected),
        "outage_s": analysis.stats([c["outage_s"] for c in affected]),
        "failed_requests": sum(c["failed"] for c in arm.clients),
        "failed_by_class": dict(sum((Counter(c["failed_by_class"]) for c in arm.clients), Counter())),
        "failed_requests_other_clients": sum(c["failed"] for c in others),
        "still_failing_after": still,
        "requests": len(records),
        "keepalive_survived": sum(1 for c in arm.clients if c["keepalive_survived"]),
        "keepalive_at_fault": sum(1 for c in arm.clients if c["keepalive_at_fault"]),
    }
    down = next((t for t, st in arm.states if t >= arm.fault_t and not st.get(pop, "UP").startswith("UP")), None)
    arm.summary["health_down_s"] = None if down is None else round(down - arm.fault_t, 3)  # gdnsd marked it DOWN
    if arm.kind == "dns":
        arm.summary["resolver_changed_s"] = analysis.stats(
            [c["resolver_changed_s"] for c in affected if c["resolver_changed_s"] is not None])
        arm.summary["used_new_pop_s"] = analysis.stats(
            [c["used_new_pop_s"] for c in affected if c["used_new_pop_s"] is not None])


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    if stop is None:
        time.sleep(max(0.0, seconds))
    else:
        stop.wait(max(0.0, seconds))


def run_arm(lab: RunningLab, sp: SteeringPlan, result: Result, arm: Arm, settings: Settings,
            progress: Callable[[str], None], serial: int) -> None:
    """One arm: wait until every PoP is healthy again, load, fault, restore, analyse. The fault is always undone."""
    if arm.kind == "dns":
        service.set_ttl(lab, arm.ttl, serial)
    service.flush_resolvers(lab)
    missing = service.wait_ready(lab, ready_timeout(sp))
    if not missing and arm.kind == "dns":
        missing = wait_for_first_choices(lab, sp, arm.hostname, ready_timeout(sp))
        service.flush_resolvers(lab)  # the arm starts with empty caches
    if missing:
        raise LabError(f"steering not ready before the {arm.name} arm: {'; '.join(missing)}")
    window = fault_window(settings, sp, max(settings.ttls or [arm.ttl]))
    arm.model = model(sp, result.fault, arm.ttl, settings.cache) if arm.kind == "dns" else {}
    clients = [c.name for c in lab.plan.clients]
    max_s = settings.baseline_s + window + RESTORE_ALLOWANCE_S + settings.settle_s + 10.0
    load = http_load.HttpLoad(lab, http_load.LoadSettings(
        clients=clients, paths=LOAD_PATHS, keepalive_hz=settings.keepalive_hz, new_conn_hz=settings.new_conn_hz,
        timeout_s=settings.timeout_s, max_s=max_s), paths.ca_dir(lab.name) / "ca.pem")
    load.host = arm.hostname
    stub = StubResolver(lab.plan, sp, arm.hostname, settings.cache, {c: lab.pid(c) for c in clients})
    load.resolve = stub
    watch = ResolverWatch(lab, sp, arm.hostname, max_s)
    injected: faults.Injected | None = None
    progress(f"{arm.name}: {len(clients)} clients load {arm.hostname} for {settings.baseline_s:g} s, then "
             f"{result.fault} at {result.pop} for {window:g} s")
    watch.start()
    load.start()
    try:
        _sleep(settings.baseline_s, None)
        arm.fault_t = time.time()
        injected = faults.inject(lab, Fault(mode=result.fault, pop=result.pop))  # type: ignore[arg-type]
        _sleep(window - (time.time() - arm.fault_t), None)
        progress(f"{arm.name}: restoring {result.fault} at {result.pop}")
        arm.restore_t = time.time()
        undo, injected = injected, None  # a failed restore is not tried twice
        undo.undo()
        _sleep(settings.settle_s, None)
    except BaseException as exc:
        arm.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            if injected is not None:  # an error or an interrupt: the fault goes, whatever comes next
                arm.restore_t = arm.restore_t or time.time()
                with interrupts.held(raise_pending=False):
                    injected.undo()
        finally:  # the load and the watch stop even when the restore fails, before anyone tears the lab down
            load.stop()
            watch.stop()
        arm.answers = list(watch.answers)
        arm.states = list(watch.states)
        if load.error is not None and arm.error is None:
            arm.error = f"HTTP load failed: {load.error}"
        if arm.fault_t:
            analyse_arm(arm, lab, result.pop, load, settings)


def run_experiment(lab: RunningLab, settings: Settings | None = None,
                   progress: Callable[[str], None] = lambda _: None) -> Result:
    """Both arms (the DNS one per TTL) on a lab with steering.dns on. Raises on an interrupt or error after
    undoing the fault; the arms finished by then are in the exception's `result` attribute."""
    settings = settings or Settings()
    sp = steering_plan(lab.plan)
    if sp is None:
        raise LabError(f"lab {lab.name} has no steering.dns (boot a topology with `steering: {{dns: {{}}}}`, or run "
                       "`anycastlab steering` with no lab running: it boots its own)")
    if settings.fault not in FAULTS:
        raise LabError(f"unknown fault {settings.fault!r} (choose: {', '.join(FAULTS)})")
    pop = settings.pop or default_pop(sp, lab.plan.topology.origin.pops)
    if pop not in sp.unicast:
        raise LabError(f"unknown PoP {pop!r} (known: {', '.join(sp.unicast)})")
    ttls = settings.ttls or [sp.config.ttl]
    settings.ttls = ttls
    cfg = sp.config
    health = {"interval_s": cfg.health.interval, "timeout_s": cfg.health.timeout, "down_after": cfg.health.down_after,
              "up_after": cfg.health.up_after, "path": cfg.health.path,
              "detection_s": list(cfg.health.detection_s)}
    resolvers = {"min_ttl_s": cfg.resolvers.min_ttl, "serve_expired": cfg.resolvers.serve_expired,
                 "serve_expired_ttl_s": cfg.resolvers.serve_expired_ttl}
    result = Result(lab.name, settings.fault, pop, settings, budget_s(settings, sp), health, resolvers,
                    started=time.time())
    arms = [Arm("anycast", "anycast", cfg.anycast_name, cfg.ttl)]
    arms += [Arm(f"dns-ttl{ttl}", "dns", cfg.name, ttl) for ttl in ttls]
    try:
        for serial, arm in enumerate(arms, start=2):
            result.arms.append(arm)
            run_arm(lab, sp, result, arm, settings, progress, serial)
        result.complete = True
    except BaseException as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        exc.result = result  # type: ignore[attr-defined]
        raise
    finally:
        result.finished = time.time()
        try:
            service.set_ttl(lab, cfg.ttl, len(arms) + 2)  # the topology's TTL again
        except LabError as exc:
            result.error = result.error or f"could not put the TTL back: {exc}"
    return result
