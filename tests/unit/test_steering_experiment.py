"""The steering experiment offline: its model, time budget, default PoP, per-arm analysis and expectations (on
hand-made HTTP records), and the verb's bad-input errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from anycastlab.cli.main import cli
from anycastlab.drills.http_load import HttpRecord, KeepAlive
from anycastlab.model import load_topology
from anycastlab.plan import build_plan
from anycastlab.steering.experiment import Arm, Result, Settings, budget_s, default_pop, model, move_model
from anycastlab.steering.report import expectations, junit_xml, markdown
from anycastlab.steering.stub import PRESETS
from anycastlab.steering.topology import with_steering
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def plan_and_steering() -> tuple:  # type: ignore[type-arg]
    from anycastlab.steering.plan import steering_plan

    with with_steering("default") as (path, _name):
        plan = build_plan(load_topology(path))
    sp = steering_plan(plan)
    assert sp is not None
    return plan, sp


def test_model_is_detection_plus_resolver_ttl_plus_floor() -> None:
    _, sp = plan_and_steering()
    m = model(sp, "crash", 5, PRESETS["ttl"])
    assert (m["detection_min_s"], m["detection_max_s"]) == (2.0, 5.0)  # 1 x 2 s; + 2 s interval + 1 s timeout
    assert m["outage_max_s"] == 5.0 + 5 + 0
    assert model(sp, "crash", 5, PRESETS["chromium"])["outage_max_s"] == 5.0 + 5 + 60
    assert model(sp, "withdraw", 5, PRESETS["ttl"])["outage_max_s"] == 0.0  # the unicast /32 stays


def test_a_moved_dns_client_holds_its_answer_for_the_ttl_or_its_floor() -> None:
    _, sp = plan_and_steering()
    assert move_model(sp, 5, PRESETS["ttl"])["near_by_max_s"] == 5.0
    assert move_model(sp, 5, PRESETS["chromium"])["near_by_max_s"] == 60.0
    assert budget_s(Settings(ttls=[5], move=("dtag-c1", "comcast")), sp) < budget_s(Settings(ttls=[5]), sp)


def test_budget_covers_every_arm_and_default_pop_avoids_the_origins_pop() -> None:
    plan, sp = plan_and_steering()
    one, two = budget_s(Settings(ttls=[5]), sp), budget_s(Settings(ttls=[5, 5]), sp)
    assert two == pytest.approx(one * 3 / 2)
    assert default_pop(sp, plan.topology.origin.pops) == "fra"  # iad carries the origin's backbone


def record(t: float, client: str, pop: str | None, error: str | None = None) -> HttpRecord:
    return HttpRecord(t=t, client=client, conn="new", path="/", status=None if error else 200, error=error, pop=pop,
                      cache=None, ms=5.0)


def test_analysis_and_expectations_on_made_up_records() -> None:
    from anycastlab.steering.experiment import analyse_arm

    plan, sp = plan_and_steering()
    settings = Settings(ttls=[5])
    result = Result("x", "crash", "fra", settings, 100.0, {"interval_s": 2, "timeout_s": 1, "down_after": 2,
                    "up_after": 2, "path": "/", "detection_s": [2.0, 5.0]}, {"min_ttl_s": 0, "serve_expired": False,
                    "serve_expired_ttl_s": 0})

    class Load:
        def __init__(self, records: list[HttpRecord]) -> None:
            self.records = records
            self.keepalives = [KeepAlive("dtag-c1", 0.0, broken=10.5, reason="reset", pop="fra")]

    class FakeLab:  # analyse_arm reads only the plan from the lab
        def __init__(self) -> None:
            self.plan = plan

    result.arms = []
    for kind, outage in (("anycast", 0.5), ("dns", 8.0)):
        arm = Arm("anycast" if kind == "anycast" else "dns-ttl5", kind, "h", 5, fault_t=10.0, restore_t=30.0)
        arm.model = model(sp, "crash", 5, settings.cache) if kind == "dns" else {}
        recs = []
        for c in plan.clients:  # 4 requests a second for 40 s; fra's clients fail for `outage` s, then go to iad
            home = sp.resolvers[c.isp].pops[0]
            for i in range(160):
                t = i * 0.25
                if home == "fra" and 10.0 <= t < 10.0 + outage:
                    recs.append(record(t, c.name, None, "timeout"))
                else:
                    recs.append(record(t, c.name, "iad" if home == "fra" and t >= 10 else home))
        analyse_arm(arm, FakeLab(), "fra", Load(recs), settings)  # type: ignore[arg-type]
        result.arms.append(arm)
    anycast, dns = result.arms
    assert anycast.summary["affected_clients"] == 2 and anycast.summary["failed_requests_other_clients"] == 0
    assert anycast.summary["outage_s"]["max"] == pytest.approx(0.75)  # last answer 9.75 -> first after 10.5
    assert dns.summary["outage_s"]["p50"] == pytest.approx(8.25)
    c = next(c for c in dns.clients if c["name"] == "dtag-c1")
    assert c["pop_before"] == "fra" and c["pop_after"] == "iad" and c["keepalive_survived"] is False
    verdicts = {e.name: e.passed for e in expectations(result)}
    assert verdicts == {"anycast_outage_p95 < 1s": True, "dns_ttl5_outage within model": True,
                        "anycast: other PoPs' clients unaffected": True,
                        "dns-ttl5: other PoPs' clients unaffected": True}
    assert "| anycast | 2 |" in markdown(result) and 'failures="0"' in junit_xml(result)


@pytest.mark.parametrize(("args", "words"), [
    (["--ttl", "5,x"], "not a comma-separated list of whole seconds"),
    (["--ttl", "0"], "TTLs are whole seconds from 1 to 86400"),
    (["--fault", "melt"], "'melt' is not one of"),
    (["--cache", "firefox"], "'firefox' is not one of"),
    (["--fault-duration", "0.5"], "between 1 and 600 seconds"),
    (["--move", "dtag-c1"], "is not CLIENT:ISP"),
    (["--move", "dtag-c1:comcast", "--fault", "crash"], "give it without --fault and --pop"),
])
def test_bad_options_are_usage_errors(args: list[str], words: str) -> None:
    out = CliRunner().invoke(cli, ["steering", *args])
    assert out.exit_code == 2 and words in out.output, out.output


def test_move_analysis_and_expectations_on_made_up_records() -> None:
    from anycastlab.steering.experiment import analyse_move
    from anycastlab.steering.report import move_expectations
    from anycastlab.steering.stub import Lookup

    plan, sp = plan_and_steering()
    move = {"client": "dtag-c1", "from": "dtag", "to": "comcast", "near_pop": "iad", "far_pop": "fra"}

    class Load:
        def __init__(self, records: list[HttpRecord]) -> None:
            self.records = records

    class Stub:  # analyse_move reads only the lookups the stub made
        def __init__(self, lookups: list[Lookup]) -> None:
            self.lookups = lookups

    class FakeLab:
        def __init__(self) -> None:
            self.plan = plan

    last: list[Result] = []

    def run(dns_switch_t: float) -> list[tuple[str, bool | None]]:
        health = {"interval_s": 2, "timeout_s": 1, "down_after": 2, "up_after": 2, "path": "/",
                  "detection_s": [2.0, 5.0]}
        result = Result("x", "move", "fra", Settings(ttls=[5], move=("dtag-c1", "comcast")), 100.0, health,
                        {"min_ttl_s": 0, "serve_expired": False, "serve_expired_ttl_s": 0}, move=move)
        for kind, switch, ping in (("anycast", 10.0, 4.0), ("dns", dns_switch_t, 117.0)):
            arm = Arm("anycast" if kind == "anycast" else "dns-ttl5", kind, "h", 5, fault_t=10.0, restore_t=30.0)
            arm.summary_extra = {"move_took_s": 0.05, "ping_address": "x", "ping_ms": ping}
            recs = [record(i * 0.25, c.name, sp.resolvers[c.isp].pops[0]) for c in plan.clients
                    if c.name != "dtag-c1" for i in range(160)]
            recs += [record(t, "dtag-c1", "fra" if t < switch else "iad") for t in (i * 0.25 for i in range(160))]
            analyse_move(arm, FakeLab(), move, Load(recs), Stub([Lookup(9.9, "dtag-c1", "192.0.2.1", 5, 5.0)]))  # type: ignore[arg-type]
            result.arms.append(arm)
        last[:] = [result]
        return [(e.name, e.passed) for e in move_expectations(result)]

    assert all(passed for _, passed in run(15.0)), run(15.0)  # the held answer ran out at 14.9 s
    assert "Still on fra 5 / 15 / 30 s after the move: anycast: no / no / no; dns-ttl5: yes / no / no." in markdown(
        last[0])
    early = dict(run(12.0))  # at the near PoP while its answer was still held: not what DNS steering does
    assert early["dns_ttl5: near PoP only after the cached answer runs out"] is False
    assert early["anycast: next request after the move at the near PoP"] is True
