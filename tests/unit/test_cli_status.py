"""`status`'s summary line: sessions counted once (as `up` counts them), and a dead supervisor said out loud."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from anycastlab.cli.status import _sessions
from anycastlab.runtime import paths, procs
from anycastlab.runtime.ledger import Ledger
from anycastlab.runtime.state import RunningLab


def test_a_session_is_counted_once_and_is_up_only_when_both_ends_say_so() -> None:
    routers = [
        {"name": "fra", "sessions": [{"peer": "telia", "state": "Established"}, {"peer": "dtag", "state": "Active"}]},
        {"name": "telia", "sessions": [{"peer": "fra", "state": "Established"}]},
        {"name": "dtag", "sessions": [{"peer": "fra", "state": "Established"}]},
    ]
    assert _sessions(routers) == (1, 2)


def lab_whose_supervisor_is(tmp_path: Path, pid: int | None, start: float | None) -> RunningLab:
    tmp_path.mkdir(exist_ok=True)
    if pid is not None:
        Ledger(paths.ledger_file(tmp_path)).record("process", "supervisor", pid=pid, start=start)
    return RunningLab(name="x", plan=None, directory=tmp_path, runtime="netns", handles={})  # type: ignore[arg-type]


def test_the_recorded_supervisor_runs_while_that_very_process_lives(tmp_path: Path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        lab = lab_whose_supervisor_is(tmp_path, child.pid, procs.start_time(child.pid))
        assert lab.supervisor_running
    finally:
        child.kill()
        child.wait()
    assert not lab.supervisor_running  # the same pid, now gone


def test_a_reused_pid_or_no_record_is_no_supervisor(tmp_path: Path) -> None:
    start = procs.start_time(os.getpid())
    assert start is not None
    assert not lab_whose_supervisor_is(tmp_path / "a", os.getpid(), start - 5).supervisor_running  # another process
    assert not lab_whose_supervisor_is(tmp_path / "b", None, None).supervisor_running
