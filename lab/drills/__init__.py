"""Scripted PoP-failure drills: inject a fault, watch every client's PoP, measure, assert, report.

    from anycastlab.drills import load_drill, run_drill
    result = run_drill(lab, load_drill("topologies/drills/withdraw.yaml"))
    assert result.passed
"""

from __future__ import annotations

from .model import Drill, load_drill
from .result import DrillResult
from .runner import run_drill

__all__ = ["Drill", "DrillResult", "load_drill", "run_drill"]
