"""The `integration` marker is really applied (tests/conftest.py, by path): `pytest -m "not integration"` over
the whole tree collects every unit test and no test under tests/integration."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_not_integration_selects_the_unit_tests_and_none_under_integration() -> None:
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "-m", "not integration"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ids = [line for line in run.stdout.splitlines() if "::" in line]
    files = {i.split("::")[0] for i in ids}
    assert not [i for i in ids if i.startswith("tests/integration/")]
    unit_files = {str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "unit").rglob("test_*.py")}
    assert unit_files <= files, sorted(unit_files - files)
    assert "deselected" in run.stdout.splitlines()[-1]  # the integration tests were collected, then left out
