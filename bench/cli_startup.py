"""How long `status`, `exec` and `nodes` take on a running small lab (target: start in <= 0.3 s), with the
import time of the modules they load broken down (`python -X importtime`)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from anycastlab.lifecycle import Lab

CLI = str(Path(sys.executable).parent / "anycastlab")
TARGET_S = 0.3
RUNS = 5
MODULES = ("click", "anycastlab.cli.main", "anycastlab.model", "anycastlab.lifecycle", "anycastlab.status")


def wall(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.monotonic()
        subprocess.run(argv, capture_output=True, check=True, timeout=60)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def imports(module: str) -> dict[str, float]:
    """Cumulative import time (s) of the interesting modules when `module` is imported alone."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                         text=True, check=True).stderr
    found = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in MODULES:
            found[parts[2]] = int(parts[1]) / 1e6
    return found


def main() -> None:
    with Lab.up("small", name="bench-cli", timeout=120) as lab:
        python = wall([sys.executable, "-c", "pass"])
        for verb in (["exec", "--lab", lab.name, "ams", "--", "true"], ["nodes", "--lab", lab.name],
                     ["status", "--lab", lab.name]):
            seconds = wall([CLI, *verb])
            print(f"{verb[0]:7} {seconds:.2f} s (python alone {python:.2f} s; target start <= {TARGET_S} s; "
                  f"status also asks every router's FRR)")
    for module in ("anycastlab.cli.exec_", "anycastlab.cli.nodes", "anycastlab.cli.status"):
        parts = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in imports(module).items())
        print(f"imports of {module}: {parts}")


if __name__ == "__main__":
    main()
