"""compare's parsing of curl's timings, its medians, and its table (pinned in
tests/golden/backbone/compare.txt; UPDATE_GOLDEN=1 to accept a change)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from anycastlab.backbone.compare import Timing, parse_timing, saving, summarize
from anycastlab.cli.compare import render

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "backbone"


def test_parse_timing() -> None:
    t = parse_timing("0.010|0.030|0.041|0.0415|200|HIT|sin\n")
    assert t == Timing(10.0, 20.0, 41.0, 41.5, 200, "HIT", "sin")
    plain = parse_timing("0.010|0.000000|0.020|0.021|200||\n")  # no TLS, no edge headers
    assert plain.tls_ms == 0.0 and plain.cache == "" and plain.pop == ""


def test_summary_takes_medians() -> None:
    runs = [Timing(1, 2, ttfb, ttfb + 1, 200, "MISS", "sin") for ttfb in (100.0, 300.0, 110.0)]
    s = summarize(runs)
    assert s["ttfb_ms"] == 110.0 and s["total_ms"] == 111.0 and s["n"] == 3 and s["cache"] == ["MISS"]


def test_saving() -> None:
    assert saving(300.0, 180.0) == 0.4
    assert saving(None, 1.0) is None and saving(0.0, 1.0) is None


def test_render_golden() -> None:
    data = json.loads((GOLDEN / "compare.json").read_text())
    text = render(data) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / "compare.txt").write_text(text)
    assert text == (GOLDEN / "compare.txt").read_text()
