"""docker against netns, side by side in one run: bring-up to ready, teardown, memory per node, and the
container overhead; then the images' build time, cold (`--no-cache`) and warm (nothing changed).

The machine is shared and noisy, so each figure is printed with its ratio to the netns runtime measured
in the same round, and each topology runs `--rounds` rounds, the order of the two runtimes alternating
(the second of a pair meets the first's leftovers: page cache, load); the target, docker <= 1.5x netns to
ready, is judged on the median ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from anycastlab.lifecycle import Lab
from anycastlab.runtime import procs
from ruamel.yaml import YAML

from bench.lab_bringup import generated_topology

UP_TARGET = 1.5  # docker / netns, to ready
CLI = str(Path(sys.executable).parent / "anycastlab")


def _rss_kb(pid: int) -> int:
    used = procs.usage(pid)
    return used.rss_kb if used else 0


def _parent(pid: int) -> int | None:
    used = procs.usage(pid)
    return used.parent if used else None


def memory(lab: Lab) -> dict[str, float]:
    """RSS of every process in the lab's namespaces, per node; and, for containers, what Docker adds
    outside them: one containerd shim per container (the parent of its init)."""
    nets = {os.stat(f"/proc/{h.pid}/ns/net").st_ino for h in lab.running.handles.values()}
    inside = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.stat(entry / "ns" / "net").st_ino in nets:
                    inside += _rss_kb(int(entry.name))
            except OSError:
                continue
    shims = 0
    if lab.running.runtime == "docker":
        shims = sum(_rss_kb(p) for p in {_parent(h.pid) for h in lab.running.handles.values()} if p)
    nodes = len(lab.running.handles)
    return {"in_nodes_mb": inside / 1024 / nodes, "outside_mb": shims / 1024 / nodes}


def measure(topology: str, name: str, runtime: str) -> dict[str, float]:
    started = time.monotonic()
    lab = Lab.up(topology, name=name, timeout=180, runtime=runtime)
    up_s = time.monotonic() - started
    mem = memory(lab)
    down_s = lab.down()
    return {"up_s": up_s, "down_s": down_s, **mem, "nodes": len(lab.running.handles)}


def builds() -> dict[str, float]:
    timings = {}
    for label, args in (("cold", ["--no-cache"]), ("warm", [])):
        started = time.monotonic()
        subprocess.run([CLI, "images", "build", *args], check=True, capture_output=True, text=True, timeout=3600)
        timings[label] = time.monotonic() - started
    return timings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.runtimes", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="bring-ups of each runtime per topology")
    parser.add_argument("--no-builds", action="store_true", help="skip the cold and warm image builds")
    args = parser.parse_args(argv if argv is not None else [])
    subprocess.run([CLI, "images", "build"], check=True, capture_output=True, timeout=3600)  # not timed here
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen100.yaml"
        with gen.open("w") as f:
            YAML(typ="safe").dump(generated_topology(), f)
        for label, topology in (("default", "default"), ("gen100", str(gen))):
            ratios = [_round(label, topology, r) for r in range(args.rounds)]
            median = statistics.median(ratios)
            print(f"{label:8} up to ready, median of {len(ratios)}: {median:.2f}x "
                  f"(target <= {UP_TARGET}x: {'met' if median <= UP_TARGET else 'MISSED'})", flush=True)
    if not args.no_builds:
        b = builds()
        print(f"images   build cold (--no-cache, base kept) {b['cold']:.0f}s  warm (nothing changed) {b['warm']:.1f}s")


def _round(label: str, topology: str, n: int) -> float:
    """One round: both runtimes, netns first in even rounds; the docker/netns ratio to ready."""
    order = ("netns", "docker") if n % 2 == 0 else ("docker", "netns")
    got = {rt: measure(topology, f"bench-rt-{label}-{rt[0]}", rt) for rt in order}
    base, dock = got["netns"], got["docker"]
    ratio = dock["up_s"] / base["up_s"]
    print(f"{label:8} round {n + 1} ({order[0]} first, load {os.getloadavg()[0]:.1f}) nodes={base['nodes']:3.0f}  "
          f"up: netns {base['up_s']:5.1f}s  docker {dock['up_s']:5.1f}s = {ratio:.2f}x", flush=True)
    print(f"{'':8}            down: netns {base['down_s']:5.2f}s  docker {dock['down_s']:5.2f}s "
          f"= {dock['down_s'] / base['down_s']:.2f}x")
    overhead = dock["in_nodes_mb"] + dock["outside_mb"] - base["in_nodes_mb"]
    print(f"{'':8}            memory/node: netns {base['in_nodes_mb']:.1f} MB  docker "
          f"{dock['in_nodes_mb']:.1f} MB in the container + {dock['outside_mb']:.1f} MB shim "
          f"= +{overhead:.1f} MB per node over netns", flush=True)
    return ratio


if __name__ == "__main__":
    main(sys.argv[1:])
