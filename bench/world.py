"""topologies/world.yaml (40 PoPs, 200 clients): bring-up to ready against the target (< 60 s), with the
default topology's bring-up in the same run as the baseline; then coverage of all 200 clients (< 10 s)
against a dns probe of the same clients (one query each to the anycast address) on the same lab."""

from __future__ import annotations

import time

from anycastlab import coverage
from anycastlab.lifecycle import Lab
from anycastlab.probes.probe import run_probe

UP_TARGET_S, COVERAGE_TARGET_S = 60.0, 10.0


def timed_up(topology: str, name: str) -> tuple[Lab, float]:
    started = time.monotonic()
    lab = Lab.up(topology, name=name, timeout=180)
    return lab, time.monotonic() - started


def main() -> None:
    base, base_s = timed_up("default", "bench-world-base")
    base.down()
    lab, up_s = timed_up("world", "bench-world")
    try:
        plan = lab.running.plan
        started = time.monotonic()
        run_probe(lab.running, ["dns"], save=False)
        probe_s = time.monotonic() - started
        started = time.monotonic()
        data = coverage.summarise(lab.running, coverage.measure(lab.running), 0.0)
        cov_s = time.monotonic() - started
    finally:
        down_s = lab.down()
    s = data["summary"]
    print(f"world    routers={len(plan.routers)} clients={len(plan.clients)} pops={len(plan.pops)}  "
          f"up={up_s:5.1f}s ({up_s / UP_TARGET_S:.2f}x of the {UP_TARGET_S:.0f} s target; {up_s / base_s:.2f}x the "
          f"default topology's {base_s:.1f}s in this run)  down={down_s:.1f}s")
    print(f"coverage {s['measured']}/{s['clients']} clients x {len(plan.pops) + 1} addresses in {cov_s:.2f}s "
          f"({cov_s / COVERAGE_TARGET_S:.2f}x of the {COVERAGE_TARGET_S:.0f} s target; {cov_s / probe_s:.1f}x a dns "
          f"probe of the same clients, {probe_s:.2f}s)  at closest {s['share_at_closest']}, within 50 ms "
          f"{s['within_ms']['50']}, inflation median {s['inflation_ms']['median']} ms "
          f"p95 {s['inflation_ms']['p95']} ms")


if __name__ == "__main__":
    main()
