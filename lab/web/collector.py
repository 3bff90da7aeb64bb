"""What the web view shows, gathered from a running lab on a cheap schedule, with the lab's own readers.

- Where clients land: the dns probe (probes/dns.py, one query per client) once a second; while a drill
  runs, its own 20 Hz probes instead, read from its live stream (drills/live.py), so the page adds no
  probe traffic to a drill and shows exactly what the drill measures.
- Each PoP: announcing (observe.announcing) and every router's BGP sessions (observe.sessions), one vtysh
  call each, every CONTROL_S (the PoPs' announcements every ANNOUNCE_DRILL_S while a drill runs), the
  sessions one router at a time so FRR never sees a burst; proxy health and counters from the management
  sockets (the `stats` verb's GET /stats) every STATS_S. A drill's fault shows at once from its stream.
- The drill stream is tailed every DRILL_S: a stat() when nothing was written.

Each change calls `publish(kind, data)`: "state" with the whole (small) state when it changed, "drill"
when a drill begins, "probes" with a drill's new records. Blocking readers run in a thread pool, so the
server's loop only ever waits on sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from .. import observe
from ..colours import UNKNOWN, pop_colours
from ..drills import live
from ..drills.edgestats import CACHED, FETCHED
from ..edge.mgmt import MgmtError, call
from ..errors import LabError
from ..predict import predict
from ..probes import dns
from ..runtime import paths
from ..runtime.state import RunningLab
from ..services.edge import proxy_socket
from . import layout

PROBE_S = 1.0
PROBE_TIMEOUT_S = 0.8
CONTROL_S = 2.0
ANNOUNCE_DRILL_S = 1.0
STATS_S = 1.0
DRILL_S = 0.1
MAX_RECORDS = 200_000  # a drill's records kept for pages that connect late (20 Hz x 14 clients: 12 min)

Publish = Callable[[str, Any], None]
T = TypeVar("T")


class Collector:
    def __init__(self, lab: RunningLab, publish: Publish) -> None:
        self.lab = lab
        self.plan = lab.plan
        self.publish = publish
        self.pool = ThreadPoolExecutor(8, thread_name_prefix="web")
        self.reader = live.LiveReader(lab.directory)
        self.records: list[list[Any]] = []
        self.clients: dict[str, dict[str, Any]] = {
            c.name: {"pop": None, "rtt_ms": None, "lost": False, "t": None, "source": None, "error": None}
            for c in self.plan.clients}
        self.pops: dict[str, dict[str, Any]] = {
            p.name: {"announcing": None, "proxy": None, "rps": None, "hit_ratio": None, "requests": None}
            for p in self.plan.pops}
        self.sessions_down: list[dict[str, Any]] = []
        self.sessions_total = 0
        self.lab_error: str | None = None
        self.updated: dict[str, float | None] = {"probes": None, "control": None, "stats": None}
        self._counters: dict[str, tuple[float, int]] = {}
        self._last_state = ""
        self._topology = self._build_topology()

    # -- what a page gets first --------------------------------------------------------------------------

    def topology(self) -> dict[str, Any]:
        return self._topology

    def _build_topology(self) -> dict[str, Any]:
        plan = self.plan
        placed = layout.place(plan)
        prediction = predict(plan.topology).clients()
        pops = [p.name for p in plan.pops]
        nodes = [{"name": name, "role": node.role, "asn": node.asn, "isp": node.isp,
                  "lat": round(placed[name].lat, 4), "lon": round(placed[name].lon, 4), "placed": placed[name].how}
                 for name, node in plan.nodes.items()]
        links = [{"a": link.a, "b": link.b, "kind": link.kind} for link in plan.links]
        return {"lab": self.lab.name, "topology": plan.topology.name, "runtime": self.lab.runtime,
                "anycast": str(plan.topology.anycast.ip), "asn": plan.topology.asn, "pops": pops,
                "colours": pop_colours(pops), "unknown_colour": UNKNOWN, "nodes": nodes, "links": links,
                "predicted": {c: sorted(p) for c, p in prediction.items()},
                "intervals_s": {"probes": PROBE_S, "control": CONTROL_S, "stats": STATS_S, "drill": DRILL_S}}

    def state(self) -> dict[str, Any]:
        drill = self.reader.drill
        served: dict[str, int] = dict.fromkeys(self.pops, 0)
        for c in self.clients.values():
            if c["pop"] in served and not c["lost"]:
                served[c["pop"]] += 1
        pops = {name: {**info, "clients": served[name]} for name, info in self.pops.items()}
        return {"t": round(time.time(), 3), "lab_error": self.lab_error, "clients": self.clients, "pops": pops,
                "sessions_down": self.sessions_down, "sessions_total": self.sessions_total,
                "updated": self.updated, "drill": _drill_json(drill)}

    def drill_history(self) -> dict[str, Any] | None:
        drill = self.reader.drill
        if drill is None:
            return None
        return {**_drill_json(drill), "records": self.records}  # type: ignore[dict-item]

    def _changed(self) -> None:
        state = self.state()
        text = json.dumps({k: v for k, v in state.items() if k not in ("t", "updated")}, sort_keys=True)
        if text != self._last_state:
            self._last_state = text
            self.publish("state", state)

    # -- the loops -----------------------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.pool, partial(fn, *args))

    async def run(self) -> None:
        try:
            await asyncio.gather(self._probe_loop(), self._announce_loop(), self._sessions_loop(), self._stats_loop(),
                                 self._drill_loop())
        finally:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _drill_running(self) -> bool:
        return self.reader.drill is not None and self.reader.drill.running

    async def _probe_loop(self) -> None:
        while True:
            started = time.monotonic()
            drill = self.reader.drill
            drilled = set(drill.start.get("clients", [])) if drill is not None and drill.running else set()
            clients = [c for c in self.plan.clients if c.name not in drilled]
            if clients and self.lab_error is None:
                try:
                    found = await self._call(dns.measure, self.lab, clients, PROBE_TIMEOUT_S, 1)
                except (LabError, OSError) as exc:
                    found = {}
                    self.lab_error = f"probes failed: {exc}"
                now = round(time.time(), 3)
                for name, result in found.items():
                    if name in drilled:
                        continue
                    self.clients[name] = {"pop": result.pop, "rtt_ms": None if result.rtt_ms is None
                                          else round(result.rtt_ms, 2), "lost": result.pop is None, "t": now,
                                          "source": "web dns probe", "error": result.error}
                self.updated["probes"] = now
                self._changed()
            await asyncio.sleep(max(0.05, PROBE_S - (time.monotonic() - started)))

    def _router_sessions(self, router: str) -> list[observe.Session] | str:
        try:
            return observe.sessions(self.plan, router, self.lab.vty(router))
        except LabError as exc:
            return str(exc)

    def _announcing(self, pop: str) -> bool | None:
        try:
            return observe.announcing(self.plan, self.lab.vty(pop))
        except LabError:
            return None

    def _lab_gone(self) -> bool:
        if paths.state_file(self.lab.directory).exists():
            return False
        self.lab_error = f"lab {self.lab.name} is not running any more (its state file is gone)"
        self._changed()
        return True

    async def _announce_loop(self) -> None:
        """The PoPs' announcements (one vtysh call each): every CONTROL_S, every ANNOUNCE_DRILL_S in a drill."""
        while True:
            started = time.monotonic()
            if not self._lab_gone():
                pops = [p.name for p in self.plan.pops]  # asked side by side: one round takes one call's time
                found = await asyncio.gather(*(self._call(self._announcing, pop) for pop in pops))
                for pop, on in zip(pops, found, strict=True):
                    self.pops[pop]["announcing"] = on
                self._changed()
            period = ANNOUNCE_DRILL_S if self._drill_running() else CONTROL_S
            await asyncio.sleep(max(0.1, period - (time.monotonic() - started)))

    async def _sessions_loop(self) -> None:
        """Every router's BGP sessions, one vtysh call at a time, every CONTROL_S."""
        while True:
            started = time.monotonic()
            if not self._lab_gone():
                down: list[dict[str, Any]] = []
                seen: set[frozenset[str]] = set()
                for router in [r.name for r in self.plan.routers]:
                    sessions = await self._call(self._router_sessions, router)
                    if isinstance(sessions, str):
                        down.append({"router": router, "peer": None, "state": f"FRR not answering: {sessions}"})
                        continue
                    for s in sessions:
                        seen.add(frozenset((router, s.peer)))
                        if not s.established:
                            down.append({"router": router, "peer": s.peer, "state": s.state})
                self.sessions_down, self.sessions_total = down, len(seen)
                self.updated["control"] = round(time.time(), 3)
                self._changed()
            await asyncio.sleep(max(0.1, CONTROL_S - (time.monotonic() - started)))

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

    async def _stats_loop(self) -> None:
        while True:
            started = time.monotonic()
            pops = [p.name for p in self.plan.pops]
            results = await asyncio.gather(*(self._call(self._stats_of, p) for p in pops))
            now = time.monotonic()
            for pop, (health, data) in zip(pops, results, strict=True):
                info = self.pops[pop]
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

    async def _drill_loop(self) -> None:
        was_running = False
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
