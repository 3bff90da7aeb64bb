"""Latency coverage (`anycastlab coverage`): for every client, the RTT to the PoP anycast gives it against the
RTT to every PoP's own unicast address; the closest PoP, and the inflation in ms and km.

The measurement: from inside each client's namespace, a TCP connect to port 9 of the anycast address and of
each PoP's unicast address; nothing listens there, so the PoP's kernel answers the SYN with a reset at once
and the time to ECONNREFUSED is the RTT, with no service's CPU in it (a first version asked every PoP's DNS
service and, on the world topology, measured their queues: hundreds of ms). Connects are shuffled, paced and
repeated; each (client, address) keeps its lowest RTT. The PoP anycast lands a client on is the dns probe's
answer. Inflation is anycast RTT minus the best unicast RTT, as measured (a few tenths of a ms either way is
noise); a client is "at its closest PoP" when anycast's PoP is the best unicast one or within TIE_MS of it.
Distances are geodesic, from the ISP's location to each PoP's (lab/geo.py).
"""

from __future__ import annotations

import errno
import random
import selectors
import socket
import statistics
import struct
import time
from dataclasses import dataclass
from typing import Any

from . import geo, observe
from .model import Place
from .probes import dns
from .runtime import nsock
from .runtime.state import RunningLab

CLOSED_PORT = 9  # nothing listens there: the PoP's kernel refuses the connection, no service is involved
ROUNDS = 2
ROUND_TIMEOUT_S = 0.7
PAIRS_PER_S = 5000.0  # connects per second: paced, so the lab's one link releaser does not queue them
MAX_OPEN = 600  # connects in flight (file descriptors)
TIE_MS = 2.0  # anycast and unicast to the same PoP differ by up to ~2 ms here (two cores, one releaser)
THRESHOLDS_MS = (20, 50, 100)
WORST = 5


@dataclass
class ClientCoverage:
    client: str
    isp: str
    pop: str | None  # where anycast lands it
    anycast_ms: float | None
    unicast_ms: dict[str, float | None]

    @property
    def best(self) -> tuple[str, float] | None:
        found = [(ms, pop) for pop, ms in self.unicast_ms.items() if ms is not None]
        return None if not found else (min(found)[1], min(found)[0])

    @property
    def inflation_ms(self) -> float | None:
        best = self.best
        return None if best is None or self.anycast_ms is None else self.anycast_ms - best[1]


def _location(place: Place) -> geo.Location | None:
    try:
        return geo.locate(place.city, place.continent, place.lat, place.lon)
    except LookupError:
        return None


def measure(lab: RunningLab, rounds: int = ROUNDS) -> list[ClientCoverage]:
    """Each client's lowest RTT to the anycast address and to every PoP's unicast address, and the PoP the
    anycast address answers it from."""
    plan = lab.plan
    targets = [str(plan.topology.anycast.ip)] + [str(plan.unicast_of(p.name)) for p in plan.pops]
    pop_names = [p.name for p in plan.pops]
    clients = plan.clients
    best: dict[tuple[str, int], float] = {}
    for round_ in range(rounds):
        pairs = [(c.name, i) for c in clients for i in range(len(targets))]
        random.Random(round_).shuffle(pairs)  # no address always first: the lab's queues hit all alike
        for (name, index), rtt in _connect_rtts(lab, pairs, targets).items():
            if rtt < best.get((name, index), float("inf")):
                best[(name, index)] = rtt
    landed = {name: r.pop for name, r in dns.measure(lab, clients, timeout_s=ROUND_TIMEOUT_S).items()}
    return [ClientCoverage(c.name, c.isp or "", landed.get(c.name), _round(best.get((c.name, 0))),
                           {pop: _round(best.get((c.name, i + 1))) for i, pop in enumerate(pop_names)})
            for c in clients]


def _connect_rtts(lab: RunningLab, pairs: list[tuple[str, int]], targets: list[str]) -> dict[tuple[str, int], float]:
    """One TCP connect per (client, target) to CLOSED_PORT, paced at PAIRS_PER_S with at most MAX_OPEN in
    flight: the RTT is the time to the refusal (ECONNREFUSED), which the PoP's kernel sends at once."""
    sel = selectors.DefaultSelector()
    pending: dict[socket.socket, tuple[tuple[str, int], float]] = {}
    out: dict[tuple[str, int], float] = {}
    gap = 1.0 / PAIRS_PER_S

    def collect(timeout: float) -> None:
        for key, _ in sel.select(timeout):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            pair, sent = pending.pop(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err in (0, errno.ECONNREFUSED):
                out[pair] = (time.monotonic() - sent) * 1000
            sel.unregister(sock)
            sock.close()

    def expire() -> None:
        now = time.monotonic()
        for sock, (_, sent) in list(pending.items()):
            if now - sent > ROUND_TIMEOUT_S:  # a lost SYN: the kernel would retry after 1 s; count it missing
                pending.pop(sock)
                sel.unregister(sock)
                sock.close()

    try:
        start = time.monotonic()
        for k, (name, index) in enumerate(pairs):
            while len(pending) >= MAX_OPEN:
                collect(0.01)
                expire()
            ahead = start + k * gap - time.monotonic()
            if ahead > 0:
                collect(ahead)
            sock = nsock.open_in(lab.pid(name), socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sent = time.monotonic()
            code = sock.connect_ex((targets[index], CLOSED_PORT))
            if code not in (errno.EINPROGRESS, 0, errno.ECONNREFUSED):
                sock.close()
                continue
            pending[sock] = ((name, index), sent)
            sel.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + ROUND_TIMEOUT_S
        while pending and time.monotonic() < deadline:
            collect(0.05)
            expire()
    finally:
        for sock in pending:
            sock.close()
        sel.close()
    return out


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 2)


def _pct(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return round(values[0], 2)
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 2)


def summarise(lab: RunningLab, results: list[ClientCoverage], elapsed_s: float) -> dict[str, Any]:
    """The per-client rows and the summary, with the worst cases' AS paths from their ISP's router."""
    plan, topo = lab.plan, lab.plan.topology
    isp_at = {e.name: _location(e) for e in topo.eyeballs}
    pop_at = {p.name: _location(p) for p in topo.pops}
    asn_name = {n.asn: n.name for n in plan.nodes.values() if n.asn is not None and n.role != "pop"}
    asn_name[topo.asn] = "edge"
    rows: list[dict[str, Any]] = []
    for r in results:
        best = r.best
        here = isp_at.get(r.isp)
        km = {p: (geo.distance_km(here, at) if here and at else None) for p, at in pop_at.items()}
        known = {p: d for p, d in km.items() if d is not None}
        nearest = min(known, key=lambda p: known[p]) if known else None
        inflation = r.inflation_ms
        rows.append({
            "client": r.client, "isp": r.isp, "pop": r.pop, "anycast_ms": r.anycast_ms,
            "best_pop": best[0] if best else None, "best_ms": _round(best[1]) if best else None,
            "inflation_ms": _round(inflation),
            "at_closest": None if best is None or r.pop is None
            else (r.pop == best[0] or (inflation or 0.0) <= TIE_MS),
            "pop_km": _round(km.get(r.pop or "")), "nearest_pop": nearest,
            "nearest_km": _round(known[nearest]) if nearest else None,
            "inflation_km": _round(known[r.pop] - known[nearest]) if r.pop in known and nearest else None,
            "unicast_ms": r.unicast_ms})
    measured = [r for r in rows if r["at_closest"] is not None]
    infl = [float(r["inflation_ms"]) for r in measured]
    infl_km = [float(r["inflation_km"]) for r in measured if r["inflation_km"] is not None]
    # inflated in time first, then in distance alone (a far PoP that is still the fastest, like orange's)
    worst = sorted(measured, key=lambda w: (-float(w["inflation_ms"]) if w["inflation_ms"] > TIE_MS else 0.0,
                                            -float(w["inflation_km"] or 0.0)))[:WORST]
    seen_isps: dict[str, dict[str, Any]] = {}
    for w in worst:
        if w["isp"] not in seen_isps:
            seen_isps[w["isp"]] = _paths(lab, w["isp"], w["best_pop"], asn_name)
        w["paths"] = seen_isps[w["isp"]]
    n = len(measured)
    return {
        "clients": rows,
        "summary": {
            "clients": len(rows), "measured": n,
            "at_closest": sum(1 for r in measured if r["at_closest"]), "share_at_closest": _share(
                sum(1 for r in measured if r["at_closest"]), n),
            "within_ms": {str(t): _share(sum(1 for r in measured if float(r["anycast_ms"]) <= t), n)
                          for t in THRESHOLDS_MS},
            "best_unicast_within_ms": {str(t): _share(sum(1 for r in measured if float(r["best_ms"]) <= t), n)
                                       for t in THRESHOLDS_MS},
            "inflation_ms": {"median": _pct(infl, 50), "p95": _pct(infl, 95), "max": max(infl, default=None)},
            "inflation_km": {"median": _pct(infl_km, 50), "p95": _pct(infl_km, 95), "max": max(infl_km, default=None)},
            "tie_ms": TIE_MS, "rounds": ROUNDS, "elapsed_s": round(elapsed_s, 2),
        },
        "worst": worst,
    }


def _share(k: int, n: int) -> float | None:
    return None if n == 0 else round(k / n, 4)


def _paths(lab: RunningLab, isp: str, best_pop: str | None, asn_name: dict[int, str]) -> dict[str, Any]:
    """The ISP router's best AS path to the anycast /32 and to the best PoP's unicast /32, with AS names."""
    plan = lab.plan

    def path_to(prefix: Any) -> str | None:
        path = observe.best_path(lab.vty(isp), prefix)
        if path is None:
            return None
        asns = [int(a) for a in str(path.get("aspath", {}).get("string", "")).split() if a.isdigit()]
        return " ".join(f"{asn_name.get(a, a)}({a})" for a in asns) or "(local)"

    out: dict[str, Any] = {"anycast": path_to(plan.topology.anycast.network)}
    if best_pop is not None:
        out["best_unicast"] = path_to(f"{plan.unicast_of(best_pop)}/32")
    return out


def cdf_png(data: dict[str, Any], path: Any) -> None:
    """The RTT CDF: anycast's PoP against the best unicast PoP, per client."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in data["clients"] if r["at_closest"] is not None]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, label in (("anycast_ms", "anycast (the PoP BGP picks)"), ("best_ms", "best unicast PoP")):
        values = sorted(float(r[key]) for r in rows)
        ys = [(i + 1) / len(values) for i in range(len(values))]
        ax.step(values, ys, where="post", label=label)
    for t in THRESHOLDS_MS:
        ax.axvline(t, color="grey", linestyle=":", linewidth=1)
    s = data["summary"]
    ax.set_title(f"{s['measured']} clients: {s['share_at_closest']:.0%} at their closest PoP, "
                 f"median inflation {s['inflation_ms']['median']} ms")
    ax.set_xlabel("RTT (ms)")
    ax.set_ylabel("share of clients")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
