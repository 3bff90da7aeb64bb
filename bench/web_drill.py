"""The web view's cost to the lab: a withdraw drill's measured convergence with `anycastlab web` serving and a
headless Chromium page open on it, against the same drill with neither, alternated on one default lab
(target: within 10%). Also the web server's and the browser's CPU while idle and during the drill.

Each run is the shipped withdraw drill (topologies/drills/withdraw.yaml, run in-process with run_drill).
Convergence is the drill's own figure: p50 and p95 over the clients that moved, fault to last change.
The lab is booted here under its own name and always taken down; the web server listens on loopback.
Writes reports/bench-web.json beside the printed figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from anycastlab.drills import load_drill, run_drill
from anycastlab.lifecycle import Lab

ROOT = Path(__file__).resolve().parents[1]
WITHDRAW = ROOT / "topologies" / "drills" / "withdraw.yaml"
TARGET_RATIO = 1.10
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1280,800"]


def cpu_s(pid: int) -> float:
    """CPU seconds of a process and its children (those that ran and were waited for, and those alive)."""
    try:
        proc = psutil.Process(pid)
        total = sum(proc.cpu_times()[:4])  # user, system, children_user, children_system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += sum(child.cpu_times()[:2])
        return total
    except psutil.Error:
        return 0.0


class Page:
    """`anycastlab web` and a headless Chromium showing it, for the length of a `with` block."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def __enter__(self) -> Page:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.server = subprocess.Popen([sys.executable, "-m", "anycastlab", "web", "--lab", self.lab.name,
                                        "--listen", "127.0.0.1:0", "--json"], stdout=subprocess.PIPE, text=True)
        assert self.server.stdout is not None
        self.url = json.loads(self.server.stdout.readline())["url"]
        self.profile = tempfile.mkdtemp(prefix="anycastlab-bench-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for flag in [*FLAGS, f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        self.driver.get(self.url)
        self.browser_pid = self.driver.service.process.pid
        return self

    def cpu(self) -> tuple[float, float, int]:
        """CPU seconds of the server and of the browser, and the FRR calls the server made so far."""
        with urllib.request.urlopen(self.url + "api/state", timeout=5) as answer:
            calls = int(json.loads(answer.read())["frr_calls"])
        return cpu_s(self.server.pid), cpu_s(self.browser_pid), calls

    def __exit__(self, *exc: object) -> None:
        self.driver.quit()
        self.server.send_signal(signal.SIGTERM)
        self.server.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)


def one_drill(lab: Lab) -> dict[str, Any]:
    result = run_drill(lab, load_drill(WITHDRAW))
    conv = result.timeline.convergence()
    return {"passed": result.passed, "p50_s": conv["p50"], "p95_s": conv["p95"], "max_s": conv["max"],
            "lost": result.lost_probes, "seconds": round((result.finished or time.time()) - result.started, 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.web_drill", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="drills of each kind, alternated")
    parser.add_argument("--out", type=Path, default=Path("reports/bench-web.json"))
    args = parser.parse_args(argv if argv is not None else [])
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with_page": []}
    cpu: dict[str, Any] = {}
    with Lab.up("default", name="web-bench", timeout=120) as lab:
        for i in range(args.rounds):
            runs["without"].append(one_drill(lab))
            with Page(lab) as page:
                time.sleep(3)  # the page loaded and following
                idle0, t0 = page.cpu(), time.monotonic()
                time.sleep(5)
                idle1, t1 = page.cpu(), time.monotonic()
                run = one_drill(lab)
                drill1, t2 = page.cpu(), time.monotonic()
                runs["with_page"].append(run)
                if i == 0:
                    cpu = {"server_idle_cores": round((idle1[0] - idle0[0]) / (t1 - t0), 3),
                           "browser_idle_cores": round((idle1[1] - idle0[1]) / (t1 - t0), 3),
                           "server_drill_cores": round((drill1[0] - idle1[0]) / (t2 - t1), 3),
                           "browser_drill_cores": round((drill1[1] - idle1[1]) / (t2 - t1), 3),
                           "frr_calls_per_s_idle": round((idle1[2] - idle0[2]) / (t1 - t0), 2),
                           "frr_calls_per_s_drill": round((drill1[2] - idle1[2]) / (t2 - t1), 2)}
            for kind in runs:
                print(f"   round {i + 1} {kind:<9} p50 {runs[kind][-1]['p50_s']:.3f} s  p95 "
                      f"{runs[kind][-1]['p95_s']:.3f} s  passed {runs[kind][-1]['passed']}")
    med = {kind: {q: statistics.median(r[q] for r in rs) for q in ("p50_s", "p95_s")} for kind, rs in runs.items()}
    ratio = {q: round(med["with_page"][q] / med["without"][q], 3) if med["without"][q] else None
             for q in ("p50_s", "p95_s")}
    verdict = "met" if ratio["p95_s"] is not None and ratio["p95_s"] <= TARGET_RATIO else "MISSED"
    print(f"   convergence, median of {args.rounds}: without the page p50 {med['without']['p50_s']:.3f} s p95 "
          f"{med['without']['p95_s']:.3f} s; with it p50 {med['with_page']['p50_s']:.3f} s p95 "
          f"{med['with_page']['p95_s']:.3f} s")
    print(f"   ratio with/without: p50 {ratio['p50_s']}x, p95 {ratio['p95_s']}x "
          f"(target <= {TARGET_RATIO}x: {verdict})")
    print(f"   CPU (cores): web server idle {cpu.get('server_idle_cores')}, in a drill "
          f"{cpu.get('server_drill_cores')}; browser idle {cpu.get('browser_idle_cores')}, in a drill "
          f"{cpu.get('browser_drill_cores')}; FRR calls/s idle {cpu.get('frr_calls_per_s_idle')}, in a drill "
          f"{cpu.get('frr_calls_per_s_drill')}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "median": med, "ratio": ratio, "cpu": cpu}, indent=1))
    print(f"   written to {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
