"""DNS steering against anycast on a real default lab with `steering.dns` on, on both runtimes: gdnsd and every
ISP's unbound are real processes in the lab's nodes (and gone after `down`), resolvers give each ISP its
predicted PoP, and a new TTL reaches clients after a reload and a flush. On netns, two bounded experiments
(crash at fra, and a user move; TTL 5 s) show what the mechanisms imply for each arm."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from anycastlab.lifecycle import Lab
from anycastlab.runtime import netns, paths, procs
from anycastlab.runtime.ledger import Ledger
from anycastlab.steering.dnsquery import query
from anycastlab.steering.experiment import Settings, run_experiment
from anycastlab.steering.plan import steering_plan
from anycastlab.steering.report import expectations, write_reports
from anycastlab.steering.service import flush_resolvers, pop_states, set_ttl
from anycastlab.steering.topology import with_steering

pytestmark = pytest.mark.integration


def served_by(pid: int) -> int:
    """The process doing the work behind a recorded pid: itself on netns; on docker the recorded pid is the
    nsenter that entered the container's PID namespace (which needs a fork), and the work is its one child."""
    if Path(f"/proc/{pid}/exe").resolve().name != "nsenter":
        return pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, (pid, children)
    return int(children[0])


@pytest.fixture(scope="module", params=["netns", "docker"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, leftovers: type) -> Iterator[Lab]:
    """The default lab with steering on, on each runtime: the host's gdnsd and unbound, or the images'."""
    with with_steering("default", prefix=f"s{request.param[0]}{os.getpid()}") as (path, name):
        lab = Lab.up(path, name=name, timeout=150, runtime=request.param)
    ledger = leftovers.snapshot(name, tmp_path_factory.mktemp("steering-ledger"))
    recorded = Ledger(paths.ledger_file(lab.running.directory)).of_kind("process")
    steering = [(e.name, pid, procs.start_time(pid)) for e in recorded if e.name.startswith("steering/")
                for pid in {e.data["pid"], served_by(e.data["pid"])}]
    try:
        yield lab
    finally:
        lab.down()
        alive = [(n, pid) for n, pid, start in steering if procs.is_alive(pid, start)]
        assert not alive, f"steering processes left after down: {alive}"
        leftovers.assert_none(ledger, name)


def test_gdnsd_and_unbound_are_real_processes_inside_the_lab(lab: Lab) -> None:
    running = lab.running
    sp = steering_plan(running.plan)
    assert sp is not None
    recorded = {e.name: e.data["pid"] for e in Ledger(paths.ledger_file(running.directory)).of_kind("process")}
    where = {"steering/gdnsd": running.plan.topology.origin.name,
             **{f"steering/unbound-{isp}": isp for isp in sp.resolvers}}
    for what, node in where.items():
        pid = served_by(recorded[what])
        binary = Path(f"/proc/{pid}/exe").resolve().name
        assert binary == ("gdnsd" if what.endswith("gdnsd") else "unbound"), (what, binary)
        assert netns.netns_inode(pid) == netns.netns_inode(running.pid(node)), f"{what} is not in {node}'s namespace"
        # and from the node's own software: the host's files on netns, the container's (its image) on docker
        mnt = Path(f"/proc/{pid}/ns/mnt").stat().st_ino
        assert mnt == Path(f"/proc/{running.pid(node)}/ns/mnt").stat().st_ino, f"{what} is not in {node}'s files"


def test_each_isps_resolver_gives_its_predicted_pop_and_the_anycast_name_the_anycast_address(lab: Lab) -> None:
    running = lab.running
    sp = steering_plan(running.plan)
    assert sp is not None
    for client in running.plan.clients:
        resolver = sp.resolver_of_client(running.plan, client.name)
        steered = query(running.pid(client.name), str(resolver.address), sp.config.name)
        anycast = query(running.pid(client.name), str(resolver.address), sp.config.anycast_name)
        assert steered is not None and steered.address == str(sp.unicast[resolver.pops[0]]), (client.name, steered)
        assert 0 < steered.ttl <= sp.config.ttl
        assert anycast is not None and anycast.addresses == (str(sp.anycast),)
    # the preference starts with the PoP the anycast prediction gives the ISP (status reads BGP's own choice)
    predicted = {c["isp"]: c["predicted_pop"] for c in lab.status()["clients"]}
    assert {isp: r.pops[0] for isp, r in sp.resolvers.items()} == predicted


# netns only, to keep `make test` in its time (65 s a run): on docker, what the experiment does to gdnsd and
# the resolvers through the containers (reload, flush, states) is the next test's.
@pytest.mark.parametrize("lab", ["netns"], indirect=True)
def test_a_crash_anycast_recovers_in_under_a_second_dns_waits_for_detection_and_ttl(lab: Lab, tmp_path: Path) -> None:
    settings = Settings(fault="crash", pop="fra", ttls=[5])
    result = run_experiment(lab.running, settings)
    assert result.complete, result.error
    anycast, dns = result.arm("anycast"), result.arm("dns-ttl5")
    detection_min = dns.model["detection_min_s"]
    sp = steering_plan(lab.running.plan)
    assert sp is not None
    next_choice = next(p for p in sp.resolvers["dtag"].pops if p != "fra")
    for arm in (anycast, dns):
        affected = [c for c in arm.clients if c["affected"]]
        assert {c["name"] for c in affected} == {"dtag-c1", "dtag-c2"}, arm.clients
        for c in affected:  # recovered, on another PoP, while fra was still down
            assert c["pop_after"] not in (None, "fra"), (arm.name, c)
        others = [c for c in arm.clients if not c["affected"]]
        assert all(c["failed"] == 0 and c["outage_s"] == 0 for c in others), (arm.name, others)
        # openssl's saved sessions: resumed where the same proxy still serves, new where another PoP does
        assert all(c["tls_session_resumed"] is False for c in affected), (arm.name, affected)
        assert all(c["tls_session_resumed"] is True for c in others), (arm.name, others)
    for c in (c for c in anycast.clients if c["affected"]):
        assert c["outage_s"] < 1.0, c
    for c in (c for c in dns.clients if c["affected"]):
        # failed at least until gdnsd could have marked fra DOWN, and not beyond detection + TTL + one timeout
        assert c["outage_s"] >= detection_min - settings.interval_s, c
        assert c["outage_s"] <= dns.model["outage_max_s"] + settings.timeout_s, c
        assert c["resolver_changed_s"] is not None and c["resolver_changed_s"] >= detection_min - 0.5, c
        assert c["pop_after"] == next_choice, c  # gdnsd's next PoP for dtag, not where BGP sends it
    assert all(e.passed for e in expectations(result)), [(e.name, e.message) for e in expectations(result)]
    written = {p.name for p in write_reports(result, tmp_path, [p.name for p in lab.running.plan.pops])}
    assert {"report.json", "report.md", "junit.xml", "timeline-ttl5.png"} <= written


# netns only, to keep `make test` in its time (47 s a run): the experiment is the same code on both runtimes,
# and a move between containers is test_docker_runtime's.
@pytest.mark.parametrize("lab", ["netns"], indirect=True)
def test_a_move_anycast_serves_the_next_request_near_dns_keeps_the_far_pop_until_the_ttl(lab: Lab) -> None:
    settings = Settings(ttls=[5], move=("dtag-c1", "comcast"))
    result = run_experiment(lab.running, settings)
    assert result.complete, result.error
    assert result.move == {"client": "dtag-c1", "from": "dtag", "to": "comcast", "near_pop": "iad", "far_pop": "fra"}
    anycast, dns = result.arm("anycast").summary["mover"], result.arm("dns-ttl5").summary["mover"]
    # Anycast: the first new connection's request after the move, and every answer since, from iad (requests on
    # connections from before the move hang on the vanished address until their timeout: a move breaks them).
    assert anycast["next_request"]["pop"] == "iad" and anycast["next_request"]["error"] is None, anycast
    assert set(anycast["requests_after_move"]) == {"iad"}, anycast
    # DNS: on fra (across the Atlantic now) until the answer it holds runs out, then comcast's resolver's iad.
    expires = dns["cache_expires_after_move_s"]
    assert expires is not None and expires >= 3.5, dns  # moved just after a fresh answer (TTL 5 s)
    assert dns["requests_after_move"].get("fra", 0) > 0 and dns["on_near_pop_s"] >= expires - 0.05, dns
    assert dns["on_near_pop_s"] <= expires + settings.timeout_s + 2 * settings.interval_s, dns
    assert dns["ping_address"] == str(lab.running.plan.unicast_of("fra"))
    assert dns["ping_ms"] > 3 * anycast["ping_ms"], (dns, anycast)  # the far PoP, not the near one
    assert anycast["tls_session_resumed"] is False and dns["tls_session_resumed"] is False  # iad, not fra
    for arm in result.arms:
        assert arm.summary["failed_requests_other_clients"] == 0, arm.name
    assert all(e.passed for e in expectations(result)), [(e.name, e.message) for e in expectations(result)]
    assert steering_plan(lab.running.plan) is not None and lab.running.plan.nodes["dtag-c1"].isp == "dtag"


def test_a_new_ttl_is_served_after_gdnsd_reloads_and_the_resolvers_flush(lab: Lab) -> None:
    """What the experiment does between its arms, through each node's own gdnsdctl and unbound-control: gdnsd
    sees every PoP up, a new TTL reaches clients once the zone is reloaded and the caches flushed, and back."""
    running = lab.running
    sp = steering_plan(running.plan)
    assert sp is not None
    assert {pop: state[:2] for pop, state in pop_states(running).items()} == {p: "UP" for p in sp.unicast}
    client = running.plan.clients[0].name
    resolver = sp.resolver_of_client(running.plan, client)
    flush_resolvers(running)
    before = query(running.pid(client), str(resolver.address), sp.config.name)
    assert before is not None and before.ttl > 7, before  # fetched afresh at the topology's TTL (30 s)
    try:
        set_ttl(running, 7, serial=90)
        flush_resolvers(running)
        after = query(running.pid(client), str(resolver.address), sp.config.name)
        assert after is not None and 5 <= after.ttl <= 7, after
        assert after.address == before.address
    finally:
        set_ttl(running, sp.config.ttl, serial=91)
        flush_resolvers(running)
    again = query(running.pid(client), str(resolver.address), sp.config.name)
    assert again is not None and again.ttl > 7, again
