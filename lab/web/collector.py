"""What the web view shows, gathered from a running lab cheaply, with the lab's own readers.

Measured here (the default lab): a vtysh call costs ~44 ms of CPU, a `probe` dns round ~37 ms. Asking every
router's FRR every 2 s took 0.6 of a core and doubled a drill's convergence, so FRR is asked when something
says it changed, plus a slow round-robin as a safety net:

- Where clients land: the drills' own continuous DNS probe (probes/watch.py) at PROBE_HZ per client, its
  sockets opened once; while a drill runs, the drill's 20 Hz probes instead (drills/live.py's stream), so
  the page adds no probe traffic to a drill and shows exactly what the drill measures.
- BGP sessions and announcements (observe.sessions, observe.announcing: one vtysh call each): asked for a
  router when its bgpd.log says a session changed (`bgp log-neighbor-changes`, classified as the drills'
  log follower does) or, for a PoP, that it sent updates; for a PoP when a drill's fault or restore names
  it or its proxy's health changes (then again a little later); and one router or PoP every SWEEP_S, in turn.
  For HOLD_S after a drill's fault or restore, while BGP converges, neither FRR nor the proxies are asked at
  all: a vtysh call costs the CPU the routers then need, and the drill measures that convergence. What came
  due waits.
- Each proxy's health and counters from its management socket (the `stats` verb's GET /stats) every STATS_S.
- The drill stream is tailed every DRILL_S, the logs every LOG_S: a stat() each when nothing was written.

Each change calls `publish(kind, data)`: "state" with the whole (small) state when it changed, "drill"
when a drill begins, "probes" with a drill's new records. A state whose only news is RTTs, probe times or
counters waits MINOR_GAP_S after the last one sent: with every client probed each second, sending each
change made ten messages a second, and the page's redraws took 0.11 of a core of the browser's renderer.
Blocking readers run in a thread pool, so the server's loop only ever waits on sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from .. import observe
from ..colours import UNKNOWN, pop_colours
from ..drills import live
from ..drills.edgestats import CACHED, FETCHED
from ..drills.logs import classify
from ..edge.endpoints import proxy_socket
from ..edge.mgmt import MgmtError, call
from ..errors import LabError
from ..predict import predict
from ..probes.watch import ProbeRecord, watch
from ..runtime import paths, planfile
from ..runtime.state import RunningLab
from . import layout

PROBE_HZ = 1.0
PROBE_TIMEOUT_S = 1.0
WATCH_CHUNK_S = 3600.0  # one watch() runs this long (bounded), then the next starts
SWEEP_S = 2.0
RECHECK_S = (0.0, 0.4, 1.2, 3.0)  # after something says a PoP's announcement may have changed
MIN_GAP_S = 0.3  # one router is not asked the same thing twice within this
HOLD_S = 0.5  # no FRR or proxy call this long after a drill's fault or restore (a withdraw converges in 0.2-0.3 s)
STATS_S = 1.0
DRILL_S = 0.1
LOG_S = 0.25
MINOR_GAP_S = 0.5
MINOR = {"clients": ("rtt_ms", "t"), "pops": ("rps", "hit_ratio", "requests")}  # what changes all the time
MAX_RECORDS = 200_000  # a drill's records kept for pages that connect late (20 Hz x 14 clients: 12 min)
SESSION_KINDS = {"session-down", "session-up", "notification", "bfd"}
ANNOUNCE_KINDS = {"withdraw-sent", "update-sent", "graceful-shutdown"}

Publish = Callable[[str, Any], None]
T = TypeVar("T")
Ask = tuple[str, str]  # ("sessions", router) or ("announcing", pop)


class _Watch:
    """probes/watch.py in a thread for a set of clients; its records are drained by the collector's loop."""

    def __init__(self, lab: RunningLab) -> None:
        self.lab = lab
        self.records: deque[ProbeRecord] = deque(maxlen=100_000)
        self.clients: tuple[str, ...] = ()
        self.error: str | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def follow(self, clients: list[str]) -> None:
        """Probe these clients (none: stop); blocks up to a probe timeout when the set changes."""
        if tuple(clients) == self.clients and (self._thread is not None or not clients):
            return
        self.halt()
        self.clients = tuple(clients)
        if clients:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(clients, self._stop), name="web-probes",
                                            daemon=True)
            self._thread.start()

    def _run(self, clients: list[str], stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                for record in watch(self.lab, PROBE_HZ, WATCH_CHUNK_S, clients, stop, timeout_s=PROBE_TIMEOUT_S):
                    self.records.append(record)
                self.error = None
            except (LabError, OSError) as exc:
                self.error = f"probes failed: {exc}"
                stop.wait(2.0)

    def halt(self) -> None:
        if self._stop is not None and self._thread is not None:
            self._stop.set()
            self._thread.join(PROBE_TIMEOUT_S + 3)
        self._stop, self._thread, self.clients = None, None, ()


class Collector:
    def __init__(self, lab: RunningLab, publish: Publish) -> None:
        self.lab = lab
        self.plan = lab.plan
        self.publish = publish
        self.pool = ThreadPoolExecutor(6, thread_name_prefix="web")
        self.reader = live.LiveReader(lab.directory)
        self.watcher = _Watch(lab)
        self.records: list[list[Any]] = []
        self.clients: dict[str, dict[str, Any]] = {
            c.name: {"pop": None, "rtt_ms": None, "lost": False, "t": None, "source": None, "error": None}
            for c in self.plan.clients}
        self.pops: dict[str, dict[str, Any]] = {
            p.name: {"announcing": None, "proxy": None, "rps": None, "hit_ratio": None, "requests": None}
            for p in self.plan.pops}
        self.sessions: dict[str, list[observe.Session] | str] = {}
        self.sessions_down: list[dict[str, Any]] = []
        self.sessions_total = 0
        self.lab_error: str | None = None
        self.updated: dict[str, float | None] = {"probes": None, "control": None, "stats": None}
        self.asked = {"vtysh": 0}  # how many FRR calls the view made (the benchmark reports it)
        self._counters: dict[str, tuple[float, int]] = {}
        self._last_state = ""
        self._last_major = ""
        self._last_sent = float("-inf")  # time.monotonic() of the last state sent
        self._due: list[tuple[float, str, str]] = []  # a heap of (monotonic time, kind, name)
        self._last_ask: dict[Ask, float] = {}
        self._hold_until = float("-inf")  # time.monotonic() until which FRR is not asked (HOLD_S)
        self._sweep = [("announcing", p.name) for p in self.plan.pops] + [("sessions", r.name)
                                                                         for r in self.plan.routers]
        self._topology = self._build_topology()
        self._plan_seen = _mtime(paths.plan_file(lab.directory))

    # -- what a page gets first --------------------------------------------------------------------------

    def topology(self) -> dict[str, Any]:
        return self._topology

    def _build_topology(self) -> dict[str, Any]:
        plan = self.plan
        placed = layout.place(plan)
        routes = predict(plan.topology)  # per ISP: a moved client is predicted where it is now
        prediction = {c.name: routes.pops_of(c.isp or "") for c in plan.clients}
        pops = [p.name for p in plan.pops]
        nodes = [{"name": name, "role": node.role, "asn": node.asn, "isp": node.isp,
                  "lat": round(placed[name].lat, 4), "lon": round(placed[name].lon, 4), "placed": placed[name].how}
                 for name, node in plan.nodes.items()]
        links = [{"a": link.a, "b": link.b, "kind": link.kind} for link in plan.links]
        return {"lab": self.lab.name, "topology": plan.topology.name, "runtime": self.lab.runtime,
                "anycast": str(plan.topology.anycast.ip), "asn": plan.topology.asn, "pops": pops,
                "colours": pop_colours(pops), "unknown_colour": UNKNOWN, "nodes": nodes, "links": links,
                "predicted": {c: sorted(p) for c, p in prediction.items()},
                "intervals_s": {"probes": 1 / PROBE_HZ, "frr_sweep": SWEEP_S, "stats": STATS_S, "drill": DRILL_S}}

    def state(self) -> dict[str, Any]:
        drill = self.reader.drill
        served: dict[str, int] = dict.fromkeys(self.pops, 0)
        for c in self.clients.values():
            if c["pop"] in served and not c["lost"]:
                served[c["pop"]] += 1
        pops = {name: {**info, "clients": served[name]} for name, info in self.pops.items()}
        return {"t": round(time.time(), 3), "lab_error": self.lab_error, "clients": self.clients, "pops": pops,
                "sessions_down": self.sessions_down, "sessions_total": self.sessions_total,
                "updated": self.updated, "frr_calls": self.asked["vtysh"], "drill": _drill_json(drill)}

    def drill_history(self) -> dict[str, Any] | None:
        drill = self.reader.drill
        if drill is None:
            return None
        return {**_drill_json(drill), "records": self.records}  # type: ignore[dict-item]

    def _changed(self) -> None:
        """Send the state if it changed: at once when a client's PoP, a PoP's announcement or health, a
        session or the drill did; otherwise (MINOR) no sooner than MINOR_GAP_S after the last one sent."""
        state = self.state()
        news = {k: v for k, v in state.items() if k not in ("t", "updated", "frr_calls")}
        text = json.dumps(news, sort_keys=True)
        if text == self._last_state:
            return
        major = json.dumps({**news, **{group: {name: {k: v for k, v in entry.items() if k not in fields}
                                                for name, entry in news[group].items()}
                                        for group, fields in MINOR.items()}}, sort_keys=True)
        now = time.monotonic()
        if major == self._last_major and now - self._last_sent < MINOR_GAP_S:
            return
        self._last_state, self._last_major, self._last_sent = text, major, now
        self.publish("state", state)

    # -- the loops -----------------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args))

    async def run(self) -> None:
        try:
            await asyncio.gather(self._probe_loop(), self._control_loop(), self._log_loop(), self._stats_loop(),
                                 self._drill_loop())
        finally:
            stopping = asyncio.get_running_loop().run_in_executor(None, self.watcher.halt)
            with contextlib.suppress(BaseException):
                await asyncio.shield(stopping)
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _follow_plan(self) -> None:
        """A client moved (`anycastlab move`, a drill's move step) rewrote plan.json: the page gets the new map."""
        seen = _mtime(paths.plan_file(self.lab.directory))
        if seen == self._plan_seen or seen is None:
            return
        self._plan_seen = seen
        try:
            self.plan = self.lab.plan = planfile.load(self.lab.directory)
        except (OSError, ValueError, LabError):  # half-written or gone (the lab is going down): next time
            return
        self._topology = self._build_topology()
        self.publish("topology", self._topology)

    def _drill_running(self) -> bool:
        return self.reader.drill is not None and self.reader.drill.running

    async def _probe_loop(self) -> None:
        while True:
            drill = self.reader.drill
            drilled = set(drill.start.get("clients", [])) if drill is not None and drill.running else set()
            wanted = [c.name for c in self.plan.clients if c.name not in drilled] if self.lab_error is None else []
            if tuple(wanted) != self.watcher.clients:
                await self._call(self.watcher.follow, wanted)
            changed = False
            while self.watcher.records:
                r = self.watcher.records.popleft()
                now = self.clients.get(r.client)
                if r.client in drilled or now is None or (now["t"] is not None and now["t"] > r.t):
                    continue
                self.clients[r.client] = {"pop": r.pop, "rtt_ms": None if r.rtt_ms is None else round(r.rtt_ms, 2),
                                          "lost": r.pop is None, "t": round(r.t, 3), "source": "web dns probe",
                                          "error": None if r.pop else "no answer within 1 s"}
                changed = True
            if changed:
                self.updated["probes"] = round(time.time(), 3)
                self._changed()
            await asyncio.sleep(0.1)

    def want(self, kind: str, name: str, after: tuple[float, ...] = (0.0,)) -> None:
        now = time.monotonic()
        for delay in after:
            heapq.heappush(self._due, (now + delay, kind, name))

    def _ask(self, ask: Ask) -> tuple[Ask, Any]:
        kind, name = ask
        self.asked["vtysh"] += 1
        try:
            if kind == "announcing":
                return ask, observe.announcing(self.plan, self.lab.vty(name))
            return ask, observe.sessions(self.plan, name, self.lab.vty(name))
        except LabError as exc:
            return ask, (None if kind == "announcing" else str(exc))

    async def _control_loop(self) -> None:
        for kind, name in self._sweep:  # everything once at the start
            self.want(kind, name)
        next_sweep, turn = time.monotonic() + SWEEP_S, 0
        while True:
            await self._held()
            now = time.monotonic()
            if now >= next_sweep:
                self.want(*self._sweep[turn % len(self._sweep)])
                turn, next_sweep = turn + 1, now + SWEEP_S
            asks: list[Ask] = []
            while self._due and self._due[0][0] <= now:
                _, kind, name = heapq.heappop(self._due)
                if (kind, name) not in asks and now - self._last_ask.get((kind, name), -1e9) >= MIN_GAP_S:
                    asks.append((kind, name))
            if asks and not self._lab_gone():
                for ask in asks:
                    self._last_ask[ask] = now
                # the PoPs' announcements side by side (a drill's fault shows in one call's time), then sessions
                first = [a for a in asks if a[0] == "announcing"]
                sessions = [a for a in asks if a[0] == "sessions"]
                for later in sessions[4:]:  # at most 4 routers at a time: the rest in the next round
                    self._last_ask.pop(later, None)
                    self.want(*later)
                for group in (first, sessions[:4]):
                    for (kind, name), value in await asyncio.gather(*(self._call(self._ask, a) for a in group)):
                        if kind == "announcing":
                            self.pops[name]["announcing"] = value
                        else:
                            self.sessions[name] = value
                self._sessions_summary()
                self.updated["control"] = round(time.time(), 3)
                self._changed()
            await asyncio.sleep(0.05)

    def _sessions_summary(self) -> None:
        down: list[dict[str, Any]] = []
        seen: set[frozenset[str]] = set()
        for router, sessions in self.sessions.items():
            if isinstance(sessions, str):
                down.append({"router": router, "peer": None, "state": f"FRR not answering: {sessions}"})
                continue
            for s in sessions:
                seen.add(frozenset((router, s.peer)))
                if not s.established:
                    down.append({"router": router, "peer": s.peer, "state": s.state})
        self.sessions_down, self.sessions_total = down, len(seen)

    def _lab_gone(self) -> bool:
        if paths.state_file(self.lab.directory).exists():
            return False
        self.lab_error = f"lab {self.lab.name} is not running any more (its state file is gone)"
        self._changed()
        return True

    async def _log_loop(self) -> None:
        """bgpd.log of every router, tailed: a session change there asks that router; a PoP sending updates asks
        whether it still announces."""
        files = {r.name: self.lab.router_dir(r.name) / "bgpd.log" for r in self.plan.routers}
        offsets = {name: _size(path) for name, path in files.items()}
        pops = {p.name for p in self.plan.pops}
        while True:
            for router, path in files.items():
                size = _size(path)
                if size < offsets[router]:
                    offsets[router] = 0
                if size == offsets[router]:
                    continue
                try:
                    with path.open("rb") as f:
                        f.seek(offsets[router])
                        data = f.read(min(size - offsets[router], 1 << 20))
                except OSError:
                    continue
                end = data.rfind(b"\n") + 1
                offsets[router] += end
                kinds = {classify(line) for line in data[:end].decode(errors="replace").splitlines()}
                if kinds & SESSION_KINDS:
                    self.want("sessions", router, (0.0, 1.0))
                if router in pops and kinds & (ANNOUNCE_KINDS | SESSION_KINDS):
                    self.want("announcing", router, (0.0, 0.5))
            await asyncio.sleep(LOG_S)

    def _stats_of(self, pop: str) -> tuple[str, dict[str, Any] | None]:
        try:
            status, data = call(proxy_socket(self.lab.name, pop), "GET", "/stats", timeout=0.5)
        except MgmtError as exc:
            return ("slow" if isinstance(exc.__cause__, TimeoutError) else "down"), None
        if status != 200 or not isinstance(data, dict):
            return "down", None
        health = "ok"
        try:
            h_status, h_data = call(proxy_socket(self.lab.name, pop), "GET", "/health", timeout=0.5)
            if h_status != 200 or not isinstance(h_data, dict) or h_data.get("ok") is not True:
                health = "down"
        except MgmtError as exc:
            health = "slow" if isinstance(exc.__cause__, TimeoutError) else "down"
        return health, data

    async def _held(self) -> None:
        """Until the hold after a drill's step (HOLD_S) is over."""
        while (left := self._hold_until - time.monotonic()) > 0:
            await asyncio.sleep(left)

    async def _stats_loop(self) -> None:
        while True:
            await self._held()
            started = time.monotonic()
            pops = [p.name for p in self.plan.pops]
            results = await asyncio.gather(*(self._call(self._stats_of, p) for p in pops))
            now = time.monotonic()
            for pop, (health, data) in zip(pops, results, strict=True):
                info = self.pops[pop]
                if info["proxy"] is not None and info["proxy"] != health:  # the supervisor may withdraw it
                    self.want("announcing", pop, RECHECK_S)
                info["proxy"] = health
                if data is None:
                    info.update(rps=None, requests=None)
                    self._counters.pop(pop, None)
                    continue
                requests = int(data.get("requests", 0))
                before = self._counters.get(pop)
                info["rps"] = None if before is None or requests < before[1] or now <= before[0] \
                    else round((requests - before[1]) / (now - before[0]), 1)
                self._counters[pop] = (now, requests)
                info["requests"] = requests
                counts = data.get("cache_status", {})
                cached = sum(int(counts.get(k, 0)) for k in CACHED) if isinstance(counts, dict) else 0
                lookups = cached + (sum(int(counts.get(k, 0)) for k in FETCHED) if isinstance(counts, dict) else 0)
                info["hit_ratio"] = round(cached / lookups, 3) if lookups else None
            self.updated["stats"] = round(time.time(), 3)
            self._changed()
            await asyncio.sleep(max(0.1, STATS_S - (time.monotonic() - started)))

    def _drill_step(self, step: dict[str, Any]) -> None:
        """A fault or a restore: ask the PoPs and routers it concerns once BGP had HOLD_S from the step to
        converge undisturbed, and again as it settles."""
        if step.get("step") not in ("fail", "restore"):
            return
        at = step.get("t")
        since = max(0.0, time.time() - at) if isinstance(at, int | float) else 0.0
        self._hold_until = max(self._hold_until, time.monotonic() + HOLD_S - since)
        faults = [step["fault"]] if isinstance(step.get("fault"), dict) else [
            s["fault"] for s in (self.reader.drill.steps if self.reader.drill else [])
            if isinstance(s.get("fault"), dict)]
        for fault in faults:
            if fault.get("pop") in self.pops:
                self.want("announcing", fault["pop"], RECHECK_S)
                self.want("sessions", fault["pop"], RECHECK_S[1:])
            for end in fault.get("link") or []:
                if end in self.plan.nodes and self.plan.nodes[end].is_router:
                    self.want("sessions", end, RECHECK_S[1:])

    async def _drill_loop(self) -> None:
        was_running = False
        steps_seen = 0
        while True:
            began, records = self.reader.poll()
            if began:
                self.records = []
                self.publish("drill", self.drill_history())
            if records:
                self.records += records
                del self.records[:-MAX_RECORDS]
                for t, client, _seq, pop, rtt in records:
                    now = self.clients.get(client)
                    if now is None or (now["t"] is not None and now["t"] > t and now["source"] == "drill probes"):
                        continue
                    self.clients[client] = {"pop": pop, "rtt_ms": rtt, "lost": pop is None, "t": t,
                                            "source": "drill probes", "error": None if pop else "probe lost"}
                self.publish("probes", records)
            self._follow_plan()
            drill = self.reader.drill
            if began:
                steps_seen = 0
            if drill is not None and len(drill.steps) > steps_seen:
                for step in drill.steps[steps_seen:]:
                    self._drill_step(step)
                steps_seen = len(drill.steps)
            running = self._drill_running()
            if began or records or running != was_running:
                was_running = running
                self._changed()
            await asyncio.sleep(DRILL_S)


def _drill_json(drill: live.LiveDrill | None) -> dict[str, Any] | None:
    if drill is None:
        return None
    start = drill.start
    faults = [s for s in drill.steps if s.get("step") == "fail"]
    restores = [s for s in drill.steps if s.get("step") == "restore"]
    # in place: injected after the last restore (drills restore all at once, or at their end)
    since = restores[-1]["t"] if restores else float("-inf")
    active = [s["fault"] for s in faults if isinstance(s.get("fault"), dict) and s["t"] > since] \
        if drill.running else []
    return {"name": start.get("drill"), "description": start.get("description"), "started": start.get("t"),
            "clients": start.get("clients", []), "rate_hz": start.get("rate_hz"), "running": drill.running,
            "steps": drill.steps, "fault_t": faults[0]["t"] if faults else None,
            "restore_t": restores[0]["t"] if restores else None, "end": drill.end, "active_faults": active}


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def _size(path: Any) -> int:
    try:
        return int(path.stat().st_size)
    except OSError:
        return 0
