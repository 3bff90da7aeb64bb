"""Link latency: units, geography, derivation into the plan, topology overrides and their errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from anycastlab import geo, units
from anycastlab.errors import LabError
from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.runtime.links import control, kernel
from anycastlab.shaping import Shaping
from minimal_topology import GOOD, error_for
from minimal_topology import write as topo_file

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "links" / "default.txt"


# -- units ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "ms"), [("40ms", 40.0), ("1.5ms", 1.5), ("0.2s", 200.0), ("500us", 0.5),
                                          ("0", 0.0), (0, 0.0), (".5ms", 0.5), ("40 ms", 40.0), ("0.005m", 300.0)])
def test_durations(text: object, ms: float) -> None:
    assert units.duration_ms(text) == ms  # the lab's one grammar (lab/durations.py)


@pytest.mark.parametrize("text", ["fast", "-1ms", "40 m", "20000ms", True, "40", 25, "5 sec"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        units.duration_ms(text)


def test_loss_and_rate() -> None:
    assert units.loss_pct("1%") == 1.0 and units.loss_pct(0.5) == 0.5 and units.loss_pct("100%") == 100.0
    assert units.rate_bps("100mbit") == 100_000_000 and units.rate_bps("1Gbit") == 1_000_000_000
    for bad in ["101%", "-1%", "lots"]:
        with pytest.raises(ValueError):
            units.loss_pct(bad)
    for bad in ["100mbps", "100", "1bit"]:  # mbps is megabytes to tc: refused, not guessed
        with pytest.raises(ValueError):
            units.rate_bps(bad)
    assert units.show_rate(100_000_000) == "100mbit" and units.show_rate(None) == "-"


# -- geography ------------------------------------------------------------------------------------------

def test_distance_and_delay() -> None:
    fra, iad = geo.Location(50.1155, 8.6842), geo.Location(39.0437, -77.4875)
    km = geo.distance_km(fra, iad)
    assert 6500 < km < 6650  # Frankfurt-Ashburn, published great-circle figure about 6,560 km
    assert geo.derived_delay_ms(km) == pytest.approx(km / 200 + 0.1, abs=0.01)
    assert geo.derived_delay_ms(0.0) == geo.PER_HOP_MS
    assert geo.derived_delay_ms(None) == geo.PER_HOP_MS  # no location: the hop constant alone


def test_city_lookup() -> None:
    frankfurt = geo.find_city("Frankfurt", "europe")
    assert frankfurt is not None and abs(frankfurt.lat - 50.11) < 0.05  # am Main, not (Oder)
    ny = geo.find_city("new york", "north-america")
    assert ny is not None and abs(ny.lon + 74.0) < 0.1
    assert geo.find_city("São Paulo") == geo.find_city("Sao Paulo")
    assert geo.find_city("Nowhereburg") is None


def test_default_topology_delays(topologies_dir: Path) -> None:
    plan = build_plan(load_topology(topologies_dir / "default.yaml"))
    fra_iad = plan.link("fra", "iad")
    assert fra_iad is not None and 30 < fra_iad.shaping.delay_ms < 36 and fra_iad.shaping.source == "geography"
    for link in plan.links:
        if link.kind == "access":  # clients sit in their ISP's city
            assert link.shaping.distance_km == 0 and link.shaping.delay_ms == geo.PER_HOP_MS
        else:
            assert link.shaping.distance_km is not None, f"{link.a}-{link.b} has no location"
    assert sum(link.shaping.needs_delay for link in plan.links) >= 20


def test_default_topology_golden(topologies_dir: Path) -> None:
    """Every link's derived shaping, pinned. Regenerate with UPDATE_GOLDEN=1."""
    plan = build_plan(load_topology(topologies_dir / "default.yaml"))
    lines = [f"{link.a}-{link.b} {link.kind} km={link.shaping.distance_km} delay={link.shaping.delay_ms}ms"
             for link in plan.links]
    text = "\n".join(lines) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "derived link delays changed (UPDATE_GOLDEN=1 to accept)"


def test_plan_is_deterministic_with_shaping(topologies_dir: Path) -> None:
    a = build_plan(load_topology(topologies_dir / "default.yaml"))
    b = build_plan(load_topology(topologies_dir / "default.yaml"))
    assert [link.shaping for link in a.links] == [link.shaping for link in b.links]


def test_city_alone_gives_the_same_delay_as_coordinates(tmp_path: Path) -> None:
    by_city = GOOD.replace("  - name: ams\n", "  - name: ams\n    city: Amsterdam\n    continent: europe\n") \
                  .replace("  - name: ord\n", "  - name: ord\n    city: Chicago\n    continent: north-america\n")
    ams, ord_ = geo.find_city("Amsterdam", "europe"), geo.find_city("Chicago", "north-america")
    assert ams is not None and ord_ is not None
    by_coords = GOOD.replace("  - name: ams\n", f"  - name: ams\n    lat: {ams.lat}\n    lon: {ams.lon}\n") \
                    .replace("  - name: ord\n", f"  - name: ord\n    lat: {ord_.lat}\n    lon: {ord_.lon}\n")
    text = "backbone:\n  - [ams, ord]\n"
    one = build_plan(load_topology(topo_file(tmp_path, by_city + text))).link("ams", "ord")
    two = build_plan(load_topology(topo_file(tmp_path, by_coords + text))).link("ams", "ord")
    assert one is not None and two is not None and one.shaping == two.shaping
    assert 33 < one.shaping.delay_ms < 35  # Amsterdam-Chicago, about 6,600 km


def test_geography_off_keeps_only_overrides(tmp_path: Path) -> None:
    text = GOOD.replace("  - name: ams\n", "  - name: ams\n    city: Amsterdam\n")
    text += "latency: {from_geography: false}\nlinks:\n  - {between: [ams, ta], delay: 7ms}\n"
    plan = build_plan(load_topology(topo_file(tmp_path, text)))
    ams_ta = plan.link("ams", "ta")
    assert ams_ta is not None and ams_ta.shaping.delay_ms == 7.0 and ams_ta.shaping.source == "topology"
    assert all(link.shaping.delay_ms == 0 for link in plan.links if link is not ams_ta)


# -- overrides ------------------------------------------------------------------------------------------

def test_override_replaces_only_named_fields(tmp_path: Path) -> None:
    text = GOOD + ("links:\n  - {between: [ta, ams], loss: 1%, rate: 100mbit}\n"
                   "  - {between: [ispa, ispa-c1], delay: 40ms, jitter: 1ms}\n")
    plan = build_plan(load_topology(topo_file(tmp_path, text)))
    ams_ta, access = plan.link("ams", "ta"), plan.link("ispa", "ispa-c1")
    assert ams_ta is not None and access is not None
    assert ams_ta.shaping == Shaping(delay_ms=geo.PER_HOP_MS, loss_pct=1.0, rate_bps=100_000_000,
                                     source="topology")
    assert (access.shaping.delay_ms, access.shaping.jitter_ms) == (40.0, 1.0)


def test_override_unknown_node(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "links:\n  - {between: [ams, tx], delay: 40ms}\n")
    assert (err.line, err.field) == (16, "links[0].between[1]") and "unknown node 'tx'" in err.message


def test_override_no_such_link(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "links:\n  - between: [ams, ispa]\n    delay: 40ms\n")
    assert (err.line, err.field) == (16, "links[0].between") and "no link between ams and ispa" in err.message


def test_override_listed_twice(tmp_path: Path) -> None:
    twice = "links:\n  - {between: [ams, ta], delay: 4ms}\n  - {between: [ta, ams], loss: 1%}\n"
    err = error_for(tmp_path, GOOD + twice)
    assert (err.line, err.field) == (17, "links[1].between") and "listed twice" in err.message


@pytest.mark.parametrize(("field", "value", "words"), [
    ("delay", "40 msec", "duration like 40ms"), ("jitter", "-1ms", "jitter"), ("loss", "150%", "out of range"),
    ("rate", "100mbps", "bits, as tc reads them")])
def test_override_bad_values(tmp_path: Path, field: str, value: str, words: str) -> None:
    err = error_for(tmp_path, GOOD + f"links:\n  - between: [ams, ta]\n    {field}: {value}\n")
    assert (err.line, err.field) == (17, f"links[0].{field}") and words in err.message


def test_lat_needs_lon(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("  - name: ams\n", "  - name: ams\n    lat: 52.1\n"))
    assert err.field == "pops[0]" and "both lat and lon" in err.message


def test_unknown_city(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("  - name: ams\n", "  - name: ams\n    city: Nowhereburg\n"))
    assert (err.line, err.field) == (7, "pops[0].city") and "unknown city 'Nowhereburg'" in err.message


# -- the kernel commands (pure) -------------------------------------------------------------------------

def test_needs_delay_threshold() -> None:
    assert not Shaping(delay_ms=0.1).needs_delay
    assert Shaping(delay_ms=0.5).needs_delay and Shaping(loss_pct=0.1).needs_delay
    assert Shaping(jitter_ms=0.2).needs_delay


def test_qdisc_commands() -> None:
    netem = kernel.Mechanism("netem", True, "")
    lines = kernel.qdisc_commands("fra", Shaping(delay_ms=40, jitter_ms=1, loss_pct=1, rate_bps=10_000_000), netem)
    assert lines == ["qdisc del dev fra root",
                     "qdisc add dev fra root handle 1: netem limit 100000 delay 40ms 1ms loss 1%",
                     "qdisc add dev fra parent 1:1 handle 10: tbf rate 10000000bit burst 12500 latency 100ms"]
    nfq = kernel.Mechanism("nfqueue", True, "")
    assert kernel.qdisc_commands("fra", Shaping(delay_ms=40), nfq) == ["qdisc del dev fra root"]
    assert kernel.qdisc_commands("fra", Shaping(rate_bps=1_000_000), nfq)[1].endswith(
        "root handle 1: tbf rate 1000000bit burst 3200 latency 100ms")
    assert kernel.nfqueue_rule("fra", 3) == ["POSTROUTING", "-o", "fra", "-j", "NFQUEUE", "--queue-num", "3",
                                             "--queue-bypass"]
    assert kernel.Mechanism("nfqueue", True, "").name == "nfqueue+tbf"


# -- runtime changes (kernel calls faked) ---------------------------------------------------------------

@pytest.mark.parametrize("failure", [LabError("tc could not add netem"), KeyboardInterrupt()])
def test_link_set_that_fails_half_way_is_undone(tmp_path: Path, topologies_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch, failure: BaseException) -> None:
    """An error, or Ctrl-C, at the second end: links.json as it was, and both ends put back."""
    plan = build_plan(load_topology(topologies_dir / "small.yaml"))
    state = {"mechanism": kernel.Mechanism("netem", True, "test").to_json(), "generation": 1, "releaser": None,
             "pids": {name: 1 for name in plan.nodes}, "exec": {name: ["true"] for name in plan.nodes},
             "links": [control._link_entry(plan, link, link.shaping) for link in plan.links]}
    control._write_state(tmp_path, state)
    applied: list[list[str]] = []

    def apply_qdiscs(node: list[str], lines: list[str]) -> None:
        applied.append(lines)
        if len(applied) == 2:  # the second end fails
            raise failure

    monkeypatch.setattr(kernel, "apply_qdiscs", apply_qdiscs)
    before = control.current(tmp_path)
    with pytest.raises(type(failure)):
        control.set_link(plan, tmp_path, "ams", "ta", control.parse_changes("40ms", None, None, None))
    assert control.current(tmp_path) == before  # the state file says what it said
    assert len(applied) == 4 and "delay 40.0ms" in applied[0][-1]  # one end was changed ...
    assert all("delay 40.0ms" not in line for lines in applied[2:] for line in lines)  # ... both ends put back
