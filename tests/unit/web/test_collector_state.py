"""The web view's state messages: news that a user watches for (a client's PoP, a PoP's announcement) goes
out at once, while a stream of changes that are only RTTs and probe times is thinned to one per
MINOR_GAP_S, so an idle page is not redrawn ten times a second."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.runtime import paths
from anycastlab.runtime.state import RunningLab
from anycastlab.topology_files import resolve
from anycastlab.web import collector
from anycastlab.web.collector import Collector


@pytest.fixture
def sent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Collector, list[dict[str, Any]], list[float]]:
    lab = RunningLab("unit", build_plan(load_topology(resolve("default"))), tmp_path, "netns", {})
    out: list[dict[str, Any]] = []
    clock = [1000.0]
    # the collector's own clock only (asyncio's, and everyone else's, stays real)
    monkeypatch.setattr(collector, "time", SimpleNamespace(monotonic=lambda: clock[0], time=time.time))
    return Collector(lab, lambda kind, data: out.append(data) if kind == "state" else None), out, clock


def probe(c: Collector, client: str, pop: str | None, rtt: float, t: float) -> None:
    c.clients[client] = {"pop": pop, "rtt_ms": rtt, "lost": pop is None, "t": t, "source": "web dns probe",
                         "error": None}
    c._changed()


def test_rtt_only_changes_wait_for_the_gap_and_pop_changes_do_not(sent: Any) -> None:
    c, out, clock = sent
    probe(c, "dtag-c1", "fra", 1.0, 1.0)
    assert len(out) == 1  # the first state
    for i in range(4):  # RTTs and probe times, 0.1 s apart: none sent inside the gap
        clock[0] += 0.1
        probe(c, "dtag-c1", "fra", 1.0 + i, 2.0 + i)
    assert len(out) == 1
    clock[0] += collector.MINOR_GAP_S  # past the gap: the latest RTT goes out
    probe(c, "dtag-c1", "fra", 9.0, 9.0)
    assert len(out) == 2 and out[-1]["clients"]["dtag-c1"]["rtt_ms"] == 9.0
    clock[0] += 0.01  # the client moved: sent at once, inside the gap
    probe(c, "dtag-c1", "iad", 9.0, 9.1)
    assert len(out) == 3 and out[-1]["clients"]["dtag-c1"]["pop"] == "iad"
    clock[0] += 0.01  # lost: sent at once too
    probe(c, "dtag-c1", None, 9.0, 9.2)
    assert len(out) == 4 and out[-1]["clients"]["dtag-c1"]["lost"]


def test_nothing_new_is_not_sent_and_a_pop_withdrawal_is_at_once(sent: Any) -> None:
    c, out, clock = sent
    c._changed()
    c._changed()
    assert len(out) == 1
    clock[0] += 0.01
    c.pops["fra"]["announcing"] = False
    c._changed()
    assert len(out) == 2 and out[-1]["pops"]["fra"]["announcing"] is False


def test_frr_is_not_asked_while_a_drill_step_converges(sent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault's own checks, and everything else due, wait HOLD_S from the step: a vtysh call then would
    take CPU from the convergence the drill measures."""
    c, _, _ = sent
    monkeypatch.setattr(collector, "time", time)  # this one runs on the real clock
    paths.state_file(c.lab.directory).write_text("{}")
    asked: list[float] = []

    def ask(what: tuple[str, str]) -> tuple[tuple[str, str], Any]:
        asked.append(time.monotonic())
        return what, [] if what[0] == "sessions" else None

    monkeypatch.setattr(c, "_ask", ask)
    step_t = time.time()

    async def scenario() -> None:
        c._drill_step({"step": "fail", "t": step_t, "fault": {"pop": "fra", "mode": "withdraw"}})
        loop = asyncio.create_task(c._control_loop())
        await asyncio.sleep(collector.HOLD_S * 0.8)
        assert not asked, "FRR asked inside the hold"
        await asyncio.sleep(collector.HOLD_S * 1.2)
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop

    started = time.monotonic()
    asyncio.run(scenario())
    assert asked and min(asked) - started >= collector.HOLD_S * 0.8
