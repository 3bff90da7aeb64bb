"""A bounded run of the hostile-input suite (lab/edge/hostile.py; `make fuzz` runs 100,000 requests and a
2,000-connection slowloris): the proxy on loopback survives, stays healthy, refuses every smuggling shape,
and nothing with ambiguous framing reaches the origin."""

from __future__ import annotations

import random
import shutil

import pytest
from anycastlab.edge import hostile

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="as the other loopback proxy tests")


def test_a_bounded_hostile_run_passes() -> None:
    report = hostile.run(requests=2500, slowloris=150, seed=7, threads=6)
    data = report.to_json()
    assert data["passed"], data["problems"]
    assert data["requests"] == 2500 and data["proxy_alive"]
    smuggles = sum(n for kind, n in data["by_kind"].items() if kind.startswith("smuggle."))
    assert smuggles > 400 and data["smuggle_not_refused"] == [] and data["ambiguous_at_origin"] == 0
    assert data["health_checks"] >= 1 and data["health_failures"] == []
    assert data["normal_get_ms"]["after"]["n"] == 20 and data["slowloris"]["opened"] >= 150


def test_the_generator_is_seeded_and_covers_every_kind() -> None:
    kinds = {hostile.request_for(random.Random(n), n)[0] for n in range(400)}
    assert {"smuggle.cl.te", "smuggle.te.cl", "smuggle.cl.cl", "smuggle.te.obfuscated", "early_close", "bad_chunks",
            "mutated", "oversized.line", "oversized.value", "oversized.count", "valid"} <= kinds
    assert hostile.request_for(random.Random(5), 5) == hostile.request_for(random.Random(5), 5)
