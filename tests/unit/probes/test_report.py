"""Probe reports: agreement, the per-client PoP, shares, and clear errors for bad input."""

from __future__ import annotations

import pytest
from anycastlab.errors import LabError, UnknownNodeError
from anycastlab.plan import Plan
from anycastlab.probes.probe import ALL, ClientReport, ProbeRun, resolve_clients, resolve_methods
from anycastlab.probes.results import MethodResult
from anycastlab.probes.traceroute import _pop_from_record_route
from anycastlab.runtime.nsock import AddressMap
from anycastlab.runtime.state import RunningLab


def report(predicted: str | None, **found: str | None) -> ClientReport:
    r = ClientReport("c1", "isp", "100.64.0.1", predicted)
    r.methods = {m: MethodResult(p) for m, p in found.items()}
    return r


def test_agree_needs_every_method_and_the_prediction_to_match() -> None:
    assert report("fra", dns="fra", census="fra", traceroute="fra").agree
    assert not report("iad", dns="fra", census="fra").agree
    assert not report("fra", dns="fra", census="sin").agree
    assert not report("fra", dns="fra", census=None).agree  # a method that ran and found nothing
    assert not report(None, dns="fra").agree  # no prediction
    assert not report("fra").agree  # nothing measured


def test_client_pop_is_the_majority_then_the_preferred_method() -> None:
    assert report("x", dns="sin", census="fra", traceroute="fra").pop == "fra"
    assert report("x", dns="sin", census="fra").pop == "fra"  # tie: census first
    assert report("x", dns="sin", http=None).pop == "sin"
    assert report("x", dns=None).pop is None


def test_run_share_and_json_shape() -> None:
    a, b, c = report("fra", dns="fra"), report("fra", dns="fra"), report("sin", dns="sin")
    b.name, c.name = "c2", "c3"
    run = ProbeRun("lab", "198.51.100.10", ["dns"], [a, b, c], ["fra", "iad", "sin"], {"http": "no proxy"},
                   0.0, {"dns": 0.01})
    data = run.to_json()
    assert data["agree"] is True
    assert [(p["pop"], p["clients"]) for p in data["pops"]] == [("fra", 2), ("iad", 0), ("sin", 1)]
    client = data["clients"][0]
    assert set(client) >= {"name", "pop", "methods", "predicted_pop", "rtt_ms", "hops", "agree"}
    assert client["methods"] == {"dns": "fra"}
    assert data["unavailable"] == {"http": "no proxy"}


def test_unknown_method_is_refused() -> None:
    assert resolve_methods(None) == ALL
    assert resolve_methods(["all"]) == ALL
    assert resolve_methods(["census", "dns", "census"]) == ["census", "dns"]
    with pytest.raises(LabError, match="unknown probe method 'ping'"):
        resolve_methods(["ping"])


def test_unknown_client_and_non_client_are_refused(small_lab: RunningLab) -> None:
    assert [c.name for c in resolve_clients(small_lab, None)] == ["ispa-c1", "ispa-c2", "ispb-c1"]
    assert [c.name for c in resolve_clients(small_lab, ["ispb-c1"])] == ["ispb-c1"]
    with pytest.raises(UnknownNodeError, match="nobody"):
        resolve_clients(small_lab, ["nobody"])
    with pytest.raises(LabError, match="'ams' is a pop, not a client"):
        resolve_clients(small_lab, ["ams"])


def test_record_route_names_the_pop_at_the_far_end_of_the_last_link(small_lab: RunningLab,
                                                                      small_plan: Plan) -> None:
    ta_to_ams = next(i for i in small_plan.nodes["ta"].interfaces if i.peer == "ams").address.ip
    ispa_to_ta = next(i for i in small_plan.nodes["ispa"].interfaces if i.peer == "ta").address.ip
    addresses = AddressMap.of(small_plan)
    recorded = (str(ispa_to_ta), str(ta_to_ams), "198.51.100.10", "198.51.100.10")
    assert _pop_from_record_route(recorded, "198.51.100.10", addresses, small_lab) == ("ams", "record-route")
    # the anycast address never recorded (option full): no answer from Record Route
    assert _pop_from_record_route(recorded[:2], "198.51.100.10", addresses, small_lab) == (None, None)


def test_rtt_names_the_method_it_came_from() -> None:
    from anycastlab.cli.probe import render

    a = report("fra", dns="fra", census="fra")
    a.methods["dns"] = MethodResult("fra", rtt_ms=2.5)
    a.methods["census"] = MethodResult("fra", rtt_ms=9.0)
    b = report("fra", census="fra")
    b.name = "c2"
    b.methods["census"] = MethodResult("fra", rtt_ms=4.0)
    run = ProbeRun("lab", "198.51.100.10", ["dns", "census"], [a, b], ["fra"], {}, 0.0, {"dns": 0.01})
    data = run.to_json()
    assert [(c["rtt_ms"], c["rtt_method"]) for c in data["clients"]] == [(2.5, "dns"), (4.0, "census")]
    text = render(run)
    assert "rtt ms (from)" in text and "2.50 (dns)" in text and "4.00 (census)" in text
    assert "rtt from: dns: DNS query to its answer; census: echo from the sending PoP" in text
