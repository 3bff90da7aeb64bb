"""A drill's reports: report.json (for machines), report.md (for people, fit for a GitHub step summary),
JUnit XML (one test case per expectation) and timeline.png (each client's PoP over time)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..colours import pop_colours

if TYPE_CHECKING:
    from .result import DrillResult


def write_reports(result: DrillResult, directory: Path | str | None, junit: Path | str | None = None) -> list[Path]:
    written = []
    if directory is not None:
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        data = result.to_json()
        (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
        (out / "probes.jsonl").write_text("".join(
            json.dumps({"t": round(r.t - result.t0, 4), "client": r.client, "seq": r.seq, "pop": r.pop,
                        "rtt_ms": None if r.rtt_ms is None else round(r.rtt_ms, 3)}) + "\n"
            for r in result.records))
        (out / "http.jsonl").write_text("".join(
            json.dumps({**r.to_json(), "t": round(r.t - result.t0, 4)}) + "\n" for r in result.http_records))
        (out / "report.md").write_text(markdown(result))
        written += [out / "report.json", out / "probes.jsonl", out / "http.jsonl", out / "report.md"]
        png = out / "timeline.png"
        timeline_png(result, png)
        written.append(png)
        if junit is None:
            junit = out / "junit.xml"
    if junit is not None:
        Path(junit).parent.mkdir(parents=True, exist_ok=True)
        Path(junit).write_text(junit_xml(result))
        written.append(Path(junit))
    return written


def summary_line(result: DrillResult) -> str:
    conv = result.timeline.convergence()
    http = result.http.get("failed")
    verdict = "PASS" if result.passed else ("INCOMPLETE" if not result.complete else "FAIL")
    return (f"{verdict:<10} {result.drill.name:<24} p95 {conv['p95'] or 0:.3f}s  lost {result.lost_probes}  "
            f"http errors {'n/a' if http is None else http}")


def _target(fault: dict[str, Any]) -> str:
    if fault["mode"] == "move":
        return f"{fault['client']} from {fault['from']} to {fault['to']}"
    return str(fault.get("pop") or "-".join(fault.get("link") or []))


def markdown(result: DrillResult) -> str:
    data = result.to_json()
    conv = data["convergence_s"]
    verdict = "✅ passed" if result.passed else ("⚠️ incomplete" if not result.complete else "❌ failed")
    lines = [f"# Drill `{result.drill.name}`: {verdict}", ""]
    if result.drill.description:
        lines += [result.drill.description, ""]
    if result.error:
        restored = ("Every injected fault was restored." if not result.restore_failures
                    else f"**Restoring failed:** {'; '.join(result.restore_failures)}.")
        lines += [f"**Stopped early:** {result.error}. {restored}", ""]
    faults = ", ".join(f"{f['mode']} {_target(f)} at {f['t']:+.3f}s" for f in data["faults"]) or "none"
    lines += [
        f"- lab `{result.lab}`, faults: {faults}; restored at "
        f"{'-' if data['restore_s'] is None else format(data['restore_s'], '+.3f') + 's'}",
        f"- convergence over {_count(conv['n'], 'affected client')}: p50 {_secs(conv['p50'])}, "
        f"p95 {_secs(conv['p95'])}, max {_secs(conv['max'])}",
        f"- lost probes {data['lost_probes']} of {data['probes']['sent']} (probes at {data['probes']['rate_hz']:g} Hz "
        f"per client, lost after {data['probes']['timeout_s']:g}s), longest outage {data['max_outage_s']}s",
        f"- HTTP: {_http_line(data['http'])}",
        f"- cache: {_cache_line(data['cache'])}",
        "",
        "## Expectations",
        "",
        "| expectation | expected | actual | result |",
        "|---|---|---|---|",
    ]
    for e in result.expectations:
        mark = {True: "pass", False: "**FAIL**", None: "skipped"}[e.passed]
        lines.append(f"| {e.name} | {_value(e.name, e.expected)} | {_value(e.name, e.actual)} | {mark}: {e.message} |")
    if not result.expectations:
        lines.append("| (none) | | | |")
    lines += ["", "## Clients", "",
              "| client | before | during fault | end | convergence | outage | lost | flips | transient |",
              "|---|---|---|---|---|---|---|---|---|"]
    for c in result.timeline.clients:
        conv_c = "-" if c.convergence_s is None else f"{c.convergence_s:.3f}s"
        lines.append(f"| {c.name} | {c.pop_before} | {c.pop_after} | {c.pop_end} | {conv_c} | {c.outage_s:.3f}s "
                     f"| {c.lost_probes} | {c.flips} | {', '.join(c.transient_pops) or '-'} |")
    lines += ["", "## Steps", ""]
    lines += [f"{s.index + 1}. `{s.t:+.3f}s` {s.label}" + ("" if s.ok else f" — {s.detail}") for s in result.steps]
    events = data["control_plane"]
    if events:
        shown = f"first {EVENTS_SHOWN} of {len(events)}" if len(events) > EVENTS_SHOWN else f"all {len(events)}"
        lines += ["", f"## Control plane ({shown} FRR log events)", "", "| t | router | event |", "|---|---|---|"]
        lines += [f"| {e['t']:+.3f}s | {e['router']} | {e['kind']}: `{_clip(e['text'])}` |"
                  for e in events[:EVENTS_SHOWN]]
    lines += ["", "Timeline: `timeline.png`; full data: `report.json`, `probes.jsonl`.", ""]
    return "\n".join(lines)


EVENTS_SHOWN = 30
TIME_EXPECTATIONS = {"convergence_p95", "convergence_max", "max_outage"}
COUNT_EXPECTATIONS = {"max_lost_probes": "probe", "max_http_errors": "error"}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:g}s"


def _value(name: str, value: Any) -> str:
    """An expectation's value with its unit: seconds for times, probes or errors for counts."""
    if value is None:
        return "-"
    if name in TIME_EXPECTATIONS and isinstance(value, int | float):
        return f"{value:.3f}s".replace(".000s", "s")
    if name in COUNT_EXPECTATIONS and isinstance(value, int | float):
        return _count(int(value), COUNT_EXPECTATIONS[name])
    return str(value)


def _clip(text: str, limit: int = 100) -> str:
    """A log line cut at a word boundary, marked when cut."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    return text[:cut if cut > limit // 2 else limit].rstrip() + " …"


def _classes(counts: Any) -> str:
    if not isinstance(counts, dict) or not counts:
        return ""
    return " (first tries: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")"


def _http_line(http: dict[str, Any]) -> str:
    if not http.get("available"):
        return str(http.get("note", "not measured"))
    classes = ", ".join(f"{k} {v}" for k, v in http["by_class"].items()) or "none"
    ka = http["keepalive"]
    line = (f"{http['ok']} ok, {http['failed']} failed ({classes}); keep-alive connections open at the fault: "
            f"{ka['survived']} of {ka['at_fault']} survived it; {http['retried']['requests']} requests retried "
            f"on a new connection after a reset or refusal before any answer"
            f"{_classes(http['retried']['first_try_by_class'])}")
    return line + (f" ({http['note']})" if http.get("note") else "")


def _cache_line(cache: dict[str, Any]) -> str:
    if not cache.get("available"):
        return str(cache.get("note", "not measured"))

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    return (f"hit ratio at {', '.join(cache['pops']) or '-'} ({cache['pops_are']}) {pct(cache['hit_ratio_before'])} "
            f"before, {pct(cache['hit_ratio_after'])} after the fault; origin {cache['origin_rps_before']} req/s "
            f"before, {cache['origin_rps_after']} after")


def junit_xml(result: DrillResult) -> str:
    """One test case per expectation. In a drill that stopped early, what it never evaluated is an error; a
    drill with no expectations gets one case, "runs to completion", so an interrupted run still shows red."""
    suite = ET.Element("testsuite", name=f"drill.{result.drill.name}")
    counts = {"failure": 0, "skipped": 0, "error": 0}

    def case(name: str, outcome: str | None, message: str, text: str = "") -> None:
        element = ET.SubElement(suite, "testcase", classname=f"drill.{result.drill.name}", name=name)
        if outcome is not None:
            counts[outcome] += 1
            ET.SubElement(element, outcome, message=message).text = text or None

    for e in result.expectations:
        if e.passed is False:
            case(e.name, "failure", e.message, f"expected {e.expected!r}, got {e.actual!r}: {e.message}")
        elif e.passed is None:
            case(e.name, "skipped" if result.complete else "error", e.message)
        else:
            case(e.name, None, e.message)
    if not result.expectations:
        case("runs to completion", None if result.complete else "error", result.error or "incomplete")
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(counts["failure"]))
    suite.set("errors", str(counts["error"]))
    suite.set("skipped", str(counts["skipped"]))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def timeline_colours(result: DrillResult) -> dict[str, str]:
    """The PoPs this drill saw, in topology order, with the colours `graph` gives them."""
    seen = {r.pop for r in result.records if r.pop is not None}
    order = [*result.pops, *sorted(seen - set(result.pops))]
    colours = pop_colours(order)
    return {p: colours[p] for p in order if p in seen}


def timeline_png(result: DrillResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    clients = [c.name for c in result.timeline.clients]
    colours = timeline_colours(result)
    pops = list(colours)
    t0 = result.t0
    fig, ax = plt.subplots(figsize=(11, 0.35 * len(clients) + 2), dpi=110)
    for y, client in enumerate(clients):
        rows = [r for r in result.records if r.client == client]
        for pop in pops:
            xs = [r.t - t0 for r in rows if r.pop == pop]
            ax.scatter(xs, [y] * len(xs), s=6, marker="|", color=colours[pop], linewidths=1.2)
        lost = [r.t - t0 for r in rows if r.pop is None]
        ax.scatter(lost, [y] * len(lost), s=14, marker="x", color="black", linewidths=0.8)
        failed = [r.t - t0 for r in result.http_records if r.client == client and r.error is not None]
        ax.scatter(failed, [y + 0.3] * len(failed), s=16, marker="v", color="red", linewidths=0.5)
    for f in result.injected:
        ax.axvline(f["t"], color="red", linestyle="--", linewidth=1)
        ax.text(f["t"], len(clients) - 0.4, f" {f['mode']}", color="red", fontsize=8, va="bottom")
    if result.restore_t is not None:
        ax.axvline(result.restore_t - t0, color="green", linestyle="--", linewidth=1)
        ax.text(result.restore_t - t0, len(clients) - 0.4, " restore", color="green", fontsize=8, va="bottom")
    ax.set_yticks(range(len(clients)), clients, fontsize=8)
    ax.set_xlabel("seconds from the fault")
    ax.set_title(f"drill {result.drill.name}: PoP answering each client (x = lost probe, v = HTTP error)",
                 fontsize=10)
    handles = [Line2D([], [], color=colours[p], marker="s", linestyle="", label=p) for p in pops]
    handles.append(Line2D([], [], color="black", marker="x", linestyle="", label="lost"))
    handles.append(Line2D([], [], color="red", marker="v", linestyle="", label="HTTP error"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_ylim(-0.7, len(clients) + 0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
