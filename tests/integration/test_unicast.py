"""Each PoP's unicast service address, on a real default lab: every client reaches every PoP's unicast address
over BGP, the DNS identity and the proxy there name that PoP, the verbs show the addresses, and withdrawing
the anycast /32 (a drill's `withdraw`) leaves the unicast one announced."""

from __future__ import annotations

import json
import time

import pytest
from anycastlab import observe
from anycastlab.cli.main import cli
from anycastlab.drills.faults import inject
from anycastlab.drills.model import Fault
from anycastlab.lifecycle import Lab
from anycastlab.probes import dns
from anycastlab.runtime import paths
from click.testing import CliRunner

pytestmark = pytest.mark.integration


def test_every_client_reaches_every_pops_unicast_address_and_it_names_that_pop(default_lab: Lab) -> None:
    running = default_lab.running
    plan = running.plan
    for pop in plan.pops:
        answers = dns.measure(running, plan.clients, target=str(plan.unicast_of(pop.name)))
        wrong = {c: (r.pop, r.error) for c, r in answers.items() if r.pop != pop.name}
        assert not wrong, f"{pop.name}'s unicast address {plan.unicast_of(pop.name)} answered otherwise: {wrong}"
        assert all(r.rtt_ms is not None and r.rtt_ms > 0 for r in answers.values())


def test_the_proxy_answers_on_each_unicast_address(default_lab: Lab) -> None:
    plan = default_lab.running.plan
    ca = paths.ca_dir(default_lab.name) / "ca.pem"
    client = plan.clients[0].name
    for pop in plan.pops:
        address = plan.unicast_of(pop.name)
        out = default_lab.exec(client, ["curl", "-sS", "-m", "10", "--cacert", str(ca), "--resolve",
                                        f"www.example.com:443:{address}", "https://www.example.com/cdn-cgi/trace"])
        assert out.returncode == 0, out.stderr
        assert f"colo={pop.name}" in out.stdout.split(), out.stdout


def test_status_nodes_and_probe_show_the_unicast_addresses(default_lab: Lab) -> None:
    plan = default_lab.running.plan
    want = {p.name: str(plan.unicast_of(p.name)) for p in plan.pops}
    runner = CliRunner()
    status = json.loads(runner.invoke(cli, ["status", "--lab", default_lab.name, "--json"]).output)
    assert {p["name"]: p["unicast"] for p in status["pops"]} == want
    nodes = json.loads(runner.invoke(cli, ["nodes", "--lab", default_lab.name, "--json"]).output)
    assert {n["name"]: n["unicast"] for n in nodes if n["role"] == "pop"} == want
    assert all(f"{want[n['name']]}/32" in n["addresses"] for n in nodes if n["role"] == "pop")
    probe = json.loads(runner.invoke(cli, ["probe", "--lab", default_lab.name, "--method", "dns", "--json"]).output)
    assert {p["pop"]: p["unicast"] for p in probe["pops"] if p["pop"]} == want
    text = runner.invoke(cli, ["status", "--lab", default_lab.name]).output
    assert all(address in text for address in want.values())


def test_withdrawing_the_anycast_prefix_keeps_the_unicast_one(default_lab: Lab) -> None:
    running = default_lab.running
    plan = running.plan
    pop = "fra"
    unicast = str(plan.unicast_of(pop))
    isps = [e.name for e in plan.eyeballs]
    injected = inject(running, Fault(mode="withdraw", pop=pop))
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until no eyeball's best anycast path leads to fra any more
            if all(observe.predicted_pop(plan, isp, running.vty) != pop for isp in isps):
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"{pop}'s anycast withdrawal did not reach every eyeball in 15 s")
        answers = dns.measure(running, plan.clients, target=unicast)
        assert {r.pop for r in answers.values()} == {pop}, answers
        for isp in isps:
            route = json.loads(default_lab.vtysh(isp, f"show ip bgp {unicast}/32 json"))
            assert route.get("paths"), f"{isp} lost the route to {pop}'s unicast address: {route}"
    finally:
        injected.undo()
