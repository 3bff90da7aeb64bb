"""Integration fixtures: real labs (real FRR, real namespaces), booted once per session and always removed.

Every lab a test boots is checked afterwards for leftovers: no recorded process alive, no namespace of
the lab held by any process, no container of it, no run directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from anycastlab.lifecycle import Lab
from anycastlab.runtime import cleanup, paths
from anycastlab.runtime.ledger import Ledger


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Without root, skip the integration tests (tests/conftest.py marks every test here `integration`), but
    not the `rootless` ones (servers on loopback)."""
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="integration tests need root (namespaces, veths, FRR)")
        for item in items:
            if item.get_closest_marker("integration") and not item.get_closest_marker("rootless"):
                item.add_marker(skip)


def snapshot_ledger(lab_name: str, into: Path) -> Ledger:
    """A copy of the lab's ledger, so leftovers can be checked after `down` removed the run directory."""
    target = into / f"{lab_name}.ledger.jsonl"
    shutil.copyfile(paths.ledger_file(paths.lab_dir(lab_name)), target)
    return Ledger(target)


def assert_nothing_left(ledger: Ledger, lab_name: str) -> None:
    left = cleanup.left_by(ledger, paths.lab_dir(lab_name))
    assert not left.processes, f"processes left behind: {left.processes}"
    assert not left.namespaces, f"namespaces still held: {left.namespaces}"
    assert not left.containers, f"containers left behind: {left.containers}"
    assert not left.directory, "run directory left behind"


def ledger_while_running(lab_name: str, proc: subprocess.Popen[str], into: Path) -> Ledger:
    """Keep copying a lab's ledger until `proc` ends: the last copy names all the lab ever created."""
    source = paths.ledger_file(paths.lab_dir(lab_name))
    target = into / f"{lab_name}.ledger.jsonl"
    while proc.poll() is None:
        with contextlib.suppress(OSError):
            data = source.read_bytes()
            if len(data) >= (target.stat().st_size if target.exists() else 0):
                target.write_bytes(data)
        time.sleep(0.02)
    return Ledger(target)


class Leftovers:
    """Given to tests as a fixture: snapshot a lab's ledger, then check that nothing of it remains."""

    snapshot = staticmethod(snapshot_ledger)
    follow = staticmethod(ledger_while_running)
    assert_none = staticmethod(assert_nothing_left)


@pytest.fixture(scope="session")  # stateless: module-scoped lab fixtures use it too
def leftovers() -> type[Leftovers]:
    return Leftovers


@pytest.fixture(scope="session")
def default_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    name = f"it-default-{os.getpid()}"  # a concurrent run of the suite must not attach to or stop this lab
    lab = Lab.up("default", name=name, timeout=90)
    ledger = snapshot_ledger(name, tmp_path_factory.mktemp("ledger"))
    try:
        yield lab
    finally:
        lab.down()
        assert_nothing_left(ledger, name)
