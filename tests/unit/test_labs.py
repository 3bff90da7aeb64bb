"""`anycastlab labs`: every run directory, with its status read from state.json and the ledger."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from anycastlab.cli.main import cli
from anycastlab.runtime import paths, procs
from click.testing import CliRunner


def make(root: Path, name: str, *, ready: bool, pid: int, start: int | None) -> None:
    d = root / name
    d.mkdir(parents=True)
    paths.ledger_file(d).write_text(json.dumps({"kind": "process", "name": "supervisor", "pid": pid,
                                                "start": start}) + "\n")
    paths.topology_file(d).write_text(f"# copied\nname: {name}-topo  # the lab's topology\ntransits: []\n")
    if ready:
        paths.state_file(d).write_text(json.dumps({"lab": name, "runtime": "netns", "supervisor_pid": pid,
                                                  "pids": {"a": 1, "b": 2, "c": 3}}))


def test_labs_lists_ready_starting_and_crashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYCASTLAB_RUN_ROOT", str(tmp_path))
    me, start = os.getpid(), procs.start_time(os.getpid())
    make(tmp_path, "alpha", ready=True, pid=me, start=start)
    make(tmp_path, "beta", ready=False, pid=me, start=start)
    make(tmp_path, "gamma", ready=True, pid=me, start=(start or 0) + 1)  # a reused pid is not its supervisor
    runner = CliRunner()
    data = json.loads(runner.invoke(cli, ["labs", "--json"]).output)
    assert [(d["name"], d["status"], d["topology"], d["nodes"]) for d in data] == [
        ("alpha", "ready", "alpha-topo", 3), ("beta", "starting", "beta-topo", None),
        ("gamma", "crashed", "gamma-topo", 3)]
    assert data[0]["runtime"] == "netns" and data[0]["supervisor_running"] is True
    text = runner.invoke(cli, ["labs"]).output
    assert "alpha" in text and "ready" in text and "anycastlab clean --lab NAME" in text


def test_no_labs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYCASTLAB_RUN_ROOT", str(tmp_path / "none"))
    assert "no labs" in CliRunner().invoke(cli, ["labs"]).output
    assert json.loads(CliRunner().invoke(cli, ["labs", "--json"]).output) == []
