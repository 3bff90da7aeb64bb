"""`backbone show`'s table, pinned in tests/golden/backbone/show.txt (UPDATE_GOLDEN=1 to accept a change)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from anycastlab.cli.backbone import render

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "backbone" / "show.txt"


def link(router: str, peer: str, delay: float, rtt: float | None, cost: int | None, ospf: int) -> dict[str, Any]:
    return {"router": router, "interface": peer, "peer": peer, "address": "10.254.0.1", "rtt_ms": rtt,
            "samples": 12, "loss": 0.0, "cost": cost, "changes": 1, "ospf_cost": ospf, "set_delay_ms": delay}


def test_render_golden() -> None:
    data = {
        "lab": "default", "smart_routing": True, "prober_pid": 4242, "prober_alive": True, "updated_ago_s": 0.4,
        "probe_hz": 4.0, "tiered_cache": {"enabled": False, "upper": ["iad"]},
        "links": [link("sin", "iad", 150.0, 300.4, 3014, 3014), link("sin", "nrt", 26.65, 53.7, 547, 547),
                  link("nrt", "iad", 54.57, None, None, 10)],
        "pops": [{"pop": "sin", "fetches_from": "origin", "path": ["sin", "nrt", "iad", "origin"],
                  "path_rtt_ms": 163.4},
                 {"pop": "syd", "fetches_from": "origin", "path": ["syd", "?"], "path_rtt_ms": None}],
        "changes": [],
    }
    text = render(data) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text()
