"""What `anycastlab steering` writes: report.json, report.md (fit for a GitHub step summary), junit.xml (one case
per expectation) and one PNG per TTL, the anycast arm's timeline above that DNS arm's, the fault marked."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..colours import pop_colours
from .experiment import Arm, Result


@dataclass(frozen=True)
class Expectation:
    name: str
    passed: bool | None  # None: not evaluated (the arm did not run)
    message: str


Judge = Callable[[Arm], tuple[bool | None, str]]


def _judged(arm: Arm | None, name: str, judge: Judge) -> Expectation:
    """The expectation judged on an arm that finished; not run (passed None) on one that did not."""
    return Expectation(name, None, "the arm did not finish") if arm is None else Expectation(name, *judge(arm))


def _others_unaffected(result: Result, label: str) -> list[Expectation]:
    return [Expectation(f"{a.name}: {label}", n == 0, f"{n} failed requests") for a in result.arms if a.summary
            for n in [a.summary["failed_requests_other_clients"]]]


def expectations(result: Result) -> list[Expectation]:
    """anycast_outage_p95 < 1 s; each DNS arm's affected clients within the model (one request interval below,
    one request timeout above: see `slack`);
    clients of other PoPs without failures in every arm. A move has its own (move_expectations)."""
    if result.move is not None:
        return move_expectations(result)
    interval = result.settings.interval_s
    # The load's resolution: one request interval, or a request timeout when requests to the dead address
    # hang (the first success after the answer changed waits for the hung request of its connection).
    slack = max(interval, result.settings.timeout_s)
    arms = {a.name: a for a in result.arms if a.summary}

    def anycast_p95(arm: Arm) -> tuple[bool | None, str]:
        p95 = arm.summary["outage_s"]["p95"]
        return p95 < 1.0, f"p95 {p95:.3f} s"

    def within_model(arm: Arm) -> tuple[bool | None, str]:
        lo, hi = arm.model["outage_min_s"] - interval, arm.model["outage_max_s"] + slack
        outages = [c["outage_s"] for c in arm.clients if c["affected"]]
        bad = [o for o in outages if not lo <= o <= hi]
        passed = (not bad and bool(outages)) or (not outages and hi <= interval)
        return passed, f"{len(outages)} clients, outages {sorted(outages)} s; model {lo:.2f}..{hi:.2f} s"

    out = [_judged(arms.get("anycast"), "anycast_outage_p95 < 1s", anycast_p95)]
    out += [_judged(arms.get(f"dns-ttl{ttl}"), f"dns_ttl{ttl}_outage within model", within_model)
            for ttl in result.settings.ttls or []]
    return out + _others_unaffected(result, "other PoPs' clients unaffected")


def move_expectations(result: Result) -> list[Expectation]:
    """After a move: anycast serves the next request from the near PoP; DNS keeps the far PoP until the mover's
    cached answer runs out and takes the near one within a request timeout (and one interval) after; a ping right
    after the move is faster under anycast than to the far PoP's address DNS left the client with; nobody else
    fails."""
    assert result.move is not None
    near, far = result.move["near_pop"], result.move["far_pop"]
    slack = max(result.settings.interval_s, result.settings.timeout_s) + result.settings.interval_s
    arms = {a.name: a for a in result.arms if a.summary}
    anycast = arms.get("anycast")

    def next_request_near(arm: Arm) -> tuple[bool | None, str]:
        following = arm.summary["mover"]["next_request"]
        return (following is not None and following["pop"] == near and following["error"] is None,
                f"the first new connection's request after the move: {following}; near PoP {near}")

    def near_after_expiry(arm: Arm) -> tuple[bool | None, str]:
        m = arm.summary["mover"]
        expires, on_near = m.get("cache_expires_after_move_s"), m["on_near_pop_s"]
        fine = expires is not None and on_near is not None and expires - 0.05 <= on_near <= max(expires, 0.0) + slack
        return fine, (f"cached answer ran out {_secs(expires)} after the move; first request at {near} "
                      f"{_secs(on_near)} after it (allowed up to {slack:.2f} s later)")

    def slower_far(arm: Arm) -> tuple[bool | None, str]:
        m = arm.summary["mover"]
        far_ms = m.get("ping_ms")
        near_ms = anycast.summary["mover"].get("ping_ms") if anycast is not None else None
        return (None if far_ms is None or near_ms is None else far_ms > near_ms,
                f"DNS, to {m.get('ping_address')} ({far}): {far_ms} ms; anycast: {near_ms} ms "
                "(ICMP, right after the move)")

    out = [_judged(anycast, "anycast: next request after the move at the near PoP", next_request_near)]
    for ttl in result.settings.ttls or []:
        arm = arms.get(f"dns-ttl{ttl}")
        out.append(_judged(arm, f"dns_ttl{ttl}: near PoP only after the cached answer runs out", near_after_expiry))
        out.append(_judged(arm, f"dns_ttl{ttl}: RTT to the serving PoP after the move above anycast's", slower_far))
    return out + _others_unaffected(result, "the other clients unaffected")


def _move_markdown(result: Result) -> list[str]:
    assert result.move is not None
    mv = result.move
    columns = ["arm", "RTT right after the move (ping)", "first answer after the move", "on the near PoP after",
               "cached answer ran out after", "requests after the move by PoP", "new-connection request far / near",
               "failed (by class)", "TLS session resumed", "other clients' failures"]
    lines = [f"`{mv['client']}` moves from {mv['from']} (served by {mv['far_pop']}) to {mv['to']} (whose PoP is "
             f"{mv['near_pop']}); each arm moves it back at its end.", "", *_header(columns)]
    for arm in result.arms:
        if not arm.summary:
            lines.append(_not_run(result, arm, len(columns)))
            continue
        m = arm.summary["mover"]
        first = m["first_after_move"]
        shown = "-" if first is None else \
            f"{first['pop']} at {first['after_s']:.2f} s ({first['conn']}, {first['ms']} ms)"
        classes = ", ".join(f"{k} {v}" for k, v in sorted(m["failed_by_class"].items())) or "none"
        by_pop = ", ".join(f"{p} {n}" for p, n in m["requests_after_move"].items()) or "none"
        rtts = " / ".join("-" if v is None else f"{v:g} ms" for v in (
            m["new_conn_ms_far_after_move"], m["new_conn_ms_near_after_move"]))
        ping = "-" if m.get("ping_ms") is None else f"{m['ping_ms']:g} ms to {m['ping_address']}"
        lines.append(f"| {arm.name} | {ping} | {shown} | {_secs(m['on_near_pop_s'])} | "
                     f"{_secs(m.get('cache_expires_after_move_s'))} | {by_pop} | {rtts} | {m['failed']} ({classes}) | "
                     f"{_yes(m.get('tls_session_resumed'))} | "
                     f"{arm.summary['failed_requests_other_clients']} |")
    still = [f"{a.name}: " + " / ".join(_yes(v) for v in a.summary["mover"]["on_far_pop_after"].values())
             for a in result.arms if a.summary]
    lines += ["", f"Still on {mv['far_pop']} 5 / 15 / 30 s after the move: " + "; ".join(still) + "."]
    return lines


def _p50(summary: dict[str, Any], key: str) -> float | None:
    """A median over the clients it applies to; None (shown "-") when none did (nothing changed)."""
    found = summary.get(key) or {}
    return found.get("p50") if found.get("n") else None


def _yes(value: bool | None) -> str:
    return "-" if value is None else "yes" if value else "no"


def _secs(value: Any) -> str:
    return "-" if value is None else f"{value:.2f} s"


def markdown(result: Result) -> str:
    event = f"{result.move['client']} moves to {result.move['to']}" if result.move else \
        f"{result.fault} at {result.pop}"
    lines = [f"# Anycast against DNS steering: {event}", ""]
    h = result.health
    r = result.resolvers
    s = result.settings
    lines += [f"Lab `{result.lab}`; health checks every {h['interval_s']} s (timeout {h['timeout_s']} s), DOWN after "
              f"{h['down_after']} failures (detection {h['detection_s'][0]:g}-{h['detection_s'][1]:g} s), UP after "
              f"{h['up_after']}; resolvers min-TTL {r['min_ttl_s']} s, serve-expired "
              f"{'on' if r['serve_expired'] else 'off'}; client cache `{s.cache.name}` (floor {s.cache.floor_s:g} s); "
              f"load {s.keepalive_hz:g}+{s.new_conn_hz:g} requests/s per client. "
              f"{'Complete' if result.complete else 'INCOMPLETE: ' + str(result.error)}; took "
              f"{result.finished - result.started:.0f} s of a {result.budget_s:.0f} s budget.", ""]
    lines += _move_markdown(result) if result.move is not None else _fault_markdown(result)
    lines += ["", "Expectations:", ""]
    lines += [f"- {'PASS' if e.passed else 'FAIL' if e.passed is False else 'NOT RUN'} {e.name}: {e.message}"
              for e in expectations(result)]
    return "\n".join(lines) + "\n"


def _header(columns: list[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _not_run(result: Result, arm: Arm, columns: int) -> str:
    return f"| {arm.name} | not run: {arm.error or result.error} |" + " |" * (columns - 2)


def _fault_markdown(result: Result) -> list[str]:
    columns = ["arm", "affected clients", "outage p50 / p95 / max", "model", "gdnsd marked it DOWN",
               "failed requests (by class)", "other clients' failures", "resolver changed p50",
               "client on new PoP p50", "still failing after 5/15/30 s"]
    lines = _header(columns)
    for arm in result.arms:
        if not arm.summary:
            lines.append(_not_run(result, arm, len(columns)))
            continue
        o = arm.summary["outage_s"]
        model = f"{arm.model['outage_min_s']:g}-{arm.model['outage_max_s']:g} s" if arm.model else "BGP convergence"
        classes = ", ".join(f"{k} {v}" for k, v in sorted(arm.summary["failed_by_class"].items())) or "none"
        resolver, used = (_p50(arm.summary, "resolver_changed_s"), _p50(arm.summary, "used_new_pop_s")) \
            if arm.kind == "dns" else (None, None)
        still = " / ".join(str(v) for v in arm.summary["still_failing_after"].values())
        lines.append(f"| {arm.name} | {arm.summary['affected_clients']} | {o['p50']:.2f} / {o['p95']:.2f} / "
                     f"{o['max']:.2f} s | {model} | {_secs(arm.summary.get('health_down_s'))} | "
                     f"{arm.summary['failed_requests']} ({classes}) | "
                     f"{arm.summary['failed_requests_other_clients']} | {_secs(resolver)} | {_secs(used)} | {still} |")
    resumed = [f"{a.name}: affected {a.summary['tls_resumed_affected']}/{a.summary['affected_clients']}, others "
               f"{a.summary['tls_resumed_others']}/{len(a.clients) - a.summary['affected_clients']}"
               for a in result.arms if a.summary]
    lines += ["", "TLS sessions (openssl's, saved before the fault) resumed at its end: " + "; ".join(resumed) + "."]
    lines += ["", "Per client (affected ones):", "",
              "| arm | client | PoP before → during → end | outage | failed | resolver changed | used new PoP | "
              "kept-alive conn survived | TLS session resumed |", "|---|---|---|---|---|---|---|---|---|"]
    for arm in result.arms:
        for c in arm.clients:
            if not c["affected"]:
                continue
            lines.append(f"| {arm.name} | {c['name']} | {c['pop_before']} → {c['pop_after']} → {c['pop_end']} | "
                         f"{c['outage_s']:.2f} s | {c['failed']} | {_secs(c.get('resolver_changed_s'))} | "
                         f"{_secs(c['used_new_pop_s'])} | {c['keepalive_survived']} | "
                         f"{_yes(c.get('tls_session_resumed'))} |")
    return lines


def junit_xml(result: Result) -> str:
    suite = ET.Element("testsuite", name="steering")
    failures = errors = 0
    for e in expectations(result):
        case = ET.SubElement(suite, "testcase", classname="steering", name=e.name)
        if e.passed is False:
            failures += 1
            ET.SubElement(case, "failure", message=e.message)
        elif e.passed is None:
            errors += 1
            ET.SubElement(case, "error", message=e.message)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def timelines_png(result: Result, arms: list[Arm], pops: list[str], path: Path) -> None:
    """The arms' timelines stacked (same clients, same time axis from the fault), the fault and restore marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    colours = pop_colours(pops)
    clients = [c["name"] for c in arms[0].clients]
    fig, axes = plt.subplots(len(arms), 1, figsize=(11, (0.3 * len(clients) + 1.2) * len(arms) + 0.6), dpi=110,
                             sharex=True, squeeze=False)
    for ax, arm in zip((a[0] for a in axes), arms, strict=True):
        for y, client in enumerate(clients):
            rows = [r for r in arm.records if r.client == client]
            for pop in pops:
                xs = [r.t - arm.fault_t for r in rows if r.error is None and r.pop == pop]
                ax.scatter(xs, [y] * len(xs), s=6, marker="|", color=colours[pop], linewidths=1.2)
            failed = [r.t - arm.fault_t for r in rows if r.error is not None]
            ax.scatter(failed, [y] * len(failed), s=14, marker="x", color="red", linewidths=0.8)
        ax.axvline(0, color="red", linestyle="--", linewidth=1)
        label = f" {result.move['client']} moves to {result.move['to']}" if result.move else \
            f" {result.fault} at {result.pop}"
        ax.text(0, len(clients) - 0.4, label, color="red", fontsize=8, va="bottom")
        if arm.restore_t is not None:
            x = arm.restore_t - arm.fault_t
            ax.axvline(x, color="green", linestyle="--", linewidth=1)
            ax.text(x, len(clients) - 0.4, " restore", color="green", fontsize=8, va="bottom")
        ax.set_yticks(range(len(clients)), clients, fontsize=7)
        ax.set_ylim(-0.7, len(clients) + 0.4)
        ax.set_title(f"{arm.name}: {arm.hostname} (TTL {arm.ttl} s) - PoP answering each client, x = failed request",
                     fontsize=9)
    axes[-1][0].set_xlabel("seconds from the fault")
    handles = [Line2D([], [], color=colours[p], marker="s", linestyle="", label=p) for p in pops]
    handles.append(Line2D([], [], color="red", marker="x", linestyle="", label="failed"))
    axes[0][0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_reports(result: Result, directory: Path | str, pops: list[str]) -> list[Path]:
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    data = result.to_json()
    data["expectations"] = [{"name": e.name, "passed": e.passed, "message": e.message} for e in expectations(result)]
    written = [folder / "report.json", folder / "report.md", folder / "junit.xml"]
    written[0].write_text(json.dumps(data, indent=2) + "\n")
    written[1].write_text(markdown(result))
    written[2].write_text(junit_xml(result))
    with open(folder / "http.jsonl", "w") as f:
        for arm in result.arms:
            for r in arm.records:
                f.write(json.dumps({"arm": arm.name, **r.to_json()}) + "\n")
    written.append(folder / "http.jsonl")
    anycast = next((a for a in result.arms if a.name == "anycast" and a.summary), None)
    for arm in result.arms:
        if arm.kind == "dns" and arm.summary:
            png = folder / f"timeline-ttl{arm.ttl}.png"
            timelines_png(result, [a for a in (anycast, arm) if a is not None], pops, png)
            written.append(png)
    return written
