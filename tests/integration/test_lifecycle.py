"""Lifecycle guarantees, each on its own small lab: nothing is ever left behind, and the host's root
namespace is never touched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from anycastlab.lifecycle import Lab
from anycastlab.runtime import paths
from anycastlab.runtime.ledger import Ledger
from measure import root_namespace

CLI = ".venv/bin/anycastlab"
RUN = os.getpid()  # lab names of this test run: a concurrent run of the suite must not collide with them


def test_up_down_leaves_nothing_and_root_namespace_unchanged(tmp_path: Path, leftovers: Any) -> None:
    before = root_namespace()
    lab = Lab.up("small", name=f"it-updown-{RUN}")
    ledger = leftovers.snapshot(f"it-updown-{RUN}", tmp_path)
    assert len(ledger.of_kind("node")) >= 10
    during = root_namespace()
    lab.down()
    leftovers.assert_none(ledger, f"it-updown-{RUN}")
    assert during == before, "the lab changed the host's root namespace"
    assert root_namespace() == before


def test_sigkill_during_up_then_clean_leaves_nothing(tmp_path: Path, leftovers: Any) -> None:
    up = subprocess.Popen([CLI, "up", "small", "--name", f"it-kill-{RUN}"], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, start_new_session=True)
    ledger_path = paths.ledger_file(paths.lab_dir(f"it-kill-{RUN}"))
    deadline = time.monotonic() + 30
    # wait until FRR is starting, so there is plenty to leave behind
    while time.monotonic() < deadline:
        if ledger_path.exists() and any(e.kind == "pidfile" for e in Ledger(ledger_path).entries()):
            break
        time.sleep(0.05)
    ledger = leftovers.snapshot(f"it-kill-{RUN}", tmp_path)
    supervisor = next(e.data["pid"] for e in ledger.of_kind("process") if e.name == "supervisor")
    os.kill(up.pid, signal.SIGKILL)
    os.kill(supervisor, signal.SIGKILL)
    up.wait(10)
    time.sleep(0.5)
    ledger = leftovers.snapshot(f"it-kill-{RUN}", tmp_path)  # everything recorded up to the kill
    out = subprocess.run([CLI, "clean", "--lab", f"it-kill-{RUN}"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    leftovers.assert_none(ledger, f"it-kill-{RUN}")


def test_failed_up_reports_what_is_missing_and_leaves_nothing(tmp_path: Path, leftovers: Any) -> None:
    proc = subprocess.Popen([CLI, "up", "small", "--name", f"it-fail-{RUN}", "--timeout", "0.5"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ledger = leftovers.follow(f"it-fail-{RUN}", proc, tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "was not ready" in stderr, stderr
    # what is still missing is listed, one line each
    assert "  - session not established: " in stderr or "  - route missing on: " in stderr, stderr
    assert len(ledger.of_kind("node")) >= 10, "the lab got far enough to create its nodes"
    leftovers.assert_none(ledger, f"it-fail-{RUN}")


def test_bad_topology_fails_before_anything_is_created(tmp_path: Path, leftovers: Any) -> None:
    bad = tmp_path / "bad.yaml"
    text = (Path("topologies/small.yaml").read_text().replace("name: small", "name: it-bad")
            .replace("upstreams: [ta]}", "upstreams: [tx]}", 1))
    bad.write_text(text)
    out = subprocess.run([CLI, "up", str(bad)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert f"{bad}:" in out.stderr and "upstreams[0]" in out.stderr and "unknown transit 'tx'" in out.stderr
    assert not paths.lab_dir(f"it-bad-{RUN}").exists()


def test_foreground_ctrl_c_tears_down(tmp_path: Path, leftovers: Any) -> None:
    proc = subprocess.Popen([CLI, "up", "small", "--name", f"it-fg-{RUN}", "--foreground"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if " ready " in line:
            break
    assert any(" ready " in line for line in lines), "".join(lines)
    ledger = leftovers.snapshot(f"it-fg-{RUN}", tmp_path)
    status = subprocess.run([CLI, "status", "--lab", f"it-fg-{RUN}", "--json"], capture_output=True, text=True,
                            check=True)
    assert json.loads(status.stdout)["lab"] == f"it-fg-{RUN}"
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    assert proc.returncode == 130  # torn down, and the shell's convention for a Ctrl-C
    leftovers.assert_none(ledger, f"it-fg-{RUN}")


@pytest.mark.parametrize("verb", ["down", "status"])
def test_no_lab_is_a_clear_error(verb: str) -> None:
    out = subprocess.run([CLI, verb, "--lab", f"it-none-{RUN}"], capture_output=True, text=True)
    assert out.returncode == 1 and "Traceback" not in out.stderr and out.stderr.startswith("error:")
