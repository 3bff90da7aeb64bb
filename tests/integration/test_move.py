"""A user move on a real default lab: `anycastlab move` re-homes a client to another ISP (new link, address,
default route), probes and status show it where it now is, its path is the new ISP's, and going home restores
the plan exactly; bad moves change nothing; a drill's `move` step is undone at its end and on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from anycastlab.drills import load_drill, run_drill
from anycastlab.lifecycle import Lab
from anycastlab.probes.probe import run_probe
from anycastlab.runtime import moves, paths
from measure import catchment

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).parent / "anycastlab")
MOVER, HOME, AWAY = "dtag-c1", "dtag", "comcast"


def cli(lab: Lab, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args, "--lab", lab.name], capture_output=True, text=True, timeout=60)


def hops(lab: Lab, client: str, address: str) -> list[str]:
    """The routers a traceroute from the client passes, after its own gateway (bounded: 8 hops, 1 s each)."""
    out = lab.exec(client, ["traceroute", "-n", "-q", "1", "-w", "1", "-m", "8", address])
    assert out.returncode == 0, out.stderr
    return [line.split()[1] for line in out.stdout.splitlines()[1:]][1:]


def probed(name: str) -> dict[str, tuple[str | None, str | None, str | None, str | None]]:
    """Each client's (ISP, address, measured PoP, predicted PoP) from a fresh `probe` of the lab (its plan read
    anew), repeated (bounded) until the methods agree."""
    run = run_probe(Lab.attach(name).running, ["dns", "census"], save=False)
    for _ in range(10):
        if run.agree:
            break
        time.sleep(0.5)
        run = run_probe(Lab.attach(name).running, ["dns", "census"], save=False)
    return {c.name: (c.isp, c.address, c.pop, c.predicted_pop) for c in run.clients}


def test_a_moved_client_lands_where_its_new_isp_does_and_comes_home_exactly(default_lab: Lab) -> None:
    lab = default_lab
    plan_before = paths.plan_file(lab.running.directory).read_bytes()
    before = probed(lab.name)
    fra = str(lab.running.plan.unicast_of("fra"))
    try:
        out = cli(lab, "move", MOVER, AWAY, "--json")
        assert out.returncode == 0, out.stderr
        moved = json.loads(out.stdout)[0]
        assert moved["from"] == HOME and moved["to"] == AWAY and not moved["at_home"]
        now = probed(lab.name)
        isp, address, pop, predicted = now[MOVER]
        assert isp == AWAY and address == moved["address"] and address != before[MOVER][1]
        assert pop == predicted == now["comcast-c1"][2] == before["comcast-c1"][2] != before[MOVER][2]
        assert all(now[c] == before[c] for c in before if c != MOVER)  # nobody else moved
        # Its path to fra's own address is now comcast's, not dtag's.
        assert hops(lab, MOVER, fra) == hops(lab, "comcast-c1", fra) != []
        status = json.loads(cli(lab, "status", "--json").stdout)
        entry = next(c for c in status["clients"] if c["name"] == MOVER)
        assert entry["isp"] == AWAY and entry["address"] == address
        listed = json.loads(cli(lab, "move", "--json").stdout)
        assert listed == [{"client": MOVER, "isp": AWAY, "home": HOME}]
        links = json.loads(cli(lab, "link", "show", "--json").stdout)["links"]
        assert {(e["a"], e["b"]) for e in links if MOVER in (e["a"], e["b"])} == {(AWAY, MOVER)}
    finally:
        out = cli(lab, "move", MOVER, "--home", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["at_home"] is True
    assert paths.plan_file(lab.running.directory).read_bytes() == plan_before
    assert not paths.moves_file(lab.running.directory).exists()
    assert probed(lab.name) == before


def test_bad_moves_are_refused_and_change_nothing(default_lab: Lab) -> None:
    lab = default_lab
    plan_before = paths.plan_file(lab.running.directory).read_bytes()
    cases = [(["move", "nobody", AWAY], "unknown node 'nobody'"),
             (["move", MOVER, "atlantis"], "unknown node 'atlantis'"),
             (["move", "fra", AWAY], "fra is a pop, not a client"),
             (["move", MOVER, "telia"], "telia is a transit, not an eyeball ISP"),
             (["move", MOVER, HOME], f"{MOVER} is on {HOME} already"),
             (["move", MOVER, "--home"], "on its home ISP already")]
    for args, message in cases:
        out = cli(lab, *args)
        assert out.returncode == 1 and message in out.stderr, (args, out.stderr)
        assert "Traceback" not in out.stderr
    assert paths.plan_file(lab.running.directory).read_bytes() == plan_before
    assert catchment(lab)[MOVER] == "fra"


def test_a_drill_move_step_moves_the_client_and_the_drill_brings_it_home(default_lab: Lab, tmp_path: Path) -> None:
    lab = default_lab
    path = tmp_path / "move.yaml"
    path.write_text(f"name: move\nsettle: 15s\nsteps:\n  - move: {{client: {MOVER}, to: {AWAY}}}\n"
                    "  - wait: {until: stable, timeout: 15s}\n"
                    f"  - expect: {{catchment: {{{MOVER}: iad, dtag-c2: fra}}}}\n")
    result = run_drill(Lab.attach(lab.name), load_drill(path), report_dir=tmp_path / "report")
    assert result.complete and result.passed, [e for e in result.expectations if not e.passed]
    assert [f["mode"] for f in result.injected] == ["move"] and result.injected[0]["to"] == AWAY
    timeline = {c.name: c for c in result.timeline.clients}
    assert timeline[MOVER].pop_before == "fra" and timeline[MOVER].pop_after == "iad"
    assert timeline["dtag-c2"].pop_after in (None, "fra")
    assert any("move dtag-c1 home" in s.label for s in result.steps)
    assert not moves.homes(lab.running.directory)
    assert catchment(lab)[MOVER] == "fra"


def test_sigterm_during_a_drill_move_brings_the_client_home(default_lab: Lab, tmp_path: Path) -> None:
    lab = default_lab
    path = tmp_path / "long-move.yaml"
    path.write_text(f"name: long-move\nsteps:\n  - move: {{client: {MOVER}, to: {AWAY}}}\n  - wait: 60s\n")
    report = tmp_path / "report"
    proc = subprocess.Popen([CLI, "drill", "run", str(path), "--lab", lab.name, "--report", str(report)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    for line in proc.stdout:
        if f"move {MOVER} to {AWAY}" in line:
            break
        assert time.monotonic() < deadline
    time.sleep(2)
    assert moves.homes(lab.running.directory)  # moved, and recorded as away
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=90)
    assert proc.returncode == 143, rest
    data = json.loads((report / "report.json").read_text())
    assert data["complete"] is False and data["error"] == "interrupted by SIGTERM"
    assert not moves.homes(lab.running.directory)
    assert catchment(lab)[MOVER] == "fra"
