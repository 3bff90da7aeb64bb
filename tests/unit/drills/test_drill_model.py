"""Drill files: every shipped one loads; a bad one gets one error naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from anycastlab.drills.model import DrillFileError, check_against, load_drill, parse_duration
from anycastlab.drills.topology import drill_topology
from anycastlab.runtime import paths

DRILLS = Path(__file__).resolve().parents[3] / "topologies" / "drills"


@pytest.mark.parametrize("path", sorted(DRILLS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_drills_load(path: Path) -> None:
    drill = load_drill(path)
    assert (drill.faults or any(s.move for s in drill.steps)) and drill.name == path.stem


def test_durations() -> None:
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("200ms") == pytest.approx(0.2)
    assert parse_duration("2m") == 120
    with pytest.raises(ValueError, match="no unit"):
        parse_duration(3)  # a bare number: ms in links, s here, once; refused now
    with pytest.raises(ValueError):
        parse_duration("soon")
    with pytest.raises(ValueError):
        parse_duration("2h")


def error_for(tmp_path: Path, text: str) -> DrillFileError:
    path = tmp_path / "d.yaml"
    path.write_text(text)
    with pytest.raises(DrillFileError) as info:
        load_drill(path)
    return info.value


def test_unknown_mode_names_line_and_field(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsteps:\n  - wait: 1s\n  - fail: {pop: fra, mode: explode}\n")
    assert err.line == 4 and err.field == "steps[1].fail.mode" and str(tmp_path) in str(err)


def test_pop_mode_needs_a_pop(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsteps:\n  - fail: {mode: withdraw}\n")
    assert err.line == 3 and "needs `pop" in err.message


def test_step_is_exactly_one_thing(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsteps:\n  - fail: {pop: a, mode: crash}\n    wait: 1s\n")
    assert err.field == "steps[0]" and "exactly one" in err.message


def test_bad_expectation_duration(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsteps:\n  - fail: {pop: a, mode: crash}\nexpect:\n  max_outage: fast\n")
    assert err.line == 5 and err.field == "expect.max_outage"


def test_unknown_field(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsteps:\n  - fail: {pop: a, mode: crash}\nexpct: {}\n")
    assert err.line == 4 and err.message == "unknown field 'expct' (did you mean 'expect'?)"


def test_a_drill_needs_a_fault(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsteps:\n  - wait: 1s\n")
    assert "fail" in err.message


def test_a_drill_longer_than_its_probes_run_is_refused(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsettle: 60s\nsteps:\n  - fail: {pop: a, mode: crash}\n  - wait: 10m\n")
    assert "add up to 662 s" in err.message  # 2 s baseline + 60 s settle + 600 s wait


def test_overrides_give_a_derived_topology_that_is_gone_after_the_boot() -> None:
    drill = load_drill(DRILLS / "blackhole-bfd.yaml")
    with drill_topology(drill, "rd-x") as (path, name):
        assert name.startswith("rd-x-default-") and path.exists()
        assert "interval_ms: 100" in path.read_text() and f"name: {name}" in path.read_text()
    assert not path.exists()
    with drill_topology(load_drill(DRILLS / "withdraw.yaml"), "rd-x") as (path, name):
        assert (path.name, name) == ("default.yaml", "rd-x-default")


def test_a_drill_fits_only_a_running_lab_of_its_topology(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from anycastlab.drills.model import Drill
    from anycastlab.drills.topology import runs_topology_of, topology_name

    monkeypatch.setenv("ANYCASTLAB_RUN_ROOT", str(tmp_path))
    for lab, topo in (("mine", "small"), ("other", "default")):
        (tmp_path / lab).mkdir()
        paths.topology_file(tmp_path / lab).write_text(f"# a lab's copy\nname: {topo}\n")
    steps = [{"fail": {"pop": "ams", "mode": "crash"}}]
    drill = Drill.model_validate({"name": "d", "topology": "small", "steps": steps})
    assert topology_name(drill) == "small"
    assert runs_topology_of("mine", drill) and not runs_topology_of("other", drill)
    assert not runs_topology_of(None, drill)
    bfd = Drill.model_validate({"name": "d", "topology": "small", "topology_overrides": {"bfd": {"enabled": True}},
                                "steps": [{"fail": {"pop": "ams", "mode": "crash"}}]})
    assert not runs_topology_of("mine", bfd)  # overrides always get a lab of their own


def test_a_move_step_is_a_drill_event_and_is_checked_against_the_lab(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("name: m\nsteps:\n  - move: {client: dtag-c1, to: comcast}\n  - wait: 1s\n"
                    "  - restore: {client: dtag-c1}\n")
    drill = load_drill(path)
    assert [s.kind for s in drill.steps] == ["move", "wait", "restore"] and not drill.faults
    assert drill.steps[2].restore is not None and not drill.steps[2].restore.everything
    problems = check_against(drill, {"dtag-c1", "comcast", "fra"}, {"fra"}, {"dtag-c1"}, {"dtag"})
    assert problems == ["steps[0].move.to: unknown eyeball ISP 'comcast' (known: dtag)"]
    assert check_against(drill, {"x"}, {"fra"}, set(), {"comcast"}) == [
        "steps[0].move.client: unknown client 'dtag-c1'"]


def test_a_move_step_names_its_missing_field(tmp_path: Path) -> None:
    err = error_for(tmp_path, "name: d\nsteps:\n  - move: {client: dtag-c1, too: comcast}\n")
    assert err.line == 3 and err.field.startswith("steps[0].move")
