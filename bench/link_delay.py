"""Link delay benchmark: how accurate the added delay is (ping at probe rate and faster, light HTTP), how
many packets per second the delay path sustains against an unshaped link measured in the same run, and
the releaser's memory.

Boots its own small lab (`l6-bench`; ANYCASTLAB_TEST_PREFIX replaces `l6`), always taken down. All
traffic is between lab nodes, bounded in count and time. Writes reports/bench-link-delay.json beside the
printed figures.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from anycastlab.lifecycle import Lab
from anycastlab.runtime import procs
from anycastlab.runtime.links import control

ROOT = Path(__file__).resolve().parents[1]
CLI = str(Path(sys.executable).parent / "anycastlab")
NAME = f"{os.environ.get('ANYCASTLAB_TEST_PREFIX', 'l6')}-bench"
FLOOD_S = 3.0


def link_set(a: str, b: str, *args: str) -> None:
    subprocess.run([CLI, "link", "set", a, b, *args, "--lab", NAME], check=True, capture_output=True, timeout=60)


def address(lab: Lab, node: str, peer: str) -> str:
    return str(next(i.peer_address for i in lab.plan.nodes[node].interfaces if i.peer == peer))


def ping(lab: Lab, node: str, target: str, count: int, interval: float) -> list[float]:
    out = lab.exec(node, ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2",
                          target], timeout=count * interval + 15)
    return [float(m) for m in re.findall(r"time=([\d.]+) ms", out.stdout)]


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"n": len(values), "mean": round(statistics.fmean(values), 3), "median": round(statistics.median(values), 3),
            "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3), "max": round(ordered[-1], 3),
            "min": round(ordered[0], 3)}


def accuracy(lab: Lab) -> list[dict[str, Any]]:
    """Ping RTT over ams-ta at each delay, at 5 Hz (a probe's rate) and 100 Hz, against 2 x delay."""
    target = address(lab, "ams", "ta")
    link_set("ams", "ta", "--delay", "0ms")
    base = statistics.median(ping(lab, "ams", target, 20, 0.05))
    rows = []
    for delay in (1.0, 5.0, 20.0, 40.0):
        link_set("ams", "ta", "--delay", f"{delay}ms")
        for hz, count in ((5, 25), (100, 300)):
            rtts = ping(lab, "ams", target, count, 1.0 / hz)
            stats = summary(rtts)
            want = 2 * delay
            tolerance = max(0.1 * want, 0.5 * 2)  # +-10% or +-0.5 ms per direction, whichever is larger
            in_band = sum(abs(r - want) <= tolerance for r in rtts) / len(rtts)
            row = {"delay_ms": delay, "rate_hz": hz, "want_rtt_ms": want, "base_rtt_ms": base, **stats,
                   "error_median_ms": round(stats["median"] - want, 3), "in_band_share": round(in_band, 3)}
            rows.append(row)
            print(f"   delay {delay:>4g} ms at {hz:>3} Hz: RTT median {stats['median']:.2f} ms (want {want:g}, "
                  f"error {row['error_median_ms']:+.2f} ms), p95 {stats['p95']:.2f}, {in_band:.0%} within target")
    link_set("ams", "ta", "--delay", "0ms")
    return rows


def http(lab: Lab) -> dict[str, Any]:
    """Light HTTP: 20 sequential requests from a client to its PoP, with and without 20 ms on its access link."""
    anycast = str(lab.plan.topology.anycast.ip)
    fmt = "%{time_connect} %{time_starttransfer}\\n"

    def run() -> tuple[float, float]:
        connects, ttfbs = [], []
        for _ in range(20):
            out = lab.exec("ispa-c1", ["curl", "-s", "-o", "/dev/null", "--max-time", "5", "-w", fmt,
                                       f"http://{anycast}/cdn-cgi/trace"], timeout=10).stdout.split()
            if len(out) == 2:
                connects.append(float(out[0]) * 1000)
                ttfbs.append(float(out[1]) * 1000)
        return statistics.median(connects), statistics.median(ttfbs)

    base = run()
    link_set("ispa", "ispa-c1", "--delay", "20ms")
    delayed = run()
    link_set("ispa", "ispa-c1", "--delay", "0ms")
    added_connect, added_ttfb = delayed[0] - base[0], delayed[1] - base[1]
    print(f"   HTTP over a 20 ms access link: connect +{added_connect:.2f} ms (want +40), "
          f"first byte +{added_ttfb:.2f} ms (want +80)")
    return {"base_connect_ms": round(base[0], 3), "base_ttfb_ms": round(base[1], 3),
            "added_connect_ms": round(added_connect, 3), "added_ttfb_ms": round(added_ttfb, 3)}


def flood(lab: Lab, rate: float = 0.0, seconds: float = FLOOD_S) -> dict[str, float]:
    """UDP from ams to ta over their link for `seconds`; returns what was sent and what arrived."""
    target = address(lab, "ams", "ta")
    py = [sys.executable, "-m", "bench.link_udp"]
    count = lab.running.netns_argv("ta", [*py, "count", "--seconds", str(seconds + 2)])
    counter = subprocess.Popen(count, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert counter.stderr is not None and counter.stderr.readline().strip() == "ready", "the counter did not start"
    send = lab.running.netns_argv("ams", [*py, "send", "--address", target, "--seconds", str(seconds),
                                          "--rate", str(rate)])
    sent = json.loads(subprocess.run(send, cwd=ROOT, check=True, capture_output=True, text=True,
                                     timeout=seconds + 30).stdout)
    got = json.loads(counter.communicate(timeout=seconds + 30)[0])
    pps = got["received"] / sent["seconds"]
    return {"sent": sent["sent"], "received": got["received"], "offered_pps": round(sent["sent"] / sent["seconds"]),
            "received_pps": round(pps), "loss": round(1 - got["received"] / max(1, sent["sent"]), 4)}


def releaser_cpu_s(lab: Lab) -> float | None:
    """User plus system CPU seconds the releaser has used so far."""
    state = control.read_state(lab.running.directory)
    if state.get("releaser") is None:
        return None
    used = procs.usage(state["releaser"]["pid"])
    return used.cpu_s if used else None


def throughput(lab: Lab) -> dict[str, Any]:
    """Saturating UDP through the delay path against the same link unshaped, and the releaser's CPU per packet.

    The unshaped figure is bounded by the Python sender (and by whatever else shares the 2 cores), so the
    CPU cost per packet is the steadier measure of what the releaser can do: 1 / cost is its rate per core.
    """
    link_set("ams", "ta", "--delay", "0ms")
    base = flood(lab)
    link_set("ams", "ta", "--delay", "1ms")
    cpu_before = releaser_cpu_s(lab)
    shaped = flood(lab)
    cpu_after = releaser_cpu_s(lab)
    ratio = shaped["received_pps"] / max(1, base["received_pps"])
    per_packet_us = None
    if cpu_before is not None and cpu_after is not None and shaped["received"]:
        per_packet_us = round((cpu_after - cpu_before) / shaped["received"] * 1e6, 2)
    shaped["cpu_per_packet_us"] = per_packet_us  # type: ignore[assignment]
    print(f"   UDP flood: unshaped {base['received_pps']} pps, through the delay path {shaped['received_pps']} pps "
          f"({ratio:.2f}x of unshaped, loss {shaped['loss']:.1%}); releaser CPU {per_packet_us} us/packet "
          f"(about {1e6 / per_packet_us if per_packet_us else 0:.0f} pps per core)")
    under_load = []
    for rate in (1000, 5000, 10000):
        results: dict[str, Any] = {}
        thread = threading.Thread(target=lambda r=rate, out=results: out.update(flood(lab, r, 4.0)))
        link_set("ams", "ta", "--delay", "20ms")
        thread.start()
        time.sleep(1.0)
        rtts = ping(lab, "ams", address(lab, "ams", "ta"), 20, 0.1)
        thread.join(60)
        stats = summary(rtts) if rtts else {}
        under_load.append({"load_pps": rate, **results, "rtt": stats})
        print(f"   20 ms link under {rate} pps: RTT median {stats.get('median', 0):.2f} ms (want 40), "
              f"p95 {stats.get('p95', 0):.2f}, flood loss {results.get('loss', 1):.1%}")
    link_set("ams", "ta", "--delay", "0ms")
    return {"unshaped": base, "shaped_1ms": shaped, "ratio": round(ratio, 3), "under_load": under_load}


def releaser_rss_kb(lab: Lab) -> int | None:
    state = control.read_state(lab.running.directory)
    if state.get("releaser") is None:
        return None
    used = procs.usage(state["releaser"]["pid"])
    return used.rss_kb if used else None


def main() -> None:
    lab = Lab.up("small", name=NAME, timeout=120)
    try:
        mechanism = lab.status()["links"]["mechanism"]
        print(f"   mechanism: {mechanism}")
        report: dict[str, Any] = {"mechanism": mechanism, "rss_idle_kb": releaser_rss_kb(lab)}
        report["accuracy"] = accuracy(lab)
        report["http"] = http(lab)
        report["throughput"] = throughput(lab)
        report["rss_after_kb"] = releaser_rss_kb(lab)
        print(f"   releaser RSS: {report['rss_idle_kb']} kB idle, {report['rss_after_kb']} kB after the floods")
    finally:
        lab.down()
    out = ROOT / "reports" / "bench-link-delay.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
