"""Expectations, report.json and JUnit from a synthetic drill result, without a lab."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from anycastlab.colours import pop_colours
from anycastlab.drills import expectations
from anycastlab.drills.analysis import Probe, analyse
from anycastlab.drills.logs import LogEvent
from anycastlab.drills.model import Drill
from anycastlab.drills.report import junit_xml, markdown, timeline_colours
from anycastlab.drills.result import DrillResult

from .test_analysis import series

DRILL = Drill.model_validate({
    "name": "d",
    "steps": [{"fail": {"pop": "fra", "mode": "withdraw"}}, {"wait": "1s"},
              {"expect": {"catchment": {"c1": "sin", "c2": "iad"}}}, {"restore": "all"}],
    "expect": {"convergence_p95": "300ms", "max_lost_probes": 5, "max_outage": "1s", "max_http_errors": 0},
})
HTTP: dict[str, Any] = {"available": True, "ok": 90, "failed": 2, "by_class": {"reset": 2, "timeout": 0},
                        "keepalive": {"at_fault": 2, "survived": 1},
                        "retried": {"requests": 1, "first_try_by_class": {}}}


def result(complete: bool = True) -> DrillResult:
    # c1: fra, 3 probes lost after the fault at 0, then sin (convergence 0.3 s, outage 0.4 s); c2 stays on iad.
    records: list[Probe] = [*series("c1", ["fra"] * 10 + [None] * 3 + ["sin"] * 10), *series("c2", ["iad"] * 23)]
    res = DrillResult(drill=DRILL, lab="x", started=-2.0, fault_t=0.0, restore_t=1.2, complete=complete,
                      records=records, timeline=analyse(records, ["c1", "c2"], 0.0, 1.2, 0.1), http=HTTP,
                      cache={"hit_ratio_before": 1.0, "hit_ratio_after": 0.8})
    res.expectations = expectations.catchment(DRILL.steps[2].expect, {"c1": "sin", "c2": "fra"}, 2)  # type: ignore[arg-type]
    if complete:
        res.expectations += expectations.whole_drill(DRILL, res.timeline, res.lost_probes, HTTP)
    else:
        res.error = "interrupted"
        res.expectations += expectations.not_reached(DRILL, res.expectations, res.error)
    return res


def outcomes(res: DrillResult) -> dict[str, tuple[Any, bool | None]]:
    return {e.name: (e.actual, e.passed) for e in res.expectations}


def test_each_expectation_is_checked_against_the_hand_computed_figures() -> None:
    assert outcomes(result()) == {
        "catchment c1": ("sin", True),
        "catchment c2": ("fra", False),
        "convergence_p95": (0.3, True),  # one affected client: its convergence is the p95
        "max_lost_probes": (3, True),
        "max_outage": (0.4, True),
        "max_http_errors": (2, False),
    }
    messages = {e.name: e.message for e in result().expectations}
    assert messages["convergence_p95"] == "p95 convergence 0.300s over 1 affected client, allowed 0.3s"
    assert messages["max_outage"] == "longest outage 0.400s (c1), allowed 1s"


def test_http_errors_not_measured_are_skipped_not_passed() -> None:
    (e,) = [e for e in expectations.whole_drill(DRILL, result().timeline, 0, {"failed": None, "note": "no proxy"})
            if e.name == "max_http_errors"]
    assert (e.passed, e.message) == (None, "not measured: no proxy")


def test_report_json_has_the_keys_the_issue_names() -> None:
    data = json.loads(json.dumps(result().to_json()))
    assert {"drill", "passed", "steps", "clients", "convergence_s", "http", "cache"} <= set(data)
    assert data["drill"] == "d" and data["passed"] is False
    c1 = next(c for c in data["clients"] if c["name"] == "c1")
    assert {k: c1[k] for k in ("pop_before", "pop_after", "outage_s", "lost_probes", "flips")} == {
        "pop_before": "fra", "pop_after": "sin", "outage_s": 0.4, "lost_probes": 3, "flips": 1}
    assert {k: data["convergence_s"][k] for k in ("p50", "p95", "max")} == {"p50": 0.3, "p95": 0.3, "max": 0.3}
    assert (data["http"]["ok"], data["http"]["failed"], data["http"]["by_class"]["reset"]) == (90, 2, 2)
    assert (data["cache"]["hit_ratio_before"], data["cache"]["hit_ratio_after"]) == (1.0, 0.8)


def test_junit_has_one_case_per_expectation_with_the_failures() -> None:
    suite = ET.fromstring(junit_xml(result()))
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert list(cases) == ["catchment c1", "catchment c2", "max_outage", "max_lost_probes", "max_http_errors",
                           "convergence_p95"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "2", "0")
    assert [n for n, c in cases.items() if c.find("failure") is not None] == ["catchment c2", "max_http_errors"]


def test_an_interrupted_drill_reports_what_it_never_evaluated_as_errors() -> None:
    res = result(complete=False)
    assert not res.passed
    suite = ET.fromstring(junit_xml(res))
    errors = [c.get("name") for c in suite.iter("testcase") if c.find("error") is not None]
    assert errors == ["max_outage", "max_lost_probes", "max_http_errors", "convergence_p95"]
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "1", "4")


def test_report_md_says_whether_the_faults_were_restored() -> None:
    res = result(complete=False)
    assert "Every injected fault was restored." in markdown(res)
    res.restore_failures = ["withdraw fra: vtysh failed"]
    text = markdown(res)
    assert "Every injected fault was restored" not in text and "**Restoring failed:** withdraw fra" in text


def test_markdown_wording_units_and_plurals() -> None:
    res = result()
    res.events = [LogEvent(0.1 * i, "fra", "session", "neighbor 10.0.0.1 went down because the hold timer expired " * 3)
                  for i in range(16)]
    text = markdown(res)
    assert "over 1 affected client:" in text and "affected clients" not in text
    assert "(all 16 FRR log events)" in text and "first 30 of 16" not in text
    assert "| convergence_p95 | 0.300s | 0.300s |" in text and "| max_outage | 1s | 0.400s |" in text
    assert "| max_lost_probes | 5 probes | 3 probes |" in text and "| max_http_errors | 0 errors | 2 errors |" in text
    assert "{" not in text.split("## Clients")[0]  # no Python dict in the summary
    assert "because the …`" in text  # cut at a word, marked
    res.events = res.events * 3
    assert "(first 30 of 48 FRR log events)" in markdown(res)


def test_timeline_colours_are_the_graphs_by_topology_order() -> None:
    # The drill saw fra, sin and iad; the topology lists fra, iad, nrt, sin: sin keeps its fourth colour
    # (as in `graph`), though only three PoPs appear in this drill.
    res = result()
    res.records.append(series("c3", ["sin"])[0])
    res.pops = ["fra", "iad", "nrt", "sin"]
    full = pop_colours(res.pops)
    assert timeline_colours(res) == {"fra": full["fra"], "iad": full["iad"], "sin": full["sin"]}
    assert list(timeline_colours(res)) == ["fra", "iad", "sin"]
