"""A probe run: measure each client's PoP by several methods, compare with BGP's prediction, report.

    run = run_probe(lab, methods=["dns", "census"])
    run.agree, run.to_json()["clients"][0]["methods"]["dns"]

The result of the last run is kept in the lab's run directory (probes/last.json): `anycastlab graph`
colours clients by it.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import observe
from ..errors import LabError, UnknownNodeError
from ..plan import Node, client_address
from ..runtime import paths
from ..runtime.ledger import Ledger
from ..runtime.state import RunningLab
from . import census, dns, http, traceroute
from .results import MethodResult, MethodUnavailable

METHODS: dict[str, Callable[[RunningLab, list[Node]], dict[str, MethodResult]]] = {
    "dns": dns.measure,
    "http": http.measure,
    "census": census.measure,
    "traceroute": traceroute.measure,
}
ALL = list(METHODS)
# When methods disagree, a client's PoP is the most common answer; ties go to the earlier method here.
PREFERENCE = ["census", "dns", "traceroute", "http"]
LAST_RESULT = Path("probes") / "last.json"
# A client's rtt_ms comes from the first of these methods that measured one, and means what RTT_MEANS says.
RTT_ORDER = ("dns", "traceroute", "http", "census")
RTT_MEANS = {"dns": "DNS query to its answer", "traceroute": "probe to the anycast address's reply",
             "http": "TCP connect", "census": "echo from the sending PoP to the reply at the client's PoP"}


@dataclass
class ClientReport:
    name: str
    isp: str | None
    address: str
    predicted_pop: str | None
    methods: dict[str, MethodResult] = field(default_factory=dict)

    @property
    def pop(self) -> str | None:
        found = [(m, r.pop) for m, r in self.methods.items() if r.pop is not None]
        if not found:
            return None
        counts = Counter(p for _, p in found)
        rank = {m: i for i, m in enumerate(PREFERENCE)}
        best = max(counts.values())
        return min(((rank.get(m, 99), p) for m, p in found if counts[p] == best))[1]

    @property
    def predicted_pops(self) -> list[str]:
        """The predicted PoPs: one, or with `bgp.multipath` on the set the ISP's FIB reaches ("a|b")."""
        return self.predicted_pop.split(observe.TIE) if self.predicted_pop else []

    @property
    def agree(self) -> bool:
        """Every method that ran found a PoP inside the predicted set (with one predicted PoP: all of them
        and the prediction name the same one). Under ECMP, methods may see different PoPs of the set."""
        answers = {r.pop for r in self.methods.values()}
        return bool(self.methods) and None not in answers and bool(self.predicted_pops) \
            and answers <= set(self.predicted_pops)

    def first(self, attribute: str, order: Sequence[str]) -> Any:
        for method in order:
            result = self.methods.get(method)
            if result is not None and getattr(result, attribute) is not None:
                return getattr(result, attribute)
        return None

    def rtt_method(self) -> str | None:
        """The method whose round-trip time `rtt_ms` is (the first of RTT_ORDER that measured one)."""
        return next((m for m in RTT_ORDER if m in self.methods and self.methods[m].rtt_ms is not None), None)

    def to_json(self) -> dict[str, Any]:
        rtt = self.first("rtt_ms", list(RTT_ORDER))
        return {
            "name": self.name,
            "isp": self.isp,
            "address": self.address,
            "pop": self.pop,
            "predicted_pop": self.predicted_pop,
            "predicted_pops": self.predicted_pops,
            "agree": self.agree,
            "rtt_ms": None if rtt is None else round(rtt, 3),
            "rtt_method": self.rtt_method(),
            "hops": self.first("hops", ["traceroute", "dns", "census"]),
            "methods": {m: r.pop for m, r in self.methods.items()},
            "details": {m: r.to_json() for m, r in self.methods.items()},
        }


@dataclass
class ProbeRun:
    lab: str
    anycast: str
    methods: list[str]
    clients: list[ClientReport]
    pops: list[str]
    unavailable: dict[str, str]
    started: float
    timings_s: dict[str, float]
    unicast: dict[str, str] = field(default_factory=dict)  # each PoP's own service address

    @property
    def agree(self) -> bool:
        return bool(self.clients) and all(c.agree for c in self.clients)

    def share(self) -> list[dict[str, Any]]:
        """Each PoP with the clients that landed on it (by the run's per-client PoP)."""
        counts = Counter(c.pop for c in self.clients)
        total = len(self.clients) or 1
        rows: list[dict[str, Any]] = [{"pop": p, "unicast": self.unicast.get(p), "clients": counts.get(p, 0),
                                       "share": round(counts.get(p, 0) / total, 4)} for p in self.pops]
        if counts.get(None):
            rows.append({"pop": None, "clients": counts[None], "share": round(counts[None] / total, 4)})
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "anycast": self.anycast,
            "started": self.started,
            "methods": self.methods,
            "unavailable": self.unavailable,
            "timings_s": {k: round(v, 4) for k, v in self.timings_s.items()},
            "agree": self.agree,
            "pops": self.share(),
            "clients": [c.to_json() for c in self.clients],
        }


def resolve_methods(names: Sequence[str] | None) -> list[str]:
    if not names or "all" in names:
        return list(ALL)
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise LabError(f"unknown probe method {unknown[0]!r} (methods: {', '.join(ALL)}, all)")
    return list(dict.fromkeys(names))


def resolve_clients(lab: RunningLab, names: Sequence[str] | None) -> list[Node]:
    clients = lab.plan.clients
    if not names:
        return clients
    by_name = {c.name: c for c in clients}
    out = []
    for name in dict.fromkeys(names):
        if name not in by_name:
            if name in lab.plan.nodes:
                raise LabError(f"{name!r} is a {lab.plan.nodes[name].role}, not a client "
                               f"(clients: {', '.join(sorted(by_name)[:12])}{' ...' if len(by_name) > 12 else ''})")
            raise UnknownNodeError(name, list(by_name))
        out.append(by_name[name])
    return out


def predictions(lab: RunningLab, clients: list[Node]) -> dict[str, str | None]:
    """Each client's ISP's predicted PoP: the PoP community on its router's best path to the anycast /32,
    or with `bgp.multipath` on the PoPs its FIB reaches, joined by "|" (see observe.predicted_pop)."""
    isps = sorted({c.isp for c in clients if c.isp})
    sets = observe.predicted_pop_sets(lab.plan, lab.vty, isps)
    return {isp: observe.TIE.join(pops) or None for isp, pops in sets.items()}


def run_probe(lab: RunningLab, methods: Sequence[str] | None = None, clients: Sequence[str] | None = None,
              save: bool = True) -> ProbeRun:
    chosen = resolve_methods(methods)
    nodes = resolve_clients(lab, clients)
    started = time.time()
    timings: dict[str, float] = {}
    t = time.perf_counter()
    predicted = predictions(lab, nodes)
    timings["prediction"] = time.perf_counter() - t
    reports = [ClientReport(c.name, c.isp, str(client_address(c)), predicted.get(c.isp or "")) for c in nodes]
    unavailable: dict[str, str] = {}
    for method in chosen:
        t = time.perf_counter()
        try:
            found = METHODS[method](lab, nodes)
        except MethodUnavailable as exc:
            unavailable[method] = str(exc)
            continue
        finally:
            timings[method] = time.perf_counter() - t
        for report in reports:
            report.methods[method] = found[report.name]
    run = ProbeRun(lab.name, str(lab.plan.topology.anycast.ip), [m for m in chosen if m not in unavailable],
                   reports, [p.name for p in lab.plan.pops], unavailable, started, timings,
                   {p.name: str(p.unicast) for p in lab.plan.pops})
    if save:
        save_last(lab, run.to_json())
    return run


def save_last(lab: RunningLab, data: dict[str, Any]) -> Path:
    """Keep a run's JSON in the lab's run directory (recorded in the ledger before it is created)."""
    path = lab.directory / LAST_RESULT
    if not path.parent.exists():
        Ledger(paths.ledger_file(lab.directory)).record("dir", "probes", path=str(path.parent))
        path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)
    return path


def load_last(lab: RunningLab) -> dict[str, Any] | None:
    try:
        data = json.loads((lab.directory / LAST_RESULT).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
