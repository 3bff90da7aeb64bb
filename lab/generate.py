"""Seeded random topologies with ties: the same seed gives the same file, for tests and experiments.

    doc = random_topology(7, transits=3, pops=3, eyeballs=3)   # a dict for YAML, valid for load_topology

The transit hierarchy is acyclic (a transit's upstreams come from earlier transits), every PoP and ISP has
one or two upstreams, some PoPs and ISPs peer, and PoPs share transits often, so equal-length paths to
several PoPs (ties) are common. Link delays are off (no geography), so a lab of one boots quickly.
"""

from __future__ import annotations

import itertools
import random
from typing import Any


def random_topology(seed: int, transits: int = 3, pops: int = 3, eyeballs: int = 3, clients: int = 2,
                    multipath: bool = False, name: str | None = None) -> dict[str, Any]:
    if transits < 1 or pops < 1 or eyeballs < 1:
        raise ValueError("a topology needs at least one transit, one PoP and one eyeball")
    rng = random.Random(seed)
    t_names = [f"t{i}" for i in range(1, transits + 1)]
    p_names = [f"p{i}" for i in range(1, pops + 1)]
    e_names = [f"isp{i}" for i in range(1, eyeballs + 1)]

    def some(names: list[str], most: int) -> list[str]:
        return sorted(rng.sample(names, rng.randint(1, min(most, len(names)))))

    transit_docs: list[dict[str, Any]] = []
    related: set[frozenset[str]] = set()
    for i, t in enumerate(t_names):
        doc: dict[str, Any] = {"name": t, "asn": 64600 + i}
        ups = some(t_names[:i], 2) if i and rng.random() < 0.8 else []
        if ups:
            doc["upstreams"] = ups
        related |= {frozenset((t, u)) for u in ups}
        transit_docs.append(doc)
    for i, t in enumerate(t_names):  # settlement-free peering between transits not otherwise related
        for other in t_names[i + 1:]:
            if frozenset((t, other)) not in related and rng.random() < 0.35:
                transit_docs[i].setdefault("peers", []).append(other)
                related.add(frozenset((t, other)))

    eyeball_docs: list[dict[str, Any]] = [
        {"name": e, "asn": 64700 + i, "upstreams": some(t_names, 2), "clients": clients}
        for i, e in enumerate(e_names)
    ]
    pop_docs: list[dict[str, Any]] = []
    for p in p_names:
        doc = {"name": p, "upstreams": some(t_names, 2)}
        if rng.random() < 0.25:
            doc["peers"] = [rng.choice(e_names)]
        pop_docs.append(doc)
    return {
        "name": name or f"gen{seed}",
        "latency": {"from_geography": False, "per_hop_ms": 0},
        "bgp": {"multipath": multipath},
        "transits": transit_docs,
        "pops": pop_docs,
        "eyeballs": eyeball_docs,
        "origin": {"upstreams": [t_names[0]], "pops": [p_names[0]]},
        "backbone": [[a, b] for a, b in itertools.pairwise(p_names)],
    }
