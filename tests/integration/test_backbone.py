"""Smart routing, the tiered cache and `compare` on a real lab (tests/topologies/backbone.yaml: a backbone
triangle ams-iad, ams-lhr, lhr-iad; clients land on ams; the origin joins at iad).

The route a fetch takes is read from the PoP's interface byte counters while a 1 MB miss crosses the
backbone, not inferred from RTTs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.backbone import control, tiered
from anycastlab.backbone.compare import compare
from anycastlab.edge import mgmt
from anycastlab.lifecycle import Lab
from anycastlab.runtime import paths

TOPOLOGY = Path(__file__).resolve().parents[1] / "topologies" / "backbone.yaml"
ANYCAST = "198.51.100.10"
HOST = "www.example.com"
CLIENT = "ispa-c1"
BIG = 1_000_000


@pytest.fixture(scope="module", params=["netns", "docker"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, leftovers: Any) -> Iterator[Lab]:
    """The backbone lab on each runtime: smart routing, the tiered cache and compare must hold on both."""
    name = f"{os.environ.get('ANYCASTLAB_TEST_PREFIX', 'b6')}-{request.param[0]}{uuid.uuid4().hex[:6]}"
    booted = Lab.up(TOPOLOGY, name=name, timeout=120, runtime=request.param)
    try:
        yield booted
    finally:
        ledger = leftovers.snapshot(name, tmp_path_factory.mktemp("ledger"))
        assert any(e.name == "backbone/prober" for e in ledger.of_kind("process")), "no prober in the ledger"
        booted.down()
        leftovers.assert_none(ledger, name)  # the prober and the link releaser ended by pid at down too


def anycastlab(lab: Lab, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "anycastlab", *args, "--lab", lab.name], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def rx_bytes(lab: Lab, node: str) -> dict[str, int]:
    """Bytes received per interface, from the node's own /proc/net/dev (read through its pid's namespace)."""
    text = Path(f"/proc/{lab.running.pid(node)}/net/dev").read_text()
    out = {}
    for line in text.splitlines()[2:]:
        name, _, fields = line.partition(":")
        out[name.strip()] = int(fields.split()[0])
    return out


def fetch(lab: Lab, path: str) -> tuple[str, float]:
    """A request from the client through its PoP: (cf-cache-status, time to first byte in ms)."""
    ca = paths.ca_dir(lab.name) / "ca.pem"
    form = "%{http_code} %header{cf-cache-status} %{time_starttransfer}"
    out = lab.exec(CLIENT, ["curl", "-s", "-o", "/dev/null", "-m", "20", "--cacert", str(ca), "--resolve",
                            f"{HOST}:443:{ANYCAST}", "-w", form, f"https://{HOST}{path}"])
    code, status, ttfb = out.stdout.split()
    assert code == "200", out
    return status, float(ttfb) * 1000


def fetch_route(lab: Lab) -> tuple[str, float]:
    """Which of ams's backbone interfaces a 1 MB miss came in on, and the miss's time to first byte."""
    before = rx_bytes(lab, "ams")
    status, ttfb = fetch(lab, f"/cache/{uuid.uuid4().hex}?max-age=60&size={BIG}")
    after = rx_bytes(lab, "ams")
    assert status == "MISS"
    grew = {intf: after[intf] - before[intf] for intf in ("iad", "lhr")}
    busiest = max(grew, key=lambda intf: grew[intf])
    assert grew[busiest] >= BIG, grew
    return busiest, ttfb


def wait_path(lab: Lab, expected: list[str], timeout: float = 30.0) -> None:
    """Until ams's requests to the origin take `expected`, and the answers come back the same way: a miss's
    bytes flow from iad to ams by iad's own costs, which its prober end may set after ams's."""
    back = [expected[-2], *reversed(expected[:-2])]  # iad ... ams
    deadline = time.monotonic() + timeout
    path: list[str] = []
    reverse: list[str] = []
    while time.monotonic() < deadline:
        path = control.paths_to(lab.running, "origin", ["ams"])["ams"]
        reverse = control.paths_to(lab.running, "ams", [back[0]])[back[0]]
        if path == expected and reverse == back:
            return
        time.sleep(0.5)
    state = control.prober_state(lab.running)
    raise AssertionError(f"ams's path to the origin stayed {path} and {back[0]}'s to ams {reverse}, "
                         f"expected {expected} and {back}: {state}")


def wait_rtt(lab: Lab, link: tuple[str, str], low: float, high: float, timeout: float = 15.0) -> None:
    """Until the prober's median RTT for `link` (router, peer) is within [low, high]."""
    deadline = time.monotonic() + timeout
    rtt = None
    while time.monotonic() < deadline:
        state = control.prober_state(lab.running)
        rtt = next(x["rtt_ms"] for x in state["links"] if (x["router"], x["peer"]) == link)
        if rtt is not None and low <= rtt <= high:
            return
        time.sleep(0.5)
    raise AssertionError(f"{link}: the prober's RTT stayed {rtt} ms, expected {low}-{high} ms")


def test_smart_routing_moves_fetches_to_the_faster_path(lab: Lab) -> None:
    wait_path(lab, ["ams", "iad", "origin"])
    assert fetch_route(lab)[0] == "iad"

    anycastlab(lab, "link", "set", "ams", "iad", "--delay", "30ms")
    wait_path(lab, ["ams", "lhr", "iad", "origin"])  # may move on a half-updated median, before ...
    for end in (("ams", "iad"), ("iad", "ams")):  # ... each end's window holds only the new RTT: 2 x 30 ms +- 10%
        wait_rtt(lab, end, 54.0, 66.0)
    wait_path(lab, ["ams", "lhr", "iad", "origin"])  # and both ends' costs are in force
    fetches = [fetch_route(lab) for _ in range(3)]
    assert {route for route, _ in fetches} == {"lhr"}  # every fetch's bytes came over the detour
    # A busy CPU only adds time, so the best of three tells the path: the detour must not pay the slow
    # link's 60 ms RTT.
    assert min(ttfb for _, ttfb in fetches) < 60, fetches

    shown = json.loads(anycastlab(lab, "backbone", "show", "--json"))
    assert shown["smart_routing"] and shown["prober_alive"]
    assert next(p for p in shown["pops"] if p["pop"] == "ams")["path"] == ["ams", "lhr", "iad", "origin"]

    anycastlab(lab, "backbone", "smart", "off")  # OSPF's defaults: the fewest hops, the slow link again
    wait_path(lab, ["ams", "iad", "origin"])
    route, ttfb = fetch_route(lab)
    assert route == "iad" and ttfb >= 60
    anycastlab(lab, "backbone", "smart", "on")
    wait_path(lab, ["ams", "lhr", "iad", "origin"])


def origin_count(lab: Lab, path: str) -> int:
    status, data = mgmt.call(paths.lab_dir(lab.name) / "origin" / "control.sock", "GET", "/stats")
    assert status == 200
    return int(data["by_path"].get(path, 0))


def test_tiered_cache_lower_tier_misses_are_served_by_the_upper_tier(lab: Lab) -> None:
    switched = json.loads(anycastlab(lab, "backbone", "tiered", "on", "--json"))
    assert switched["tiered_cache"] is True and switched["origins"], switched
    try:
        path = f"/cache/{uuid.uuid4().hex}"
        iad = str(lab.plan.nodes["iad"].loopback)
        warm = lab.exec("iad", ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"Host: {HOST}",
                                f"http://{iad}{path}?max-age=60"])
        assert warm.stdout == "200"
        assert fetch(lab, path + "?max-age=60")[0] == "MISS"  # a miss at ams ...
        assert origin_count(lab, path) == 1  # ... that the upper tier answered: the origin saw only iad's fetch
        assert tiered.enabled(lab.running)
    finally:
        anycastlab(lab, "backbone", "tiered", "off")
    other = f"/cache/{uuid.uuid4().hex}"
    fetch(lab, other + "?max-age=60")
    assert origin_count(lab, other) == 1 and not tiered.enabled(lab.running)


def test_compare_orders_cases_as_physics_says(lab: Lab) -> None:
    """The origin 40 ms from its transit (a direct visit pays >= 3 x 80 ms: TCP, TLS, request), the backbone
    detour 10 ms a link (a miss pays ~40 ms more than a hit): hit < miss < direct, with room for a busy CPU.
    Smart routing is off before compare (which ends its cases with it on): compare must put it back."""
    anycastlab(lab, "link", "set", "origin", "ta", "--delay", "40ms")
    anycastlab(lab, "link", "set", "ams", "iad", "--delay", "30ms")  # as the smart routing test left it
    anycastlab(lab, "link", "set", "ams", "lhr", "--delay", "10ms")
    anycastlab(lab, "link", "set", "lhr", "iad", "--delay", "10ms")
    anycastlab(lab, "backbone", "smart", "off")  # compare ends its own cases with both switches on
    try:
        data = compare(lab.running, [CLIENT], repeats=2)
        # both switches as they were before, and the prober acted on it
        assert not control.smart_mode(lab.running) and not control.prober_state(lab.running)["smart"]
        assert not tiered.enabled(lab.running)
    finally:
        anycastlab(lab, "backbone", "smart", "on")
    row = data["clients"][0]
    cases = row["cases"]
    hit, miss, direct = (cases[c]["ttfb_ms"] for c in ("hit", "miss_smart", "direct"))
    assert hit < miss < direct, cases
    assert cases["hit"]["cache"] == ["HIT"] and cases["miss_default"]["cache"] == ["MISS"]
    assert row["pop"] == "ams" and "miss_tiered" in cases
    assert row["tls_pop_ms"] < row["tls_origin_ms"]
    assert row["detour"] and row["smart_path"] == ["ams", "lhr", "iad", "origin"], row
