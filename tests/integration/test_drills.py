"""Drills on a real default lab of their own: shipped drills pass with their expectations, an impossible
expectation exits non-zero with the failure in the JUnit file, and an interrupted drill restores the lab."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from anycastlab.drills import faults, load_drill, run_drill
from anycastlab.lifecycle import Lab
from anycastlab.runtime import cleanup, netns, paths
from anycastlab.runtime.ledger import Ledger
from measure import catchment

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "topologies" / "drills"
# One name per test session: with a fixed name, a concurrent run of the same tests (another checkout, a
# CI-like run) attaches to or tears down this run's lab. ANYCASTLAB_TEST_PREFIX replaces `drill-it`.
NAME = f"{os.environ.get('ANYCASTLAB_TEST_PREFIX', 'drill-it')}-{os.getpid()}"


CLI = str(Path(sys.executable).parent / "anycastlab")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab.up("default", name=NAME, timeout=90)
    try:
        yield lab
    finally:
        # The drills restarted daemons and services: the ledger names them, and `down` must remove them too.
        ledger = Ledger(paths.ledger_file(tmp_path_factory.mktemp("drill-ledger")))
        ledger.path.write_bytes(paths.ledger_file(lab.running.directory).read_bytes())
        lab.down()
        assert not cleanup.recorded_processes(ledger), "processes left behind"
        left = cleanup.live_namespaces(ledger)
        assert not left, f"namespaces left behind: {left}, held by {holders(ledger, left)}"
        assert not paths.lab_dir(NAME).exists()


def holders(ledger: Ledger, nodes: list[str]) -> list[str]:
    """Which processes hold these nodes' namespaces (pid, state, parent, command): for the failure message."""
    inodes = {e.data["netns"]: e.name for e in ledger.of_kind("node") if "netns" in e.data and e.name in nodes}
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (node := inodes.get(os.stat(entry / "ns" / "net").st_ino)):
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:100]
                found.append(f"{node}: pid {entry.name} state {stat[0]} ppid {stat[1]} {cmd}")
        except OSError:
            continue
    return found


@pytest.mark.parametrize("name", ["withdraw", "graceful-shutdown", "crash", "proxy-crash"])
def test_shipped_drill_passes(lab: Lab, name: str, tmp_path: Path) -> None:
    before = catchment(lab)
    result = run_drill(lab, load_drill(DRILLS / f"{name}.yaml"), tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    failed = [e["message"] for e in report["expectations"] if e["passed"] is False]
    assert result.passed, failed
    assert report["drill"] == name and report["passed"] and report["complete"]
    assert {"p50", "p95", "max"} <= set(report["convergence_s"])
    http, cache = report["http"], report["cache"]
    assert http["available"] and http["ok"] > 100, http
    assert {"reset", "timeout", "tls", "5xx"} <= set(http["by_class"])
    # dtag's kept-alive connections were to fra: they cannot survive the move to sin; the others do.
    assert http["keepalive"]["at_fault"] == 14 and {b["client"] for b in http["keepalive"]["broken"]} == {
        "dtag-c1", "dtag-c2"}, http["keepalive"]
    assert cache["pops"] == ["sin"] and cache["hit_ratio_before"] is not None and cache["hit_ratio_after"] is not None
    assert cache["origin_rps_before"] is not None and cache["origin_rps_after"] is not None
    dtag = next(c for c in report["clients"] if c["name"] == "dtag-c1")
    assert dtag["pop_before"] == "fra" and dtag["pop_after"] == "sin" and dtag["pop_end"] == "fra"
    assert {"name", "pop_before", "pop_after", "outage_s", "lost_probes", "flips"} <= set(dtag)
    assert (tmp_path / "report" / "timeline.png").stat().st_size > 10_000
    assert "# Drill" in (tmp_path / "report" / "report.md").read_text()
    if name == "graceful-shutdown":
        assert report["lost_probes"] == 0 and http["failed"] == 0
    assert catchment(lab) == before


def test_origin_down_serves_from_cache(lab: Lab, tmp_path: Path) -> None:
    result = run_drill(lab, load_drill(DRILLS / "origin-down.yaml"), tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert result.passed, [e["message"] for e in report["expectations"] if e["passed"] is False]
    http, cache = report["http"], report["cache"]
    assert http["failed"] == 0 and http["ok"] > 100, http["failures"]
    assert http["cache_status"].get("STALE", 0) > 0 and cache["stale_served_during_fault"] > 0, (http, cache)
    # Nothing reached the origin while it was down: at most a request or two that arrived between the
    # snapshot taken just before the fault and the listeners closing.
    assert cache["origin_rps_after"] * cache["window_s"]["after"] <= 2 < cache["origin_rps_before"], cache
    assert report["http"]["keepalive_survived"] is True


def test_impossible_expectation_fails_with_junit(lab: Lab, tmp_path: Path) -> None:
    drill = tmp_path / "impossible.yaml"
    drill.write_text((DRILLS / "withdraw.yaml").read_text().replace("convergence_p95: 1s", "convergence_p95: 1ms"))
    junit = tmp_path / "junit.xml"
    out = subprocess.run([CLI, "drill", "run", str(drill), "--lab", NAME, "--json",
                          "--junit", str(junit)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    report = json.loads(out.stdout)  # --json: stdout is the report alone, as report.json would hold it
    assert report["passed"] is False and report["complete"] is True
    assert [e["name"] for e in report["expectations"] if e["passed"] is False] == ["convergence_p95"]
    suite = ET.parse(junit).getroot()
    assert suite.get("failures") == "1"
    failing = [c for c in suite.iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failing] == ["convergence_p95"]
    assert "allowed 0.001s" in (failing[0].find("failure").get("message") or "")  # type: ignore[union-attr]


def test_interrupted_drill_restores_every_fault(lab: Lab, tmp_path: Path) -> None:
    before = catchment(lab)
    drill = tmp_path / "long.yaml"
    drill.write_text("name: long\nsteps:\n  - fail: {pop: fra, mode: blackhole}\n"
                     "  - fail: {mode: link-down, link: [iad, cogent]}\n  - wait: 60s\n")
    report = tmp_path / "report"
    proc = subprocess.Popen([CLI, "drill", "run", str(drill), "--lab", NAME,
                             "--report", str(report)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if "fail link-down iad-cogent" in line:
            break
        assert time.monotonic() < deadline
    time.sleep(2)  # orange has moved to gru; fra's sessions are still up (hold timer 9 s)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, rest
    data = json.loads((report / "report.json").read_text())
    assert data["complete"] is False and data["passed"] is False and data["error"] == "interrupted"
    assert [f["mode"] for f in data["faults"]] == ["blackhole", "link-down"]
    orange = next(c for c in data["clients"] if c["name"] == "orange-c1")
    assert orange["pop_before"] == "iad" and orange["pop_after"] == "gru", orange
    assert faults.tagged_rules(lab.running, "fra") == []
    assert netns.link_states(lab.running.pid("iad"))["cogent"] and netns.link_states(lab.running.pid("cogent"))["iad"]
    assert catchment(lab) == before
