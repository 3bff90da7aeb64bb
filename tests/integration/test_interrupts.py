"""Stop requests against a real small lab: `probe --watch` started with SIGINT ignored stops on SIGINT with 130,
and SIGTERM during a drill with two faults in place restores both, writes the partial report and exits 143."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab import observe
from anycastlab.lifecycle import Lab
from anycastlab.probes.probe import run_probe

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "anycastlab")
NAME = f"t12-int-{os.getpid()}"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, leftovers: Any) -> Iterator[Lab]:
    lab = Lab.up("small", name=NAME, timeout=90)
    ledger = leftovers.snapshot(NAME, tmp_path_factory.mktemp("int-ledger"))
    try:
        yield lab
    finally:
        lab.down()
        leftovers.assert_none(ledger, NAME)


def ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_watch_started_with_sigint_ignored_stops_on_sigint_with_130(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "watch.jsonl"
    proc = subprocess.Popen([CLI, "probe", "--lab", NAME, "--watch", "--rate", "5", "--duration", "60",
                             "--out", str(out), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignoring_sigint)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
        time.sleep(0.1)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130, stderr
    assert time.monotonic() - sent < 5
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["records"] == len(out.read_text().splitlines()) >= 5


def test_sigterm_during_a_drill_with_two_faults_restores_both_and_exits_143(lab: Lab, tmp_path: Path) -> None:
    running = lab.running
    before = {c.name: c.pop for c in run_probe(running, ["dns"], save=False).clients}
    assert before == {"ispa-c1": "ams", "ispa-c2": "ams", "ispb-c1": "ord"}
    drill = tmp_path / "two.yaml"
    drill.write_text("name: two\ntopology: small\nsteps:\n  - fail: {pop: ams, mode: withdraw}\n"
                     "  - fail: {pop: ord, mode: session-down, neighbors: [ispb]}\n  - wait: 60s\n")
    report = tmp_path / "report"
    proc = subprocess.Popen([CLI, "drill", "run", str(drill), "--lab", NAME, "--report", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=ignoring_sigint)
    assert proc.stdout is not None
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        if "fail session-down" in line:
            break
        assert time.monotonic() < deadline, "the drill never injected its second fault"
    time.sleep(2)
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 143, rest
    assert "interrupted by SIGTERM: every injected fault was restored" in rest
    data = json.loads((report / "report.json").read_text())
    assert data["complete"] is False and data["error"] == "interrupted by SIGTERM"
    assert [f["mode"] for f in data["faults"]] == ["withdraw", "session-down"]
    assert observe.announcing(running.plan, running.vty("ams"))  # the withdrawal is undone
    sessions = {s.peer: s.state for s in observe.sessions(running.plan, "ord", running.vty("ord"))}
    assert sessions["ispb"] == "Established", sessions
    after = {c.name: c.pop for c in run_probe(running, ["dns"], save=False).clients}
    assert after == before
