"""Anycast against DNS-based steering, measured: the experiment behind `anycastlab steering`.

Each arm runs the same bounded HTTPS load from every client (lab/drills/http_load.py): one kept-alive connection
and fresh connections, each client resolving its arm's name through its ISP's unbound with a stub cache
(stub.py). The anycast arm asks for the anycast name (always the anycast address: BGP moves the clients); a DNS
arm asks for the steered name (its PoP's unicast address, until gdnsd's health checks mark the PoP DOWN and the
caches let go). The same fault (lab/drills/faults.py) goes in at the same PoP in every arm, once per TTL for the
DNS arms. Outages come from the drill analysis (lab/drills/analysis.py) run over the HTTP answers; a watch of
every ISP's resolver (4 queries a second) says when its answer changed.

With a move (`Settings.move`, `--move CLIENT:ISP`) the event is a user move instead of a fault: the client is
re-homed to another ISP (lab/runtime/moves.py) in each arm and moved back at its end. Under anycast its next
request goes to the PoP BGP gives the new ISP; under DNS its stub keeps the old PoP's address until the cached
answer runs out, then asks the new ISP's resolver. Both arms report the RTT to the PoP serving it after the move.

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
from ..runtime import moves, paths
from ..runtime.state import RunningLab
from . import service
from .dnsquery import query
from .plan import SteeringPlan, steering_plan
from .stub import PRESETS, CachePolicy, StubResolver
from .tls import TlsSessions

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
    move: tuple[str, str] | None = None  # (client, ISP): a user move is the event instead of a fault
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


def move_model(sp: SteeringPlan, ttl: int, cache: CachePolicy) -> dict[str, float]:
    """A moved DNS client keeps its cached answer (the far PoP) for at most the stub's hold: the answer's TTL (at
    most the resolver's stretched TTL) or the client's floor; then the new ISP's resolver gives the near PoP."""
    r = sp.config.resolvers
    hold = max(float(max(ttl, r.min_ttl)), cache.floor_s)
    return {"cache_hold_max_s": hold, "near_by_max_s": hold}


def fault_window(settings: Settings, sp: SteeringPlan, ttl: int) -> float:
    if settings.fault_s is not None:
        return settings.fault_s
    if settings.move is not None:
        return max(8.0, move_model(sp, ttl, settings.cache)["near_by_max_s"] + 5.0)
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
    summary_extra: dict[str, Any] = field(default_factory=dict)  # measured at the event (a move's ping)
    tls_resumed: dict[str, bool | None] = field(default_factory=dict)  # client -> its session resumed at the end
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
    move: dict[str, str] | None = None  # client, from, to, near_pop (the new ISP's), far_pop (its home's)
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
                "health_checks": self.health, "resolvers": self.resolvers, "move": self.move,
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
            "tls_session_resumed": arm.tls_resumed.get(c.name),
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
        "tls_resumed_affected": sum(1 for c in affected if c["tls_session_resumed"]),
        "tls_resumed_others": sum(1 for c in others if c["tls_session_resumed"]),
        "keepalive_at_fault": sum(1 for c in arm.clients if c["keepalive_at_fault"]),
    }
    down = next((t for t, st in arm.states if t >= arm.fault_t and not st.get(pop, "UP").startswith("UP")), None)
    arm.summary["health_down_s"] = None if down is None else round(down - arm.fault_t, 3)  # gdnsd marked it DOWN
    if arm.kind == "dns":
        arm.summary["resolver_changed_s"] = analysis.stats(
            [c["resolver_changed_s"] for c in affected if c["resolver_changed_s"] is not None])
        arm.summary["used_new_pop_s"] = analysis.stats(
            [c["used_new_pop_s"] for c in affected if c["used_new_pop_s"] is not None])


def _median_ms(records: list[http_load.HttpRecord], pop: str | None, conn: str) -> float | None:
    ms = [r.ms for r in records if r.pop == pop and r.conn == conn]
    return round(statistics.median(ms), 2) if ms else None


def analyse_move(arm: Arm, lab: RunningLab, move: dict[str, str], load: http_load.HttpLoad,
                 stub: StubResolver) -> None:
    """The mover's requests after the move: which PoP served them, from when the near one, and at what RTT (the
    median time of a request on a kept-alive connection: one round trip and the proxy); everyone else's failures."""
    client, near, far = move["client"], move["near_pop"], move["far_pop"]
    records = sorted(load.records, key=lambda r: r.t)
    arm.records = records
    t0, end = arm.fault_t, arm.restore_t if arm.restore_t is not None else float("inf")
    mine = [r for r in records if r.client == client]
    before = [r for r in mine if r.t < t0 and r.error is None]
    after = [r for r in mine if t0 <= r.t < end]
    ok = [r for r in after if r.error is None]
    first = ok[0] if ok else None
    # The next request: the first one begun on a new connection once the client was on its new ISP (a kept-alive
    # connection from before the move still has the vanished address; it breaks, as in every arm).
    following = next((r for r in after if r.conn == "new"), None)
    on_near = next((r.t for r in ok if r.pop == near), None)
    # Failed: every request the move broke, those in flight when it began as well.
    began = t0 - float(arm.summary_extra.get("move_took_s", 0.0))
    failed = Counter(r.error for r in mine if r.error is not None and r.t + r.ms / 1000 >= began and r.t < end)
    entry: dict[str, Any] = {
        "name": client, "isp": move["from"], "moved_to": move["to"], "affected": True,
        "pop_before": Counter(r.pop for r in before).most_common(1)[0][0] if before else None,
        "first_after_move": None if first is None else {
            "after_s": round(first.t - t0, 3), "pop": first.pop, "conn": first.conn, "ms": round(first.ms, 2)},
        "next_request": None if following is None else {
            "after_s": round(following.t - t0, 3), "pop": following.pop, "error": following.error,
            "conn": following.conn},
        "on_near_pop_s": None if on_near is None else round(on_near - t0, 3),
        "requests_after_move": {pop: sum(1 for r in ok if r.pop == pop) for pop in sorted({r.pop or "" for r in ok})},
        # the PoP of its last answer begun within N s of the move: still the far one?
        "on_far_pop_after": {f"{n:g}s": (last.pop == far) if (last := next(
            (r for r in reversed(ok) if r.t < t0 + n), None)) is not None else None for n in STILL_AFTER_S},
        "failed": sum(failed.values()), "failed_by_class": dict(failed),
        "keepalive_ms_home": _median_ms(before, far, "keepalive"),
        "keepalive_ms_far_after_move": _median_ms(ok, far, "keepalive"),
        "keepalive_ms_near_after_move": _median_ms(ok, near, "keepalive"),
        "new_conn_ms_far_after_move": _median_ms(ok, far, "new"),
        "new_conn_ms_near_after_move": _median_ms(ok, near, "new"),
    }
    if arm.kind == "dns":
        held = next((lk for lk in reversed(stub.lookups) if lk.client == client and lk.t < t0 and lk.kept_s), None)
        entry["cache_expires_after_move_s"] = None if held is None or held.kept_s is None else round(
            held.t + held.kept_s - t0, 3)
    others = Counter(r.client for r in records if r.client != client and r.t >= t0 and r.error is not None)
    arm.clients = [entry] + [{"name": c.name, "isp": c.isp or "", "affected": False, "failed": others[c.name]}
                             for c in lab.plan.clients if c.name != client]
    entry.update(arm.summary_extra)
    entry["tls_session_resumed"] = arm.tls_resumed.get(client)
    arm.summary = {"mover": entry, "failed_requests_other_clients": sum(others.values()), "requests": len(records)}


def _fresh_lookup(stub: StubResolver, client: str, hold_s: float) -> None:
    """Until the client's stub has just been given an answer to keep for (nearly) the whole hold, so the move comes
    when its cached answer has the full TTL to run: DNS steering's worst case, and its TTL visible. The resolver
    hands out what is left of its own copy's TTL, so this waits at most about one TTL (bounded: hold + 2 s)."""
    deadline = time.monotonic() + hold_s + 2.0
    while time.monotonic() < deadline:
        last = next((lk for lk in reversed(stub.lookups) if lk.client == client and lk.address), None)
        if last is not None and time.time() - last.t < 0.25 and (last.kept_s or 0) >= 0.75 * hold_s:
            return
        time.sleep(0.02)


def _ping_ms(lab: RunningLab, client: str, address: str, count: int = 5) -> float | None:
    """The mean ICMP RTT from the client to an address (bounded: 5 echoes 0.2 s apart, 1 s wait each)."""
    out = subprocess.run(lab.exec_argv(client, ["ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", "1",
                                                address]), capture_output=True, text=True, timeout=count + 5)
    line = next((x for x in out.stdout.splitlines() if "min/avg/max" in x), None)
    return None if line is None else round(float(line.split("=")[1].split("/")[1]), 2)


def _moved(lab: RunningLab, arm: Arm, client: str, stub: StubResolver) -> None:
    """The move's moment is when the client is on its new ISP; the RTT to what it uses then."""
    began, arm.fault_t = arm.fault_t, time.time()
    address = _using(lab, arm, stub)(client)
    arm.summary_extra = {"move_took_s": round(arm.fault_t - began, 3), "ping_address": address,
                         "ping_ms": None if address is None else _ping_ms(lab, client, address)}


def _begin(lab: RunningLab, result: Result, settings: Settings) -> Callable[[], object]:
    """Put the arm's event in place (the fault, or the move); returns its undo."""
    if settings.move is not None:
        client = settings.move[0]
        moves.move(lab, client, settings.move[1])
        return lambda: moves.move_home(lab, client)
    return faults.inject(lab, Fault(mode=result.fault, pop=result.pop)).undo  # type: ignore[arg-type]


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    if stop is None:
        time.sleep(max(0.0, seconds))
    else:
        stop.wait(max(0.0, seconds))


def _instruments(lab: RunningLab, sp: SteeringPlan, arm: Arm, settings: Settings,
                 window: float) -> tuple[http_load.HttpLoad, StubResolver, ResolverWatch, TlsSessions]:
    """The arm's load (resolving through the stub), its resolver watch, and its TLS session check."""
    clients = [c.name for c in lab.plan.clients]
    max_s = settings.baseline_s + window + RESTORE_ALLOWANCE_S + settings.settle_s + 10.0
    load = http_load.HttpLoad(lab, http_load.LoadSettings(
        clients=clients, paths=LOAD_PATHS, keepalive_hz=settings.keepalive_hz, new_conn_hz=settings.new_conn_hz,
        timeout_s=settings.timeout_s, max_s=max_s), paths.ca_dir(lab.name) / "ca.pem")
    load.host = arm.hostname
    stub = StubResolver(lab, sp, arm.hostname, settings.cache, {c: lab.pid(c) for c in clients})
    load.resolve = stub
    tls = TlsSessions(lab, lab.directory / "steering" / "tls" / arm.name, arm.hostname, clients,
                      _using(lab, arm, stub))
    return load, stub, ResolverWatch(lab, sp, arm.hostname, max_s), tls


def _using(lab: RunningLab, arm: Arm, stub: StubResolver) -> Callable[[str], str | None]:
    """The address each client uses now: the anycast one, or the one its stub last got (held or just expired)."""
    anycast = str(lab.plan.anycast.ip)
    return (lambda _client: anycast) if arm.kind == "anycast" else stub.last


def _ready_for(lab: RunningLab, sp: SteeringPlan, arm: Arm, serial: int) -> None:
    """The arm's TTL served, every PoP healthy, every resolver giving its first choice, and empty caches."""
    if arm.kind == "dns":
        service.set_ttl(lab, arm.ttl, serial)
    service.flush_resolvers(lab)
    missing = service.wait_ready(lab, ready_timeout(sp))
    if not missing and arm.kind == "dns":
        missing = wait_for_first_choices(lab, sp, arm.hostname, ready_timeout(sp))
        service.flush_resolvers(lab)  # the arm starts with empty caches
    if missing:
        raise LabError(f"steering not ready before the {arm.name} arm: {'; '.join(missing)}")


def run_arm(lab: RunningLab, sp: SteeringPlan, result: Result, arm: Arm, settings: Settings,
            progress: Callable[[str], None], serial: int) -> None:
    """One arm: wait until every PoP is healthy again, load, fault, restore, analyse. The fault is always undone."""
    _ready_for(lab, sp, arm, serial)
    window = fault_window(settings, sp, max(settings.ttls or [arm.ttl]))
    arm.model = {} if arm.kind != "dns" else move_model(sp, arm.ttl, settings.cache) if settings.move \
        else model(sp, result.fault, arm.ttl, settings.cache)
    clients = [c.name for c in lab.plan.clients]
    load, stub, watch, tls = _instruments(lab, sp, arm, settings, window)
    undo: Callable[[], object] | None = None
    event = (f"{settings.move[0]} moves to {settings.move[1]}" if settings.move else f"{result.fault} at {result.pop}")
    progress(f"{arm.name}: {len(clients)} clients load {arm.hostname} for {settings.baseline_s:g} s, then "
             f"{event} for {window:g} s")
    watch.start()
    load.start()
    try:
        _sleep(settings.baseline_s, None)
        if settings.move is not None and arm.kind == "dns":
            _fresh_lookup(stub, settings.move[0], arm.model["cache_hold_max_s"])
        tls.save()
        arm.fault_t = time.time()
        with interrupts.held():  # in place whole, and known to be: the finally block undoes it
            undo = _begin(lab, result, settings)
        if settings.move is not None:
            _moved(lab, arm, settings.move[0], stub)
        _sleep(window - (time.time() - arm.fault_t), None)
        arm.tls_resumed = tls.resume()  # where each client is served at the end of the event
        progress(f"{arm.name}: undoing {event}")
        arm.restore_t = time.time()
        undoing, undo = undo, None  # a failed restore is not tried twice
        undoing()
        _sleep(settings.settle_s, None)
    except BaseException as exc:
        arm.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        try:
            if undo is not None:  # an error or an interrupt: the fault goes, whatever comes next
                arm.restore_t = arm.restore_t or time.time()
                with interrupts.held(raise_pending=False):
                    undo()
        finally:  # the load and the watch stop even when the restore fails, before anyone tears the lab down
            load.stop()
            watch.stop()
        arm.answers = list(watch.answers)
        arm.states = list(watch.states)
        if load.error is not None and arm.error is None:
            arm.error = f"HTTP load failed: {load.error}"
        if arm.fault_t and result.move is not None:
            analyse_move(arm, lab, result.move, load, stub)
        elif arm.fault_t:
            analyse_arm(arm, lab, result.pop, load, settings)


def _move_of(lab: RunningLab, sp: SteeringPlan, move: tuple[str, str]) -> dict[str, str]:
    """Check a move before anything starts; the PoPs the mover should see (each ISP's first choice)."""
    client, isp = move
    moves.check(lab.plan, client, isp)
    if moves.homes(lab.directory).get(client) is not None:
        raise LabError(f"{client} is away from home already (`anycastlab move {client} --home` first)")
    home = lab.plan.nodes[client].isp
    assert home is not None
    if home == isp:
        raise LabError(f"{client} is on {isp} already: move it to another ISP")
    near, far = sp.resolvers[isp].pops[0], sp.resolvers[home].pops[0]
    if near == far:
        raise LabError(f"{home} and {isp} are both served by {near}: the move would show nothing; choose an ISP "
                       f"another PoP serves ({', '.join(i for i, r in sp.resolvers.items() if r.pops[0] != far)})")
    return {"client": client, "from": home, "to": isp, "near_pop": near, "far_pop": far}


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
    move = _move_of(lab, sp, settings.move) if settings.move is not None else None
    pop = move["far_pop"] if move else settings.pop or default_pop(sp, lab.plan.topology.origin.pops)
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
    result = Result(lab.name, "move" if move else settings.fault, pop, settings, budget_s(settings, sp), health,
                    resolvers, move=move, started=time.time())
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
