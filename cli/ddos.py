"""`anycastlab ddos`: a bounded attack from bots in the eyeball ISPs; per-PoP shares, legitimate clients'
success and latency, and a policy's reaction (lab/ddos)."""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import click
from anycastlab import interrupts
from anycastlab.runtime.state import attach

from .output import emit_json, lab_option, reports_errors, table


@click.command()
@lab_option
@click.option("--bots", type=int, default=None, help="Bot hosts (default: one per ISP that has a spare client).")
@click.option("--pps", type=int, default=1000, show_default=True, help="Total packets per second, all bots.")
@click.option("--duration", type=float, default=10.0, show_default=True, metavar="S", help="Seconds (at most 60).")
@click.option("--spread", default="even", show_default=True, metavar="even|concentrated:ISP,..",
              help="Bots over every ISP, or only in these.")
@click.option("--target", default="anycast", show_default=True, metavar="anycast|pop:P",
              help="The anycast address, or one PoP's unicast address.")
@click.option("--policy", type=click.Choice(["absorb", "withdraw", "prepend"]), default="absorb", show_default=True)
@click.option("--threshold", type=float, default=None, metavar="PPS",
              help="A PoP receiving more reacts (withdraw, prepend).")
@click.option("--side-by-side", is_flag=True,
              help="Then the same attack at the unicast address of the PoP that took the most of it.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Write report.json, report.md and timeline.png here.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON on stdout.")
@reports_errors
def ddos(lab_name: str | None, bots: int | None, pps: int, duration: float, spread: str, target: str, policy: str,
         threshold: float | None, side_by_side: bool, report_dir: Path | None, as_json: bool) -> None:
    """Flood UDP from bots inside the lab's eyeball ISPs (hping3, bounded), count what each PoP receives."""
    from anycastlab.ddos import report
    from anycastlab.ddos.attack import Attack, bot_hosts, parse_spread, parse_target
    from anycastlab.ddos.run import run_attack

    lab = attach(lab_name)
    spread_isps = parse_spread(spread)
    attack = Attack(bots=bots or 1, pps=pps, duration_s=duration, spread=spread_isps, target=parse_target(target),
                    policy=policy, threshold_pps=threshold)  # type: ignore[arg-type]  # click.Choice checked it
    if bots is None:
        attack = replace(attack, bots=max(1, len(bot_hosts(lab.plan, attack))))

    def say(line: str) -> None:
        if not as_json:
            click.echo(line, err=True)

    runs = []
    with tempfile.TemporaryDirectory(prefix="ddos-", dir=lab.directory) as logs, interrupts.catching():
        result = run_attack(lab, attack, Path(logs) / "anycast", say)
        runs.append(result.to_json())
        if side_by_side and result.interrupted is None:
            top = max(runs[0]["pops"], key=lambda p: p["share"])["pop"]
            say(f"side by side: the same attack at {top}'s unicast address")
            result = run_attack(lab, replace(attack, target=top, policy="absorb", threshold_pps=None),
                                Path(logs) / "unicast", say)
            runs.append(result.to_json())
    written = report.write(report_dir, runs) if report_dir is not None else []
    if as_json:
        emit_json(runs[0] if len(runs) == 1 else {"runs": runs, "side_by_side": report.side_by_side(runs)})
    else:
        for data in runs:
            click.echo(_summary(data))
        if written:
            click.echo(f"report: {', '.join(str(p) for p in written)}")
    if result.interrupted is not None:
        click.echo(f"{interrupts.describe(result.interrupted)}: bots stopped, policy undone, counters removed"
                   + (f"; partial report in {report_dir}" if report_dir else ""), err=True)
        sys.exit(interrupts.exit_status(result.interrupted))
    if any(r["problems"] for r in runs) or any(r["restored"] is False for r in runs):
        sys.exit(1)


def _summary(data: dict[str, object]) -> str:
    rows = []
    for p in data["pops"]:  # type: ignore[attr-defined]
        legit = p["legit"] or {}
        success = legit.get("success")
        rows.append([p["pop"], p["received"], f"{p['share']:.1%}", f"{p['bot_share']:.1%}", p["peak_pps"],
                     legit.get("requests", 0), "-" if success is None else f"{success:.1%}", legit.get("p50_ms", "-"),
                     legit.get("p99_ms", "-")])
    head = (f"sent {data['sent']} packets to {data['address']}, counted {data['received']} at the PoPs "
            f"(delivered {data['delivered']})")
    actions = "".join(f"\n  t={a['t']}s {a['pop']} {a['action']} ({a['pps']} pps)" for a in data["actions"])  # type: ignore[attr-defined]
    return (head + "\n" + table(["pop", "received", "share", "bots' share", "peak pps", "legit req", "success",
                                 "p50 ms", "p99 ms"], rows)
            + (f"\npolicy actions:{actions}" if actions else "") + f"\nrestored afterwards: {data['restored']}")
