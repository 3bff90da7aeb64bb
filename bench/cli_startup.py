"""How long `status`, `exec` and `nodes` take on a running small lab (target: start in <= 0.3 s), with the
import time of the modules they load broken down (`python -X importtime`).

Start-up is what a verb pays before its real work, measured the way the verb pays it, in a fresh
interpreter: the command line's module, the verb's module, and reading the lab (`exec`: nodes.json;
`nodes` and `status`: the plan too). The rest of `status` is its work: asking every router's FRR, and
validating the lab's topology copy (pydantic), which it needs for the anycast prefix, the ASN and
`bgp.multipath`; both are timed in fresh interpreters too.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from anycastlab.lifecycle import Lab

CLI = str(Path(sys.executable).parent / "anycastlab")
TARGET_S = 0.3
RUNS = 5
MODULES = ("click", "anycastlab.cli.main", "anycastlab.runtime.state", "anycastlab.plan", "anycastlab.status",
           "anycastlab.runtime.links.control", "pydantic", "anycastlab.model", "anycastlab.lifecycle")
HEAVY = ("pydantic", "anycastlab.model", "anycastlab.lifecycle", "ruamel.yaml")

# What a verb does before its real work: cli.main's import, the verb's module as LazyGroup imports it, and
# attaching to the lab as the verb does.
STARTUP = """
import importlib, sys
from anycastlab.cli.main import VERBS
verb, lab, node = sys.argv[1:]
importlib.import_module(VERBS[verb][0].split(":")[0])
from anycastlab.runtime import state
state.node_handle(lab, node) if verb == "exec" else state.attach(lab)
"""

# status's phases, each run in a fresh interpreter: start-up, then either the topology's validation alone
# (`topology`: what status paid before plan.json carried the topology's facts) or lab_status, the verb's whole
# work (`status`: every router's FRR asked).
STATUS_PHASES = """
import json, sys, time
t0 = time.perf_counter()
import anycastlab.cli.status
from anycastlab.runtime import state
from anycastlab.status import lab_status
running = state.attach(sys.argv[1])
t1 = time.perf_counter()
running.plan.topology if sys.argv[2] == "topology" else lab_status(running)
print(json.dumps({"startup": t1 - t0, sys.argv[2]: time.perf_counter() - t1}))
"""


def wall(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.monotonic()
        subprocess.run(argv, capture_output=True, check=True, timeout=60)
        times.append(time.monotonic() - started)
    return statistics.median(times)


def phases(lab: str) -> dict[str, float]:
    runs = [json.loads(subprocess.run([sys.executable, "-P", "-c", STATUS_PHASES, lab, phase], capture_output=True,
                                      text=True, check=True, timeout=60).stdout)
            for _ in range(RUNS) for phase in ("topology", "status")]
    return {key: statistics.median(run[key] for run in runs if key in run) for key in ("startup", "topology", "status")}


def imports(module: str) -> dict[str, float]:
    """Cumulative import time (s) of the interesting modules when `module` is imported alone."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                         text=True, check=True).stderr
    found = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[2] in MODULES + HEAVY:
            found[parts[2]] = int(parts[1]) / 1e6
    return found


def main() -> None:
    with open("/proc/loadavg") as f:
        print(f"load average at the start: {f.read().split()[0]}")
    with Lab.up("small", name="bench-cli", timeout=120) as lab:
        python = wall([sys.executable, "-c", "pass"])
        print(f"python alone (the baseline): {python:.3f} s")
        for verb in (["exec", "--lab", lab.name, "ams", "--", "true"], ["nodes", "--lab", lab.name],
                     ["status", "--lab", lab.name]):
            seconds = wall([CLI, *verb])
            start = wall([sys.executable, "-P", "-c", STARTUP, verb[0], lab.name, "ams"])  # -P: no cwd on sys.path
            print(f"{verb[0]:7} start-up {start:.3f} s ({start / TARGET_S:.2f}x the {TARGET_S} s target, "
                  f"{start / python:.1f}x python alone); whole verb {seconds:.3f} s")
        split = phases(lab.name)
        print(f"status's phases: start-up {split['startup']:.3f} s after the interpreter's; topology "
              f"validation alone {split['topology']:.3f} s; lab_status (every router's FRR asked; no validation) "
              f"{split['status']:.3f} s")
    for module in ("anycastlab.cli.exec_", "anycastlab.cli.nodes", "anycastlab.cli.status"):
        found = imports(module)
        parts = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in found.items())
        absent = [name for name in HEAVY if name not in found]
        print(f"imports of {module}: {parts}; not imported: {', '.join(absent) or '-'}")


if __name__ == "__main__":
    main()
