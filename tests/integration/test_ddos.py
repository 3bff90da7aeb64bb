"""`anycastlab ddos` on the default topology, 5 s runs: the PoPs' counters add up to what hping3 sent, a
unicast target takes it all, an even spread reaches every PoP with bots in its catchment, `withdraw` moves the
attacked PoP's legitimate clients and everything is put back, and SIGTERM mid-attack undoes it all too."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from anycastlab import observe
from anycastlab.ddos import counters
from anycastlab.lifecycle import Lab
from anycastlab.probes.probe import predictions

pytestmark = pytest.mark.integration
CLI = str(Path(sys.executable).parent / "anycastlab")


def ddos(lab: Lab, *args: str) -> dict[str, Any]:
    out = subprocess.run([CLI, "ddos", "--lab", lab.name, "--duration", "5", "--json", *args], capture_output=True,
                         text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def assert_put_back(lab: Lab, before: dict[str, str | None]) -> None:
    running = lab.running
    assert all(observe.announcing(running.plan, running.vty(p.name)) for p in running.plan.pops)
    assert predictions(running, running.plan.clients) == before
    assert not any(counters.tagged(running, p.name) for p in running.plan.pops)


def test_even_spread_counts_add_up_and_reach_every_catchment_with_bots(default_lab: Lab) -> None:
    data = ddos(default_lab, "--pps", "1000")
    assert data["sent"] == data["attack"]["bots"] * round(1000 / data["attack"]["bots"] * 5)
    assert abs(data["received"] - data["sent"]) <= 0.02 * data["sent"], (data["received"], data["sent"])
    with_bots = {b["catchment"] for b in data["bots"]}
    assert with_bots == {"fra", "iad", "nrt", "sin", "syd", "gru"}  # one bot per ISP; kddi and starhub land apart
    for p in data["pops"]:
        if p["pop"] in with_bots:
            assert p["share"] > 0, p
            assert p["share"] <= 2 * p["bot_share"], p  # no PoP takes more than twice its bots' share
    legit = {p["pop"]: p["legit"] for p in data["pops"]}
    assert all(legit[p]["success"] >= 0.9 for p in with_bots), legit
    assert data["restored"] is True and not data["problems"]


def test_unicast_target_puts_it_all_on_that_pop(default_lab: Lab) -> None:
    data = ddos(default_lab, "--pps", "800", "--target", "pop:sin")
    assert data["address"] == str(default_lab.running.plan.unicast_of("sin"))
    sin = next(p for p in data["pops"] if p["pop"] == "sin")
    assert sin["received"] >= 0.99 * data["sent"], data["pops"]


def test_withdraw_moves_the_attacked_pops_legitimate_clients_and_is_undone(default_lab: Lab) -> None:
    running = default_lab.running
    before = predictions(running, running.plan.clients)
    data = ddos(default_lab, "--bots", "1", "--pps", "400", "--spread", "concentrated:dtag", "--policy", "withdraw",
                "--threshold", "200")
    assert [(a["pop"], a["action"]) for a in data["actions"]][:1] == [("fra", "withdraw")]
    assert ("fra", "restore") in [(a["pop"], a["action"]) for a in data["actions"]]
    dtag_c1 = next(c for c in data["clients"] if c["client"] == "dtag-c1")
    assert dtag_c1["before"] == "fra"
    assert any(pop != "fra" for pop in dtag_c1["during"]), dtag_c1  # moved: another PoP answered it
    assert data["restored"] is True
    assert_put_back(default_lab, before)


def test_sigterm_mid_attack_undoes_the_withdraw_and_removes_the_counters(default_lab: Lab, tmp_path: Path) -> None:
    running = default_lab.running
    before = predictions(running, running.plan.clients)
    proc = subprocess.Popen([CLI, "ddos", "--lab", default_lab.name, "--duration", "20", "--bots", "1", "--pps", "400",
                             "--spread", "concentrated:dtag", "--policy", "withdraw", "--threshold", "200",
                             "--report", str(tmp_path)], stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until fra's counter has crossed the threshold and it withdrew
        line = proc.stderr.readline()
        if line.startswith("t=") and "fra" in line:
            time.sleep(1.5)
            break
    assert not observe.announcing(running.plan, running.vty("fra"))
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 143, rest
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["interrupted"] == "interrupted by SIGTERM"
    assert ("fra", "withdraw") in [(a["pop"], a["action"]) for a in report["actions"]]
    assert report["received"] > 0
    deadline = time.monotonic() + 15  # BGP carries fra's re-announcement to every ISP
    while time.monotonic() < deadline and predictions(running, running.plan.clients) != before:
        time.sleep(0.5)
    assert_put_back(default_lab, before)
