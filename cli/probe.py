"""`anycastlab probe`: which PoP each client lands on, measured four ways and compared with BGP.

One-shot: a table per client and the PoP shares (or --json). Continuous (--watch): sequence-numbered DNS
probes from every client, one JSONL record per answer or loss, to --out or stdout.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any, TextIO

import click
from anycastlab import interrupts
from anycastlab.interrupts import describe, exit_status
from anycastlab.lifecycle import Lab
from anycastlab.probes.probe import ALL, RTT_MEANS, ProbeRun, run_probe

from .output import emit_json, lab_option, reports_errors, table


def _split(values: tuple[str, ...]) -> list[str]:
    return [v for value in values for v in value.split(",") if v]


@click.command()
@lab_option
@click.option("--method", "methods", multiple=True, type=click.Choice([*ALL, "all"]),
              help="dns, http, census, traceroute or all (default: all; repeatable).")
@click.option("--clients", "--client", "clients", multiple=True, metavar="C1,C2",
              help="Only these clients (comma-separated, or repeated; default: every client).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--watch", is_flag=True, help="Continuous DNS probes, one JSONL record per answer or loss.")
@click.option("--rate", type=float, default=10.0, show_default=True, help="With --watch: probes a second per client.")
@click.option("--duration", type=float, default=10.0, show_default=True, help="With --watch: seconds to run.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="With --watch: write JSONL here.")
@reports_errors
def probe(lab_name: str | None, methods: tuple[str, ...], clients: tuple[str, ...], as_json: bool,
          watch: bool, rate: float, duration: float, out: Path | None) -> None:
    """Measure which PoP each client lands on and check it against BGP's prediction."""
    ctx = click.get_current_context()
    if not watch:
        if out is not None:
            raise click.UsageError("--out goes with --watch (save one-shot results with --json > FILE)")
        given = [f"--{name}" for name in ("rate", "duration")
                 if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT]
        if given:
            verb = "goes" if len(given) == 1 else "go"
            raise click.UsageError(f"{' and '.join(given)} {verb} with --watch")
    elif methods:
        raise click.UsageError("--watch probes with DNS only; --method is for one-shot probes")
    lab = Lab.attach(lab_name).running
    if watch:
        _watch(lab, _split(clients) or None, rate, duration, out, as_json)
        return
    run = run_probe(lab, list(methods) or None, _split(clients) or None)
    if as_json:
        emit_json(run.to_json())
    else:
        click.echo(render(run))


def render(run: ProbeRun) -> str:
    data = run.to_json()
    methods = data["methods"]
    rows = []
    for c in data["clients"]:
        found = [c["methods"].get(m) or "-" for m in methods]
        rtt = "-" if c["rtt_ms"] is None else f"{c['rtt_ms']:.2f} ({c.get('rtt_method') or '?'})"
        rows.append([c["name"], c["isp"], c["pop"] or "-", c["predicted_pop"] or "-", *found, rtt,
                     c["hops"] if c["hops"] is not None else "-", "yes" if c["agree"] else "NO"])
    parts = [table(["client", "isp", "pop", "predicted", *methods, "rtt ms (from)", "hops", "agree"], rows), ""]
    share = [[p["pop"] or "(none)", p.get("unicast") or "-", p["clients"], f"{100 * p['share']:.0f}%"]
             for p in data["pops"]]
    parts.append(table(["pop", "unicast", "clients", "share"], share))
    parts.append("")
    used = list(dict.fromkeys(c["rtt_method"] for c in data["clients"] if c.get("rtt_method")))
    if used:
        parts.append("rtt from: " + "; ".join(f"{m}: {RTT_MEANS[m]}" for m in used))
    for method, reason in data["unavailable"].items():
        parts.append(f"{method}: unavailable: {reason}")
    errors = [(c["name"], m, d["error"]) for c in data["clients"] for m, d in c["details"].items() if d.get("error")]
    for name, method, error in errors[:20]:
        parts.append(f"{name} {method}: {error}")
    timing = "  ".join(f"{k} {v:.2f}s" for k, v in data["timings_s"].items())
    verdict = "yes" if data["agree"] else "NO"
    parts.append(f"agree: {verdict} ({len(rows)} clients, methods: {', '.join(methods) or 'none'})  [{timing}]")
    return "\n".join(parts)


def _watch(lab: Any, clients: list[str] | None, rate: float, duration: float, out: Path | None,
           as_json: bool) -> None:
    from anycastlab.probes.watch import watch

    stream: TextIO = open(out, "w") if out is not None else sys.stdout  # noqa: SIM115 - closed below
    sent: Counter[str] = Counter()
    lost: Counter[str] = Counter()
    pops: dict[str, list[str]] = {}
    interrupted: BaseException | None = None
    records = watch(lab, rate, duration, clients)
    try:
        with interrupts.catching():  # SIGINT (even if it started ignored), SIGTERM, SIGHUP: stop, summarise
            for record in records:
                line = json.dumps(record.to_json()) + "\n"
                with interrupts.held():  # a record written is a record counted, even if a signal comes now
                    stream.write(line)
                    stream.flush()  # one record per line as it happens, for `tail -f` and a reader that stops us
                    sent[record.client] += 1
                    if record.pop is None:
                        lost[record.client] += 1
                    else:
                        seen = pops.setdefault(record.client, [])
                        if not seen or seen[-1] != record.pop:
                            seen.append(record.pop)
    except KeyboardInterrupt as exc:
        interrupted = exc
    finally:
        with interrupts.held(raise_pending=False):
            records.close()
            if out is not None:
                stream.close()
    summary: dict[str, Any] = {"records": sum(sent.values()), "lost": sum(lost.values()),
               "interrupted": interrupted is not None,
               "clients": {c: {"records": sent[c], "lost": lost[c], "pops": pops.get(c, [])} for c in sorted(sent)}}
    if as_json:
        click.echo(json.dumps(summary), err=out is None)
        if interrupted is not None:
            sys.exit(exit_status(interrupted))
        return
    lines = table(["client", "records", "lost", "pops (in order seen)"],
                  [[c, v["records"], v["lost"], " -> ".join(v["pops"]) or "-"] for c, v in summary["clients"].items()])
    note = f" ({describe(interrupted)})" if interrupted is not None else ""
    where = f", written to {out}" if out is not None else ""
    click.echo(f"{lines}\n{summary['records']} records, {summary['lost']} lost{note}{where}", err=out is None)
    if interrupted is not None:
        sys.exit(exit_status(interrupted))  # the shell's convention (130 Ctrl-C, 143 SIGTERM), after the summary
