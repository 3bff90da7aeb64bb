"""A generated world topology boots with real FRR, and where each client lands agrees with the prediction:
offline prediction (AS graph) ⊇ BGP's best path ∋ the PoP the probes measure (dns and census)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from anycastlab.lifecycle import Lab
from anycastlab.model import load_topology
from anycastlab.predict import predict
from anycastlab.world import to_yaml, world_topology
from measure import settled_probe

pytestmark = pytest.mark.integration


def test_generated_20_pop_world_boots_and_probes_agree_with_the_prediction(tmp_path: Path, leftovers: Any) -> None:
    path = tmp_path / "world20.yaml"
    path.write_text(to_yaml(world_topology(2, pops=20, eyeballs=20, clients_per_isp=1), "test"))
    topo = load_topology(path)
    offline = predict(topo).clients()
    name = f"it-world20-{os.getpid()}"[:32]
    lab = Lab.up(path, name=name, timeout=120)
    ledger = leftovers.snapshot(name, tmp_path)
    try:
        run = settled_probe(lab)
        assert len(run.clients) == 20
        problems = []
        for c in run.clients:
            bgp = set(c.predicted_pops)
            measured = {r.pop for r in c.methods.values()}
            if len(bgp) != 1 or not bgp <= offline[c.name] or measured != bgp:
                problems.append((c.name, sorted(offline[c.name]), sorted(bgp), sorted(measured, key=str)))
        assert not problems, problems
        assert len({c.pop for c in run.clients}) >= 5  # a world's worth of catchments, not one PoP for all
    finally:
        lab.down()
        leftovers.assert_none(ledger, name)
