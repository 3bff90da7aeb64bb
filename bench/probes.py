"""Probe benchmarks: census sweep time (default topology, and a generated one with 1,000 clients), and the
largest continuous DNS probe rate that loses nothing on this machine.

Each lab is booted here under its own name and always taken down. All traffic stays inside the labs'
namespaces. Every measurement is bounded: a fixed number of sweeps, and watch steps of a few seconds.
Writes reports/bench-probes.json beside the printed figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from anycastlab.lifecycle import Lab, load
from anycastlab.probes import census
from anycastlab.probes.probe import run_probe
from anycastlab.probes.watch import watch
from ruamel.yaml import YAML

TARGET_DEFAULT_S = 2.0
TARGET_1K_S = 10.0
RATES_HZ = [25, 50, 100, 200, 400, 800, 1600]  # per client, doubled until a step loses probes
STEP_S = 3.0
SWEEPS = 5


def topology_with_clients(total: int) -> dict[str, Any]:
    """The default topology with `total` clients spread over its eyeballs."""
    path, _ = load("default")
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    eyeballs = data["eyeballs"]
    base, extra = divmod(total, len(eyeballs))
    for i, eyeball in enumerate(eyeballs):
        eyeball["clients"] = base + (1 if i < extra else 0)
    data["name"] = f"gen{total}"
    return data


def census_times(lab: Lab, sweeps: int = SWEEPS) -> dict[str, Any]:
    """Wall time of whole census sweeps (sockets opened, requests sent, every reply in or timed out)."""
    clients = lab.running.plan.clients
    times, answered = [], []
    for _ in range(sweeps):
        started = time.perf_counter()
        found = census.measure(lab.running, clients)
        times.append(time.perf_counter() - started)
        answered.append(sum(r.pop is not None for r in found.values()))
    started = time.perf_counter()
    full = run_probe(lab.running, ["census"], save=False)
    with_prediction = time.perf_counter() - started
    return {"clients": len(clients), "median_s": statistics.median(times), "max_s": max(times),
            "answered_min": min(answered), "with_prediction_s": with_prediction, "agree": full.agree}


def _step(lab: Lab, rate: float, step_s: float) -> dict[str, Any]:
    clients = len(lab.running.plan.clients)
    records = list(watch(lab.running, rate, step_s))
    lost = [r for r in records if r.pop is None]
    expected = clients * max(1, int(rate * step_s))
    times = [r.t for r in records]
    achieved = (len(records) - 1) / (max(times) - min(times)) if len(records) > 1 else 0.0
    landed: dict[str, Counter[str]] = defaultdict(Counter)
    for r in records:
        if r.pop is not None:
            landed[r.client][r.pop] += 1
    lost_by_pop = Counter(landed[r.client].most_common(1)[0][0] if landed[r.client] else "?" for r in lost)
    ok = not lost and len(records) == expected and achieved >= 0.9 * rate * clients
    print(f"   watch {rate:>7.1f} Hz/client ({rate * clients:>7.0f} probes/s): {len(records)}/{expected} records, "
          f"{len(lost)} lost{' ' + str(dict(lost_by_pop)) if lost else ''}, achieved {achieved:.0f}/s")
    return {"rate_hz": rate, "aggregate_pps": rate * clients, "records": len(records), "expected": expected,
            "lost": len(lost), "lost_by_pop": dict(lost_by_pop), "achieved_pps": round(achieved, 1), "ok": ok}


def max_lossless_rate(lab: Lab, step_s: float = STEP_S, refine: int = 2) -> dict[str, Any]:
    """Double the per-client rate until a step loses a probe, then bisect `refine` times."""
    clients = len(lab.running.plan.clients)
    steps: list[dict[str, Any]] = []
    best: float | None = None
    failed: float | None = None
    for rate in RATES_HZ:
        steps.append(_step(lab, float(rate), step_s))
        if not steps[-1]["ok"]:
            failed = float(rate)
            break
        best = float(rate)
    for _ in range(refine if failed is not None and best is not None else 0):
        assert best is not None and failed is not None
        middle = round((best + failed) / 2, 1)
        steps.append(_step(lab, middle, step_s))
        best, failed = (middle, failed) if steps[-1]["ok"] else (best, middle)
    return {"clients": clients, "max_lossless_rate_hz": best,
            "max_lossless_aggregate_pps": None if best is None else best * clients, "steps": steps}


def _report(label: str, result: dict[str, Any], target: float) -> None:
    verdict = "ok" if result["median_s"] < target else "OVER TARGET"
    print(f"   census {label}: {result['clients']} clients, median {result['median_s']:.3f} s, "
          f"max {result['max_s']:.3f} s (target < {target:g} s: {verdict}); answered >= {result['answered_min']}; "
          f"with BGP prediction {result['with_prediction_s']:.3f} s, agree={result['agree']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.probes", description=__doc__)
    parser.add_argument("--clients", type=int, default=1000, help="clients in the generated topology")
    parser.add_argument("--skip-large", action="store_true", help="only the default topology")
    parser.add_argument("--out", type=Path, default=Path("reports/bench-probes.json"))
    args = parser.parse_args(argv if argv is not None else [])
    results: dict[str, Any] = {}

    with Lab.up("default", name="probes-bench", timeout=120) as lab:
        results["census_default"] = census_times(lab)
        _report("default", results["census_default"], TARGET_DEFAULT_S)
        results["watch"] = max_lossless_rate(lab)
        w = results["watch"]
        print(f"   largest lossless continuous rate: {w['max_lossless_rate_hz']} Hz per client = "
              f"{w['max_lossless_aggregate_pps']} probes/s across {w['clients']} clients")

    if not args.skip_large:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"gen{args.clients}.yaml"
            YAML().dump(topology_with_clients(args.clients), path)
            started = time.perf_counter()
            with Lab.up(path, name="probes-bench-1k", timeout=900) as lab:
                results["bringup_large_s"] = time.perf_counter() - started
                print(f"   generated topology with {args.clients} clients up in {results['bringup_large_s']:.1f} s")
                results["census_large"] = census_times(lab)
                _report(f"{args.clients} clients", results["census_large"], TARGET_1K_S)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"   written to {args.out}")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
