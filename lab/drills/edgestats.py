"""Cache and origin counters around a drill: hit ratio at the PoPs that received moved clients, before
and after the fault (the cold-cache penalty), and origin requests per second before and after.

Read from the proxies' management sockets (GET /stats) and the origin's control socket (GET /stats),
both on the host side, at a few instants of the drill; the figures are differences between snapshots.
A PoP whose proxy is down at a snapshot (a crash) has no counters there and is left out.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..edge.endpoints import proxy_socket
from ..edge.mgmt import MgmtError, call
from ..runtime import paths
from ..runtime.state import RunningLab

# Served from the cache without a full origin fetch (REVALIDATED asked the origin, but only for a 304).
CACHED = ("HIT", "STALE", "UPDATING", "REVALIDATED")
FETCHED = ("MISS", "EXPIRED")


def origin_socket(lab: str) -> Path:
    return paths.lab_dir(lab) / "origin" / "control.sock"


@dataclass
class Snapshot:
    t: float
    pops: dict[str, dict[str, int] | None] = field(default_factory=dict)  # pop -> cache_status counts
    origin_requests: int | None = None


def _get(path: Path) -> dict[str, Any] | None:
    try:
        status, data = call(path, "GET", "/stats", timeout=1.0)
    except MgmtError:
        return None
    return data if status == 200 and isinstance(data, dict) else None


def snapshot(lab: RunningLab) -> Snapshot:
    """Every PoP's cache-status counters and the origin's request count, now (about 1 s at worst)."""
    pops = [p.name for p in lab.plan.pops]
    with ThreadPoolExecutor(len(pops) + 1) as pool:
        origin = pool.submit(_get, origin_socket(lab.name))
        stats = dict(zip(pops, pool.map(lambda p: _get(proxy_socket(lab.name, p)), pops), strict=True))
        snap = Snapshot(time.time())
        for pop, data in stats.items():
            counts = data.get("cache_status") if data else None
            snap.pops[pop] = {k: int(v) for k, v in counts.items()} if isinstance(counts, dict) else None
        o = origin.result()
        snap.origin_requests = int(o["requests"]) if o and isinstance(o.get("requests"), int) else None
    return snap


def hit_ratio(a: Snapshot, b: Snapshot, pops: list[str]) -> tuple[float | None, int]:
    """(cached / cacheable lookups, lookups) between two snapshots over `pops`; None without lookups.

    A proxy restarted in between (its counters went down) is left out: its counts are not comparable.
    """
    cached = fetched = 0
    for pop in pops:
        before, after = a.pops.get(pop), b.pops.get(pop)
        if before is None or after is None:
            continue
        delta = {k: after.get(k, 0) - before.get(k, 0) for k in (*CACHED, *FETCHED)}
        if any(v < 0 for v in delta.values()):
            continue
        cached += sum(delta[k] for k in CACHED)
        fetched += sum(delta[k] for k in FETCHED)
    total = cached + fetched
    return (None if total == 0 else round(cached / total, 4)), total


def _delta(a: Snapshot, b: Snapshot, pop: str, status: str) -> int:
    before, after = a.pops.get(pop), b.pops.get(pop)
    if before is None or after is None:
        return 0
    return max(0, after.get(status, 0) - before.get(status, 0))


def origin_rps(a: Snapshot, b: Snapshot) -> float | None:
    if a.origin_requests is None or b.origin_requests is None or b.t <= a.t:
        return None
    return round(max(0, b.origin_requests - a.origin_requests) / (b.t - a.t), 2)


def summarise(start: Snapshot | None, fault: Snapshot | None, end: Snapshot | None,
              receiving: list[str], serving: list[str]) -> dict[str, Any]:
    """report.json's `cache`: `start` is when the load began, `fault` just before the fault went in, `end`
    just before it was restored. The PoPs are those that received moved clients, or (when no client moved)
    those that served the drill's clients."""
    if start is None or fault is None or end is None:
        return {"available": False, "hit_ratio_before": None, "hit_ratio_after": None,
                "origin_rps_before": None, "origin_rps_after": None, "note": "no snapshots"}
    pops = receiving or serving
    before, n_before = hit_ratio(start, fault, pops)
    after, n_after = hit_ratio(fault, end, pops)
    stale = sum(_delta(fault, end, pop, "STALE") for pop in end.pops)
    return {
        "available": True,
        "pops": pops,
        "pops_are": "receiving" if receiving else "serving (no client moved)",
        "hit_ratio_before": before,
        "hit_ratio_after": after,
        "lookups_before": n_before,
        "lookups_after": n_after,
        "origin_rps_before": origin_rps(start, fault),
        "origin_rps_after": origin_rps(fault, end),
        "window_s": {"before": round(fault.t - start.t, 3), "after": round(end.t - fault.t, 3)},
        "per_pop_after": {p: hit_ratio(fault, end, [p])[0] for p in pops},
        "stale_served_during_fault": stale,
        "counts": "cached = HIT+STALE+UPDATING+REVALIDATED; lookups add MISS+EXPIRED",
    }
