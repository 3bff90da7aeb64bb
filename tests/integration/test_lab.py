"""The default topology, booted for real: BGP is up, clients reach the anycast address, and the PoP
that BGP predicts for each client is the PoP that answers it."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import pytest
from anycastlab.lifecycle import Lab

ANYCAST = "198.51.100.10"


def dig(lab: Lab, client: str, *extra: str) -> str:
    out = lab.exec(client, ["dig", "+short", "+time=2", "+tries=2", *extra, f"@{ANYCAST}", "id.server", "CH", "TXT"])
    return out.stdout.strip().strip('"')


def test_every_session_is_established(default_lab: Lab) -> None:
    status = default_lab.status()
    sessions = [(r["name"], s["peer"], s["state"]) for r in status["routers"] for s in r["sessions"]]
    assert len(sessions) == 2 * len(default_lab.running.plan.sessions())
    assert [s for s in sessions if s[2] != "Established"] == []


def test_every_pop_announces(default_lab: Lab) -> None:
    pops = default_lab.status()["pops"]
    assert {p["name"] for p in pops} == {"fra", "iad", "nrt", "sin", "syd", "gru"}
    assert all(p["announcing"] for p in pops)


def test_every_client_reaches_anycast_over_icmp(default_lab: Lab) -> None:
    for client in default_lab.running.plan.clients:
        out = default_lab.exec(client.name, ["ping", "-n", "-c", "2", "-W", "2", ANYCAST])
        assert out.returncode == 0, f"{client.name}: {out.stdout}"


def test_every_client_reaches_anycast_over_tcp(default_lab: Lab) -> None:
    for client in default_lab.running.plan.clients:
        assert dig(default_lab, client.name, "+tcp") != "", f"{client.name}: no TCP answer"


def test_predicted_pop_matches_the_pop_that_answers(default_lab: Lab) -> None:
    clients = default_lab.status()["clients"]
    mismatches = []
    for client in clients:
        answered = dig(default_lab, client["name"])
        if answered != client["predicted_pop"]:
            mismatches.append((client["name"], client["predicted_pop"], answered))
    assert mismatches == []


def test_traceroute_last_hop_is_the_predicted_pops_neighbour(default_lab: Lab) -> None:
    """A second data-plane witness: the router just before the anycast address borders the predicted PoP."""
    plan = default_lab.running.plan
    owner = {str(i.address.ip): n.name for n in plan.routers for i in n.interfaces}
    pops_next_to = {n.name: {nb.name for nb in n.neighbors if plan.nodes[nb.name].role == "pop"} for n in plan.routers}
    for client in default_lab.status()["clients"]:
        out = default_lab.exec(client["name"], ["traceroute", "-n", "-q", "1", "-w", "1", "-m", "12", ANYCAST])
        hops = [line.split()[1] for line in out.stdout.splitlines()[1:] if len(line.split()) > 1]
        assert hops[-1] == ANYCAST, out.stdout
        before = owner[hops[-2]]
        assert pops_next_to[before] == {client["predicted_pop"]}, f"{client['name']}: {hops} ends via {before}"


def test_at_least_three_pops_serve_clients(default_lab: Lab) -> None:
    served = Counter(dig(default_lab, c.name) for c in default_lab.running.plan.clients)
    assert len([p for p in served if p]) >= 3, served


def test_status_json_shape(default_lab: Lab) -> None:
    out = subprocess.run([".venv/bin/anycastlab", "status", "--lab", default_lab.name, "--json"],
                         capture_output=True, text=True, check=True)
    data = json.loads(out.stdout)
    assert data["lab"] == default_lab.name and data["anycast"] == ANYCAST
    assert {"name", "asn", "sessions"} <= set(data["routers"][0])
    assert {"peer", "state"} <= set(data["routers"][0]["sessions"][0])
    assert {"name", "announcing"} <= set(data["pops"][0])
    assert {"name", "address", "predicted_pop"} <= set(data["clients"][0])


def test_unknown_node_is_a_clear_error(default_lab: Lab) -> None:
    out = subprocess.run([".venv/bin/anycastlab", "exec", "--lab", default_lab.name, "nosuch", "--", "true"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "unknown node 'nosuch'" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([".venv/bin/anycastlab", "vtysh", "--lab", default_lab.name, "dtag-c1", "-c", "show bgp"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "'dtag-c1' is a client, not a router" in out.stderr
    out = subprocess.run([".venv/bin/anycastlab", "vtysh", "--lab", default_lab.name, "nosuch", "-c", "show bgp"],
                         capture_output=True, text=True)
    assert out.returncode == 1 and "unknown node 'nosuch'" in out.stderr


def test_vtysh_and_exec_verbs(default_lab: Lab) -> None:
    out = subprocess.run([".venv/bin/anycastlab", "vtysh", "--lab", default_lab.name, "fra", "-c",
                          "show bgp ipv4 unicast summary json"], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout)["as"] == 13335
    out = subprocess.run([".venv/bin/anycastlab", "exec", "--lab", default_lab.name, "fra", "--", "ip", "-br",
                          "addr", "show", "lo"], capture_output=True, text=True, check=True)
    assert ANYCAST in out.stdout
    for command, code in ((["sh", "-c", "exit 3"], 3), (["no-such-command"], 127)):
        out = subprocess.run([".venv/bin/anycastlab", "exec", "--lab", default_lab.name, "dtag-c1", "--", *command],
                             capture_output=True, text=True)
        assert out.returncode == code, out.stderr  # the command's own status, as a shell would give it


@pytest.mark.parametrize("verb", ["status", "nodes"])
def test_verbs_without_a_lab_fail_clearly(verb: str) -> None:
    out = subprocess.run([".venv/bin/anycastlab", verb, "--lab", "no-such-lab"], capture_output=True, text=True)
    assert out.returncode == 1 and "not running" in out.stderr
