"""Link latency on a real small lab: a delayed link shows in ping, bad changes change nothing, a dead
releaser fails open and can be started again, the delay process ends at `down`. Labs here are named
`l6-*` (ANYCASTLAB_TEST_PREFIX replaces `l6`)."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.lifecycle import Lab
from anycastlab.runtime import paths, procs
from anycastlab.runtime.links import control
from measure import assert_rtt, peer_address, ping_rtts

CLI = str(Path(sys.executable).parent / "anycastlab")
PREFIX = os.environ.get("ANYCASTLAB_TEST_PREFIX", "l6")
LAB = f"{PREFIX}-links-{os.getpid()}"  # a concurrent run of these tests gets its own lab
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, leftovers: Any) -> Iterator[Lab]:
    lab = Lab.up("small", name=LAB, timeout=90)
    try:
        yield lab
    finally:
        ledger = leftovers.snapshot(LAB, tmp_path_factory.mktemp("links-ledger"))  # all it ever started
        lab.down()
        leftovers.assert_none(ledger, LAB)  # the delay releaser among them


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args, "--lab", LAB], capture_output=True, text=True, timeout=60)


def test_status_names_the_mechanism(lab: Lab) -> None:
    links = lab.status()["links"]
    assert links["mechanism"] in ("netem+tbf", "netem", "nfqueue+tbf", "nfqueue"), links
    if links["mechanism"].startswith("nfqueue"):
        assert links["releaser"] is not None and links["releaser"]["running"]
    text = cli("status").stdout
    assert f"link shaping {links['mechanism']}" in text


def test_link_set_20ms_gives_40ms_rtt(lab: Lab) -> None:
    out = cli("link", "set", "ams", "ta", "--delay", "20ms")
    assert out.returncode == 0, out.stderr
    assert_rtt(ping_rtts(lab, "ams", peer_address(lab, "ams", "ta")), 40.0, 20)
    shown = json.loads(cli("link", "show", "--json").stdout)
    entry = next(e for e in shown["links"] if {e["a"], e["b"]} == {"ams", "ta"})
    assert (entry["delay_ms"], entry["source"]) == (20.0, "runtime")
    # and back: without the delay the link is fast again
    assert cli("link", "set", "ta", "ams", "--delay", "0ms").returncode == 0
    assert max(ping_rtts(lab, "ams", peer_address(lab, "ams", "ta"), count=5)) < 5.0


def assert_jittered(rtts: list[float], delay: float, jitter: float) -> None:
    """RTTs of 60 sparse pings over a link of `delay` +- `jitter` ms each way. An RTT is the sum of two
    uniform one-way draws: within 2 x (delay -+ jitter), median 2 x delay, and for 20 +- 5 ms p10..p90
    about 34.5..45.5 ms. The 2-core machine is shared, so a ping may be scheduled late now and then (one
    came back at 61 ms for a 50 ms bound on a loaded machine): lateness is judged at the 90th percentile,
    never at the maximum; earliness at the minimum, since scheduling noise never makes a packet early."""
    assert len(rtts) == 60, rtts
    deciles = statistics.quantiles(rtts, n=10)
    p10, median, p90 = deciles[0], deciles[4], deciles[8]
    shown = sorted(rtts)
    assert min(rtts) >= 2 * (delay - jitter) - 1.0, f"a reply came back before 2 x (delay - jitter): {shown}"
    # the allowance for scheduling noise: 1.5 ms on the 90th percentile (6 of 60 may be later by any amount)
    assert p90 <= 2 * (delay + jitter) + 1.5, f"p90 {p90:.1f} ms is above 2 x (delay + jitter) + 1.5 ms: {shown}"
    assert abs(median - 2 * delay) <= 3.0, f"median {median:.1f} ms, want {2 * delay} +- 3 ms: {shown}"
    # applied jitter spreads the middle 80% over 2.2 x jitter; without it only scheduling noise spreads it
    assert p90 - p10 >= jitter, f"p10..p90 only {p90 - p10:.1f} ms apart: is the jitter applied? {shown}"


def reply_order(lab: Lab, node: str, address: str, count: int, interval: float) -> list[int]:
    """The icmp_seq of each echo reply in the order they came back (bounded: `count` requests)."""
    out = lab.exec(node, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2", address],
                   timeout=count * interval + 10)
    return [int(m) for m in re.findall(r"icmp_seq=(\d+) .*time=", out.stdout)]


def test_jitter_spreads_without_reordering(lab: Lab) -> None:
    delay, jitter = 20.0, 5.0
    assert cli("link", "set", "ams", "ta", "--delay", f"{delay}ms", "--jitter", f"{jitter}ms").returncode == 0
    address = peer_address(lab, "ams", "ta")
    try:
        rtts = ping_rtts(lab, "ams", address, count=60)  # 100 ms apart: each delay is jitter's draw alone
        # 2 ms apart, closer than 2 x jitter: a delay line that reorders would bring these back out of order
        order = reply_order(lab, "ams", address, count=200, interval=0.002)
    finally:
        assert cli("link", "set", "ams", "ta", "--delay", "0ms", "--jitter", "0ms").returncode == 0
    assert_jittered(rtts, delay, jitter)
    assert len(order) == 200, f"{len(order)} of 200 replies"
    if control.summary(lab.running.directory)["mechanism"].startswith("nfqueue"):
        # the releaser's promise; netem, used where the kernel has it, reorders by design (README, Links)
        assert order == sorted(order), f"replies reordered: {order}"


def connect_ms(lab: Lab, client: str, count: int = 7) -> float:
    """Median TCP connect time of `count` sequential HTTP requests from a client to its PoP."""
    url = f"http://{lab.plan.topology.anycast.ip}/cdn-cgi/trace"
    times = []
    for _ in range(count):
        out = lab.exec(client, ["curl", "-s", "-o", "/dev/null", "--max-time", "5", "-w", "%{time_connect}", url],
                       timeout=10)
        if out.returncode == 0:
            times.append(float(out.stdout) * 1000)
    assert len(times) == count, f"only {len(times)} of {count} requests answered"
    return sorted(times)[count // 2]


def test_http_connect_gains_one_rtt(lab: Lab) -> None:
    """Light HTTP: 20 ms on the client's access link adds one 40 ms round trip to the TCP handshake."""
    base = connect_ms(lab, "ispa-c1")
    assert cli("link", "set", "ispa", "ispa-c1", "--delay", "20ms").returncode == 0
    try:
        added = connect_ms(lab, "ispa-c1") - base
    finally:
        assert cli("link", "set", "ispa", "ispa-c1", "--delay", "0ms").returncode == 0
    assert 36.0 <= added <= 44.0, f"connect took {added:.2f} ms longer, want 40 ms +- 10%"


def test_loss_drops_about_that_share(lab: Lab) -> None:
    assert cli("link", "set", "ispa", "ispa-c1", "--loss", "20%").returncode == 0
    try:
        replies = len(ping_rtts(lab, "ispa-c1", peer_address(lab, "ispa-c1", "ispa"), count=60, interval=0.02))
    finally:
        assert cli("link", "set", "ispa", "ispa-c1", "--loss", "0%").returncode == 0
    # each direction drops 20%: 36% of round trips are lost on average (sd about 6% over 60 pings)
    assert 10 <= 60 - replies <= 40, f"{60 - replies} of 60 lost"


def test_rate_puts_tbf_on_both_ends(lab: Lab) -> None:
    assert cli("link", "set", "ord", "tb", "--rate", "10mbit").returncode == 0
    for node, dev in (("ord", "tb"), ("tb", "ord")):
        shown = lab.exec(node, ["tc", "qdisc", "show", "dev", dev]).stdout
        assert "rate 10Mbit" in shown, shown
    assert cli("link", "set", "ord", "tb", "--rate", "none").returncode == 0
    assert "tbf" not in lab.exec("ord", ["tc", "qdisc", "show", "dev", "tb"]).stdout


def kernel_state(lab: Lab) -> list[str]:
    out = []
    for node in ("ams", "ta", "ispa"):
        out.append(lab.exec(node, ["iptables", "-w", "5", "-t", "mangle", "-S"]).stdout)
        out.append(lab.exec(node, ["tc", "qdisc", "show"]).stdout)
    return out


@pytest.mark.parametrize(("args", "message"), [
    (["ams", "nowhere", "--delay", "5ms"], "unknown node 'nowhere'"),
    (["ams", "ispa", "--delay", "5ms"], "there is no link between ams and ispa"),
    (["ams", "ta", "--delay", "5 parsecs"], "delay must be a duration"),
    (["ams", "ta", "--loss", "120%"], "out of range"),
    (["ams", "ta", "--rate", "10mbps"], "bits, as tc reads them"),
    (["ams", "ta"], "nothing to change"),
])
def test_bad_link_set_changes_nothing(lab: Lab, args: list[str], message: str) -> None:
    state_before = paths.links_file(lab.running.directory).read_text()
    kernel_before = kernel_state(lab)
    out = cli("link", "set", *args)
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and message in out.stderr and len(out.stderr.splitlines()) == 1
    assert paths.links_file(lab.running.directory).read_text() == state_before
    assert kernel_state(lab) == kernel_before


def test_topology_override_and_down_ends_the_delay_process(tmp_path: Path, leftovers: Any) -> None:
    """A `links:` override is in force from the start; if the releaser dies links fail open (undelayed),
    then the supervisor starts it again and the delay comes back; `down` leaves nothing (the restarted
    releaser included)."""
    topo = tmp_path / "override.yaml"
    topo.write_text((ROOT / "topologies" / "small.yaml").read_text()
                    + "links:\n  - {between: [ispa, ispa-c2], delay: 10ms}\n")
    name = f"{PREFIX}-override-{os.getpid()}"
    lab = Lab.up(topo, name=name, timeout=90)
    ledger = leftovers.snapshot(name, tmp_path)
    try:
        target = peer_address(lab, "ispa-c2", "ispa")
        assert_rtt(ping_rtts(lab, "ispa-c2", target), 20.0, 20)
        shown = json.loads(subprocess.run([CLI, "link", "show", "--json", "--lab", name], capture_output=True,
                                          text=True, timeout=60, check=True).stdout)
        entry = next(e for e in shown["links"] if {e["a"], e["b"]} == {"ispa", "ispa-c2"})
        assert (entry["delay_ms"], entry["source"], entry["applied"]) == (10.0, "topology", True)
        releaser = control.read_state(lab.running.directory)["releaser"]
        if releaser is not None:
            # Holding the link lock (as a `link set` in progress does) keeps the supervisor from restarting
            # it, so the fail-open path can be seen: undelayed, not dark, and status says so.
            with control._locked(lab.running.directory):
                assert procs.terminate([(releaser["pid"], releaser["start"])], grace=0.0)
                assert max(ping_rtts(lab, "ispa-c2", target, count=5)) < 5.0
                assert lab.status()["links"]["releaser"]["running"] is False

            def restarted() -> bool:
                now = control.read_state(lab.running.directory)["releaser"]
                return bool(now["restarts"] == 1 and procs.is_alive(now["pid"], now["start"]))

            # The supervisor's health loop starts it again (links pass undelayed meanwhile).
            assert procs.wait_for(restarted, 15.0, interval=0.2), "the supervisor did not restart the releaser"
            status = lab.status()["links"]["releaser"]
            assert (status["running"], status["restarts"]) == (True, 1)
            assert_rtt(ping_rtts(lab, "ispa-c2", target), 20.0, 20)  # the delay is back, from the same rules
            out = subprocess.run([CLI, "link", "set", "ispa", "ispa-c2", "--delay", "5ms", "--lab", name],
                                 capture_output=True, text=True, timeout=60)
            assert out.returncode == 0, out.stderr  # link set accepts changes again
            ledger = leftovers.snapshot(name, tmp_path)  # now naming the new releaser too
    finally:
        lab.down()
    leftovers.assert_none(ledger, name)
    if releaser is None:  # the override and the clean `down` were checked; the fail-open path needs a releaser
        pytest.skip("this kernel delays links with netem, so there is no releaser process: its fail-open and "
                    "restart path was not exercised (the override and a clean down were)")


def test_link_down_up_and_reset(lab: Lab) -> None:
    """`--down` cuts the link (pings fail), `--up` brings it back, `--reset` puts the derived delay back."""
    address = peer_address(lab, "ams", "ta")
    link = lab.plan.link("ams", "ta")
    assert link is not None
    derived = link.shaping.to_json()  # what the topology derives (earlier tests changed the link since)
    assert cli("link", "set", "ams", "ta", "--down").returncode == 0
    try:
        assert ping_rtts(lab, "ams", address, count=3) == []
        shown = json.loads(cli("link", "show", "--json").stdout)
        assert next(e for e in shown["links"] if {e["a"], e["b"]} == {"ams", "ta"})["up"] is False
    finally:
        assert cli("link", "set", "ams", "ta", "--up").returncode == 0
    assert len(ping_rtts(lab, "ams", address, count=3)) == 3
    assert cli("link", "set", "ams", "ta", "--delay", "15ms").returncode == 0
    out = cli("link", "set", "ams", "ta", "--reset", "--json")
    assert out.returncode == 0, out.stderr
    reset = json.loads(out.stdout)
    assert (reset["delay_ms"], reset["source"]) == (derived["delay_ms"], derived["source"])
    bad = cli("link", "set", "ams", "ta", "--reset", "--delay", "1ms")
    assert bad.returncode == 2 and "--reset" in bad.stderr
