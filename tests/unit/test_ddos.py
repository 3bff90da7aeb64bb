"""`anycastlab ddos` input: every bound and name is checked against the lab before anything starts, and bots
are placed round-robin over the ISPs, each ISP keeping a legitimate client."""

from __future__ import annotations

from pathlib import Path

import pytest
from anycastlab.ddos.attack import MAX_TOTAL_PPS, Attack, bot_hosts, check, choose_bots, parse_spread, parse_target
from anycastlab.ddos.bots import SENT_RE, argv
from anycastlab.errors import LabError
from anycastlab.model import load_topology
from anycastlab.plan import Plan, build_plan

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def plan() -> Plan:
    return build_plan(load_topology(ROOT / "topologies/default.yaml"))


def attack(**kw: object) -> Attack:
    base: dict[str, object] = {"bots": 7, "pps": 1000, "duration_s": 5.0, "spread": None, "target": None}
    return Attack(**(base | kw))  # type: ignore[arg-type]


def test_spread_and_target_parse() -> None:
    assert parse_spread("even") is None
    assert parse_spread("concentrated:vivo, dtag,vivo") == ("vivo", "dtag")
    assert parse_target("anycast") is None
    assert parse_target("pop:fra") == "fra"
    for bad in ("evenly", "concentrated:", "concentrated"):
        with pytest.raises(LabError, match="--spread"):
            parse_spread(bad)
    for bad in ("pop:", "fra", "unicast"):
        with pytest.raises(LabError, match="--target"):
            parse_target(bad)


@pytest.mark.parametrize(("kw", "message"), [
    ({"duration_s": 61.0}, "--duration 61: between 0 and 60"),
    ({"duration_s": 0.0}, "--duration 0"),
    ({"pps": MAX_TOTAL_PPS + 1}, f"--pps {MAX_TOTAL_PPS + 1}: between 1 and {MAX_TOTAL_PPS}"),
    ({"bots": 1, "pps": 3000}, "3000 per bot"),
    ({"bots": 0}, "--bots 0"),
    ({"bots": 8}, "--bots 8: only 7 client hosts"),
    ({"bots": 2, "spread": ("dtag",)}, "only 1 client hosts in dtag"),
    ({"spread": ("dtagg",)}, "--spread: unknown ISP 'dtagg'"),
    ({"target": "frx"}, "--target: unknown PoP 'frx'"),
    ({"policy": "withdraw"}, "--policy withdraw needs --threshold"),
    ({"policy": "prepend", "threshold_pps": -1.0}, "--threshold -1"),
    ({"policy": "withdraw", "threshold_pps": 10.0, "target": "fra"}, "use --policy absorb"),
])
def test_bad_attacks_are_refused_naming_the_option(plan: Plan, kw: dict[str, object], message: str) -> None:
    with pytest.raises(LabError, match=message.replace("(", r"\(")):
        check(attack(**kw), plan)


def test_bots_round_robin_over_isps_keeping_each_isps_first_client(plan: Plan) -> None:
    hosts = [h.name for h in bot_hosts(plan, attack())]
    assert hosts == ["dtag-c2", "orange-c2", "comcast-c2", "kddi-c2", "starhub-c2", "optus-c2", "vivo-c2"]
    assert [h.name for h in choose_bots(plan, attack(bots=2, spread=("vivo", "dtag")))] == ["dtag-c2", "vivo-c2"]
    check(attack(), plan)


def test_hping3_is_bounded_in_count_and_time_and_its_count_is_read() -> None:
    a = attack(bots=4, pps=1000, duration_s=5.0)
    cmd = argv(a, "198.51.100.10")
    assert cmd[:4] == ["timeout", "-s", "INT", "10"]
    assert cmd[cmd.index("-c") + 1] == "1250" and cmd[cmd.index("-i") + 1] == "u4000"
    assert "--flood" not in cmd
    assert SENT_RE.findall("--- 198.51.100.10 hping statistic ---\n1250 packets tramitted, 0 packets received") \
        == ["1250"]
