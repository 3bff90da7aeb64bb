"""Costs from RTT, and the hysteresis that keeps jitter from moving paths."""

from __future__ import annotations

from anycastlab.backbone import costs
from anycastlab.backbone.control import converged, shortest_costs
from anycastlab.backbone.costs import LinkEstimate, cost_of, significant
from anycastlab.backbone.prober import Target, pending_updates


def test_cost_is_rtt_in_tenths_of_ms_plus_a_hop() -> None:
    assert cost_of(0.02) == costs.HOP_COST  # an undelayed veth: every hop costs the same (fewest hops)
    assert cost_of(300.0) == 3000 + costs.HOP_COST
    assert cost_of(10_000.0) == costs.MAX_COST
    assert cost_of(-1.0) == costs.MIN_COST


def test_path_sums_follow_latency_not_hops() -> None:
    """The default topology's case: one 300 ms RTT hop loses to two hops of 54 + 110 ms."""
    direct = cost_of(300.7)
    detour = cost_of(53.8) + cost_of(109.7)
    assert detour < direct
    assert cost_of(0.1) < cost_of(0.05) + cost_of(0.05)  # equal RTTs: fewer hops win


def test_significant_needs_both_margins() -> None:
    assert not significant(1000, 1090)  # 9%: jitter
    assert significant(1000, 1200)
    assert not significant(10, 18)  # 80% but under 1 ms of RTT
    assert significant(10, 421)


def feed(estimate: LinkEstimate, rtt: float, n: int) -> None:
    for _ in range(n):
        estimate.record(rtt)


def test_first_cost_applies_at_once_then_changes_need_confirmation() -> None:
    est = LinkEstimate()
    est.record(5.0)
    est.record(5.0)
    assert est.decide() is None  # too few samples for an opinion
    est.record(5.0)
    assert est.decide() == cost_of(5.0)
    est.applied = cost_of(5.0)
    feed(est, 45.0, costs.WINDOW)
    assert est.decide() is None  # asked once
    assert est.decide() == cost_of(45.0)  # confirmed


def test_a_spike_does_not_move_the_median() -> None:
    est = LinkEstimate()
    feed(est, 20.0, costs.WINDOW)
    est.applied = cost_of(20.0)
    for _ in range(costs.WINDOW // 2 - 1):
        est.record(400.0)
    assert est.decide() is None and est.decide() is None


def test_lost_probes_count_as_loss_and_never_as_rtt() -> None:
    est = LinkEstimate()
    feed(est, 1.0, 6)
    for _ in range(6):
        est.record(None)
    assert est.loss == 0.5
    assert est.rtt_ms == 1.0


def test_fluctuation_reset() -> None:
    """A change asked once, then not again, starts counting from zero."""
    est = LinkEstimate()
    feed(est, 20.0, costs.WINDOW)
    est.applied = cost_of(20.0)
    feed(est, 60.0, costs.WINDOW)
    assert est.decide() is None
    feed(est, 20.0, costs.WINDOW)
    assert est.decide() is None
    feed(est, 60.0, costs.WINDOW)
    assert est.decide() is None  # needs CONFIRMATIONS in a row again


def link_ends(rtt: float) -> list[Target]:
    """Both ends of one link, probing into one shared estimate."""
    shared = LinkEstimate()
    ends = [Target("ams", "iad", "iad", "10.254.0.2", 1, shared), Target("iad", "ams", "ams", "10.254.0.1", 2, shared)]
    feed(shared, rtt, costs.WINDOW)
    return ends


def test_both_ends_of_a_link_get_one_cost() -> None:
    ends = link_ends(20.0)
    assert pending_updates(ends, smart=True) == {"ams": [(ends[0], cost_of(20.0))], "iad": [(ends[1], cost_of(20.0))]}
    for end in ends:
        end.in_force = cost_of(20.0)
    feed(ends[0].estimate, 45.0, costs.WINDOW)  # the link got slower: once asked, once confirmed, both ends
    assert pending_updates(ends, smart=True) == {}
    assert pending_updates(ends, smart=True) == {"ams": [(ends[0], cost_of(45.0))], "iad": [(ends[1], cost_of(45.0))]}


def test_an_end_that_lost_its_cost_gets_it_again_at_once() -> None:
    ends = link_ends(20.0)
    pending_updates(ends, smart=True)
    for end in ends:
        end.in_force = cost_of(20.0)
    assert pending_updates(ends, smart=True) == {}
    ends[1].in_force = None  # its ospfd restarted, or its vtysh failed last time
    assert pending_updates(ends, smart=True) == {"iad": [(ends[1], cost_of(20.0))]}  # no hysteresis wait


def test_smart_off_puts_defaults_back_and_on_again_applies_at_once() -> None:
    ends = link_ends(20.0)
    pending_updates(ends, smart=True)
    for end in ends:
        end.in_force = cost_of(20.0)
    assert pending_updates(ends, smart=False) == {"ams": [(ends[0], None)], "iad": [(ends[1], None)]}
    for end in ends:
        end.in_force = None
    assert pending_updates(ends, smart=False) == {}
    assert pending_updates(ends, smart=True) == {"ams": [(ends[0], cost_of(20.0))], "iad": [(ends[1], cost_of(20.0))]}


def test_paths_converged_only_when_they_are_lowest_cost() -> None:
    """The integration topology's triangle after ams-iad got slow: the FIB path must be the detour."""
    in_force = {("ams", "iad"): 610, ("iad", "ams"): 610, ("ams", "lhr"): 210, ("lhr", "ams"): 210,
                ("lhr", "iad"): 210, ("iad", "lhr"): 210, ("iad", "origin"): 10, ("origin", "iad"): 10,
                ("ams", "lo"): 10}
    assert shortest_costs(in_force, "origin") == {"origin": 0, "iad": 10, "lhr": 220, "ams": 430}
    assert converged({"ams": ["ams", "lhr", "iad", "origin"], "iad": ["iad", "origin"]}, in_force, "origin")
    assert not converged({"ams": ["ams", "iad", "origin"]}, in_force, "origin")  # SPF has not run yet
    assert not converged({"ams": ["ams", "?"]}, in_force, "origin")
