"""`anycastlab coverage` on the default topology: every client, its anycast PoP's RTT against every PoP's
unicast RTT, and orange (Paris, behind cogent) carried across the Atlantic to iad."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from anycastlab.lifecycle import Lab

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "anycastlab")


def test_coverage_of_every_client_inflation_and_orange(default_lab: Lab, tmp_path: Path) -> None:
    png = tmp_path / "cdf.png"
    out = subprocess.run([CLI, "coverage", "--lab", default_lab.name, "--json", "--out", str(png)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    plan = default_lab.running.plan
    rows = {r["client"]: r for r in data["clients"]}
    assert set(rows) == {c.name for c in plan.clients}
    pops = {p.name for p in plan.pops}
    for r in rows.values():
        assert r["pop"] in pops and r["anycast_ms"] is not None, r
        assert set(r["unicast_ms"]) == pops and None not in r["unicast_ms"].values(), r
        best = min(r["unicast_ms"].values())
        assert r["best_ms"] == best and r["unicast_ms"][r["best_pop"]] == best
        assert r["inflation_ms"] == pytest.approx(r["anycast_ms"] - best, abs=0.011)
    assert data["summary"]["measured"] == len(rows)
    for client in ("orange-c1", "orange-c2"):
        orange = rows[client]
        assert orange["pop"] == "iad" and orange["nearest_pop"] == "fra"
        assert orange["inflation_km"] > 5000  # Paris to Ashburn instead of Frankfurt
        assert orange["anycast_ms"] > 50  # across the Atlantic and back
    worst = [w for w in data["worst"] if w["isp"] == "orange"]
    assert worst and "cogent(174)" in worst[0]["paths"]["anycast"]
    assert png.stat().st_size > 10_000
