"""The experiment: counters in every PoP, legitimate HTTPS load from the clients that are not bots, the bots,
one counter sample a second (the policy reacts to each), then everything undone: bots ended, policy
actions reverted, counters removed, and BGP checked to be back where it was. An interrupt (SIGINT, SIGTERM,
SIGHUP) unwinds the same way and keeps what was measured."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import interrupts
from ..drills import http_load
from ..probes.http import lab_ca
from ..probes.probe import predictions
from ..runtime.state import RunningLab
from . import bots as botmod
from . import counters
from .attack import Attack, check, choose_bots
from .policy import Action, Reactor

SAMPLE_S = 1.0
SETTLE_S = 1.0  # after the last bot: packets still crossing the delayed links
WARMUP_S = 1.0  # legitimate load before the attack, so each client has a PoP to compare against
LOAD_BUDGET_HZ = 60.0  # legitimate requests per second over all clients (a 2-core machine shares them)
RESTORE_S = 20.0  # how long BGP may take to put every ISP back on its PoP after the policy is undone

Progress = Callable[[str], None]


@dataclass
class Sample:
    t: float
    pps: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"t": round(self.t, 2), "pps": {p: round(v, 1) for p, v in self.pps.items()}}


@dataclass
class Result:
    attack: Attack
    address: str
    pops: list[str]
    bots: list[dict[str, Any]] = field(default_factory=list)
    received: dict[str, int] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    legit: dict[str, Any] = field(default_factory=dict)
    clients: list[dict[str, Any]] = field(default_factory=list)
    restored: bool | None = None
    problems: list[str] = field(default_factory=list)
    interrupted: BaseException | None = None
    elapsed_s: float = 0.0

    @property
    def sent(self) -> int | None:
        counts = [b["sent"] for b in self.bots]
        return None if not counts or any(c is None for c in counts) else sum(counts)

    def shares(self) -> dict[str, float]:
        total = sum(self.received.values())
        return {p: (self.received.get(p, 0) / total if total else 0.0) for p in self.pops}

    def bot_shares(self) -> dict[str, float]:
        n = len(self.bots)
        return {p: sum(1 for b in self.bots if b["catchment"] == p) / n if n else 0.0 for p in self.pops}

    def to_json(self) -> dict[str, Any]:
        sent, received = self.sent, sum(self.received.values())
        shares, bot_shares = self.shares(), self.bot_shares()
        over = {p: round(shares[p] / bot_shares[p], 3) for p in self.pops if bot_shares[p] > 0}
        return {
            "attack": self.attack.to_json(), "address": self.address,
            "sent": sent, "received": received,
            "delivered": None if not sent else round(received / sent, 4),
            "pops": [{"pop": p, "received": self.received.get(p, 0), "share": round(shares[p], 4),
                      "bot_share": round(bot_shares[p], 4),
                      "peak_pps": round(max((s.pps.get(p, 0.0) for s in self.samples), default=0.0), 1),
                      "legit": self.legit.get(p)} for p in self.pops],
            "share_over_bot_share_max": max(over.values(), default=None),
            "bots": self.bots, "samples": [s.to_json() for s in self.samples],
            "actions": [a.to_json() for a in self.actions], "clients": self.clients,
            "restored": self.restored, "problems": self.problems,
            "interrupted": None if self.interrupted is None else interrupts.describe(self.interrupted),
            "elapsed_s": round(self.elapsed_s, 2),
        }


def run_attack(lab: RunningLab, attack: Attack, directory: Path, progress: Progress = lambda _: None) -> Result:
    """Run one attack on a running lab; `directory` holds the bots' logs. Interrupts are caught here (the
    result says so and carries the exception), after everything is undone."""
    plan = lab.plan
    check(attack, plan)
    pops = [p.name for p in plan.pops]
    hosts = choose_bots(plan, attack)
    botmod.preflight(lab, [h.name for h in hosts])
    bot_names = {h.name for h in hosts}
    legit = [c.name for c in plan.clients if c.name not in bot_names]
    before = predictions(lab, plan.clients)
    catchment = {c.name: before.get(c.isp or "") for c in plan.clients}
    address = attack.address(plan)
    result = Result(attack, address, pops)
    rate = min(2.0, LOAD_BUDGET_HZ / max(1, len(legit)))
    load = http_load.HttpLoad(lab, http_load.LoadSettings(
        clients=legit, paths=["/static/1k.bin"], keepalive_hz=rate / 2, new_conn_hz=rate / 2, timeout_s=2.0,
        max_s=attack.duration_s + 30.0), lab_ca(lab)) if legit else None
    reactor = Reactor(lab, attack.policy, attack.threshold_pps, result.actions)
    started: list[botmod.Bot] = []
    t0 = time.time()
    installed = False
    try:
        counters.install(lab, pops, address)
        installed = True
        if load is not None:
            load.start()
            time.sleep(WARMUP_S)
        progress(f"{attack.bots} bots ({attack.per_bot_pps:.0f} pps each, {attack.pps} pps in all) -> {address} "
                 f"for {attack.duration_s:g} s; policy {attack.policy}")
        t0 = time.time()
        started = botmod.start(lab, attack, [(h.name, h.isp or "") for h in hosts], directory)
        result.received = _sample(lab, attack, pops, started, reactor, result, t0, progress)
    except KeyboardInterrupt as exc:
        result.interrupted = exc
    finally:
        with interrupts.held(raise_pending=False):
            _unwind(lab, result, started, reactor, load, pops, installed, t0)
    result.bots = [{"host": b.host, "isp": b.isp, "catchment": catchment.get(b.host), "sent": b.sent()}
                   for b in started]
    if result.interrupted is None:
        with interrupts.catching():
            try:
                result.restored = _wait_restored(lab, before, progress)
            except KeyboardInterrupt as exc:
                result.interrupted = exc
    if load is not None:
        result.legit, result.clients = _legit(load, t0, catchment, {c.name: c.isp or "" for c in plan.clients})
    result.elapsed_s = time.time() - t0
    return result


def _sample(lab: RunningLab, attack: Attack, pops: list[str], started: list[botmod.Bot], reactor: Reactor,
            result: Result, t0: float, progress: Progress) -> dict[str, int]:
    """Each PoP's counters once a second until the bots are done (and SETTLE_S more), or the time bound; the
    policy reacts to each sample. Returns the final counts."""
    last, last_t = dict.fromkeys(pops, 0), time.monotonic()
    deadline = last_t + attack.duration_s + botmod.GRACE_S + 2.0
    ended: float | None = None
    while True:
        time.sleep(SAMPLE_S)
        now = counters.read(lab, pops)
        mono = time.monotonic()
        pps = {p: (now[p] - last[p]) / (mono - last_t) for p in pops}
        last, last_t = now, mono
        sample = Sample(time.time() - t0, pps)
        result.samples.append(sample)
        top = sorted(pps.items(), key=lambda kv: -kv[1])[:4]
        progress(f"t={sample.t:4.1f}s  " + "  ".join(f"{p} {v:.0f}" for p, v in top if v > 0) or "-")
        reactor.react(sample.t, pps)
        if ended is None and not botmod.running(started):
            ended = mono
        if (ended is not None and mono - ended >= SETTLE_S) or mono > deadline:
            return last


def _unwind(lab: RunningLab, result: Result, started: list[botmod.Bot], reactor: Reactor,
            load: http_load.HttpLoad | None, pops: list[str], installed: bool, t0: float) -> None:
    botmod.stop(started)
    if installed and not result.received:  # interrupted: what was counted so far
        try:
            result.received = counters.read(lab, pops)
        except Exception as exc:  # the report still says what else was measured
            result.problems.append(f"counters not read: {exc}")
    if load is not None:
        load.stop()
    result.problems += reactor.undo(time.time() - t0)
    if installed:
        left = counters.remove(lab, pops)
        if left:
            result.problems.append(f"counting rules not removed at {', '.join(left)}")


def _wait_restored(lab: RunningLab, before: dict[str, str | None], progress: Progress) -> bool:
    """True once every ISP's best path leads to the PoP it led to before the attack."""
    deadline = time.monotonic() + RESTORE_S
    while True:
        now = predictions(lab, lab.plan.clients)
        if now == before:
            return True
        if time.monotonic() > deadline:
            moved = sorted(isp for isp in before if now.get(isp) != before[isp])
            progress(f"not back after {RESTORE_S:.0f} s: {', '.join(moved)}")
            return False
        time.sleep(0.5)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 1)
    return round(statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1], 1)


def _legit(load: http_load.HttpLoad, t0: float, catchment: dict[str, str | None],
           isp_of: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per PoP: the legitimate requests it served during the attack (a failed one counts against the PoP the
    client last reached); per client: its PoP before the attack and the PoPs that answered it during it."""
    by_pop: dict[str, list[http_load.HttpRecord]] = {}
    seen: dict[str, list[str]] = {}
    last: dict[str, str | None] = dict(catchment)
    for r in sorted(load.records, key=lambda r: r.t):
        if r.pop is not None:
            last[r.client] = r.pop
        if r.t < t0:
            continue
        pop = r.pop or last.get(r.client)
        if pop is not None:
            by_pop.setdefault(pop, []).append(r)
        if r.pop is not None and r.pop not in seen.setdefault(r.client, []):
            seen[r.client].append(r.pop)
    legit = {}
    for pop, records in by_pop.items():
        ok = [r for r in records if r.error is None]
        ms = [r.ms for r in ok]
        legit[pop] = {"requests": len(records), "ok": len(ok),
                      "success": round(len(ok) / len(records), 4) if records else None,
                      "p50_ms": _percentile(ms, 50), "p99_ms": _percentile(ms, 99)}
    clients = [{"client": c, "isp": isp_of.get(c, ""), "before": catchment.get(c), "during": seen.get(c, [])}
               for c in load.settings.clients]
    return legit, clients
