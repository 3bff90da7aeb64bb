"""Bad input to the probe and graph verbs: a clear one-line error and a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from anycastlab.cli.main import cli
from anycastlab.probes.http import parse_trace
from click.testing import CliRunner


@pytest.fixture
def no_labs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYCASTLAB_RUN_ROOT", str(tmp_path / "run"))


def test_unknown_method_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["probe", "--method", "ping"])
    assert result.exit_code == 2
    assert "'ping' is not one of" in result.output


@pytest.mark.usefixtures("no_labs")
@pytest.mark.parametrize(("argv", "message"), [
    (["probe", "--rate", "5"], "--rate goes with --watch"),
    (["probe", "--duration", "2", "--rate", "5"], "--rate and --duration go with --watch"),
    (["probe", "--out", "x.jsonl"], "--out goes with --watch"),
    (["probe", "--watch", "--method", "http"], "--watch probes with DNS only"),
])
def test_watch_options_without_watch_are_usage_errors(argv: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.usefixtures("no_labs")
@pytest.mark.parametrize("argv", [["probe"], ["probe", "--watch", "--duration", "1"], ["graph"]])
def test_no_lab_running(argv: list[str]) -> None:
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1
    assert "no lab is running" in result.output
    assert "Traceback" not in result.output


@pytest.mark.usefixtures("no_labs")
def test_named_lab_that_does_not_exist() -> None:
    result = CliRunner().invoke(cli, ["probe", "--lab", "nosuch", "--client", "x"])
    assert result.exit_code == 1
    assert "lab 'nosuch' is not running" in result.output


def test_parse_trace() -> None:
    body = "fl=1\nh=198.51.100.10\nip=100.64.0.1\ncolo=fra\nhttp=http/1.1\n"
    assert parse_trace(body)["colo"] == "fra"
    assert parse_trace("garbage") == {}


def test_graph_from_last_says_the_probes_age_and_coverage() -> None:
    from anycastlab.cli.graph import coverage_note

    last = {"started": 1000.0, "clients": [{"name": "a", "pop": "fra"}, {"name": "b", "pop": None}]}
    assert coverage_note(last, 3, 1042.0) == "the last probe, 42 s ago, 1 of 3 clients, the others uncoloured"
    full = {"started": 1000.0, "clients": [{"name": "a", "pop": "fra"}]}
    assert coverage_note(full, 1, 1000.0 + 600) == "the last probe, 10 min ago, 1 of 1 clients"
