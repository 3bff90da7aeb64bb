"""Probes against a real default lab: four methods agree with each other and with BGP, the census follows a
withdrawal to the PoP BGP predicts, the continuous mode keeps its rate, and the map names every node."""

from __future__ import annotations

import html
import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from anycastlab.cli.main import cli
from anycastlab.lifecycle import Lab
from anycastlab.probes.probe import ALL, predictions, run_probe
from anycastlab.probes.watch import watch
from anycastlab.runtime import cleanup, paths
from anycastlab.runtime.ledger import Ledger
from click.testing import CliRunner

pytestmark = pytest.mark.integration
NAME = "probes-it"
ANYCAST = "198.51.100.10/32"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = Lab.up("default", name=NAME, timeout=90)
    saved = paths.ledger_file(tmp_path_factory.mktemp("probes-ledger"))
    saved.write_bytes(paths.ledger_file(paths.lab_dir(NAME)).read_bytes())
    try:
        yield lab
    finally:
        lab.down()
        ledger = Ledger(saved)
        assert not cleanup.recorded_processes(ledger), "processes left behind"
        assert not cleanup.live_namespaces(ledger), "namespaces left behind"
        assert not paths.lab_dir(NAME).exists()


def proxies_running(lab: Lab) -> bool:
    """Whether this lab starts edge proxies (the ledger names one process per PoP proxy)."""
    names = {e.name for e in Ledger(paths.ledger_file(lab.running.directory)).of_kind("process")}
    return all(f"{p.name}/proxy" in names for p in lab.running.plan.pops)


def test_every_method_agrees_with_each_other_and_with_bgp(lab: Lab) -> None:
    run = run_probe(lab.running)
    if proxies_running(lab):
        assert run.methods == ALL, f"a method did not run: {run.unavailable}"
    else:  # no proxy in this lab: http must say so, not guess
        assert run.methods == [m for m in ALL if m != "http"]
        assert "no edge proxy" in run.unavailable["http"]
    data = run.to_json()
    wrong = [(c["name"], c["predicted_pop"], c["methods"]) for c in data["clients"] if not c["agree"]]
    assert not wrong, f"disagreements: {wrong}"
    assert data["agree"] is True
    for client in data["clients"]:
        assert client["rtt_ms"] is not None and client["rtt_ms"] > 0
        assert client["hops"] is not None and client["hops"] >= 2  # ISP router, then at least the PoP
        assert client["details"]["traceroute"]["pop_from"] == "record-route"
        assert client["details"]["dns"]["nsid"] == client["details"]["dns"]["txt"]
    serving = {c["pop"] for c in data["clients"]}
    assert len(serving) >= 3, serving


def test_census_shows_a_withdrawn_pops_clients_move_where_bgp_predicts(lab: Lab) -> None:
    running = lab.running
    before = run_probe(running, ["census"], save=False)
    share = Counter(c.pop for c in before.clients)
    pop = max((p for p in share if p), key=lambda p: (share[p], p))
    movers = [c.name for c in before.clients if c.pop == pop]
    mover_isps = sorted({c.isp for c in before.clients if c.pop == pop and c.isp})
    withdraw = ["configure terminal", "router bgp 13335", "address-family ipv4 unicast",
                f"no network {ANYCAST} route-map ORIGINATE"]
    lab.vtysh(pop, *withdraw)
    try:
        nodes = [running.plan.nodes[n] for n in movers]
        deadline = time.monotonic() + 30
        predicted = predictions(running, nodes)
        while any(predicted.get(i) in (pop, None) for i in mover_isps) and time.monotonic() < deadline:
            time.sleep(0.5)
            predicted = predictions(running, nodes)
        assert all(predicted.get(i) not in (pop, None) for i in mover_isps), f"BGP still predicts {predicted}"
        # the data plane follows the control plane within moments; give it a few sweeps
        for _ in range(20):
            after = run_probe(running, ["census"], save=False)
            if after.agree:
                break
            time.sleep(0.5)
        moved = {c.name: (c.pop, c.predicted_pop) for c in after.clients if c.name in movers}
        assert all(found == expected and found != pop for found, expected in moved.values()), moved
        assert after.agree, [(c.name, c.pop, c.predicted_pop) for c in after.clients if not c.agree]
    finally:
        lab.vtysh(pop, *withdraw[:-1], f"network {ANYCAST} route-map ORIGINATE")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        restored = run_probe(running, ["census"], save=False)
        if all(c.pop == pop and c.agree for c in restored.clients if c.name in movers):
            break
        time.sleep(0.5)
    assert all(c.pop == pop for c in restored.clients if c.name in movers), "the PoP did not win its clients back"


def test_watch_keeps_the_requested_rate_for_every_client(lab: Lab) -> None:
    rate, duration = 20.0, 3.0
    started = time.monotonic()
    records = list(watch(lab.running, rate, duration))
    elapsed = time.monotonic() - started
    assert elapsed < duration + 2.0
    clients = [c.name for c in lab.running.plan.clients]
    per_client = Counter(r.client for r in records)
    expected = rate * duration
    assert set(per_client) == set(clients)
    for client in clients:
        assert abs(per_client[client] - expected) <= 0.1 * expected, (client, per_client[client])
        mine = sorted((r for r in records if r.client == client), key=lambda r: r.seq)
        assert [r.seq for r in mine] == list(range(len(mine)))
        achieved = (len(mine) - 1) / (mine[-1].t - mine[0].t)
        assert abs(achieved - rate) <= 0.1 * rate, (client, achieved)
    lost = [r for r in records if r.pop is None]
    assert not lost, f"{len(lost)} probes lost in a steady lab"


def test_watch_stops_when_asked(lab: Lab) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.5, stop.set)
    started = time.monotonic()
    timer.start()
    try:
        records = list(watch(lab.running, 10.0, 60.0, clients=["dtag-c1"], stop=stop, timeout_s=0.5))
    finally:
        timer.cancel()
    assert time.monotonic() - started < 2.0
    assert 3 <= len(records) <= 8


def test_probe_json_and_graph_from_the_command_line(lab: Lab, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["probe", "--lab", NAME, "--method", "census", "--method", "dns", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["agree"] is True
    assert {"name", "pop", "methods", "predicted_pop", "rtt_ms", "hops"} <= set(data["clients"][0])
    assert set(data["clients"][0]["methods"]) == {"census", "dns"}

    out = tmp_path / "catchments.svg"
    result = runner.invoke(cli, ["graph", "--lab", NAME, "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = html.unescape(out.read_text())
    for node in [*lab.running.plan.pops, *lab.running.plan.clients]:
        assert f">{node.name}" in text, f"{node.name} is not on the map"


def test_bad_input_gets_a_clear_error(lab: Lab) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["probe", "--lab", NAME, "--client", "nobody"])
    assert result.exit_code == 1 and "unknown node 'nobody'" in result.output
    result = runner.invoke(cli, ["probe", "--lab", NAME, "--client", "telia"])
    assert result.exit_code == 1 and "'telia' is a transit, not a client" in result.output
    result = runner.invoke(cli, ["probe", "--lab", NAME, "--watch", "--rate", "0"])
    assert result.exit_code == 1 and "--rate" in result.output


def test_ctrl_c_of_watch_prints_the_summary_and_exits_130(lab: Lab, tmp_path: Path) -> None:
    out = tmp_path / "watch.jsonl"
    cli_path = str(Path(sys.executable).parent / "anycastlab")  # the venv's, whatever PATH says
    proc = subprocess.Popen([cli_path, "probe", "--lab", NAME, "--watch", "--rate", "5", "--duration", "30",
                             "--client", "dtag-c1", "--out", str(out), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 3):
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=10)
    assert proc.returncode == 130
    summary = json.loads(stdout)
    assert summary["interrupted"] is True and summary["records"] >= 3
    assert len(out.read_text().splitlines()) == summary["records"]
