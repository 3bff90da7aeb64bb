"""`anycastlab steering`: the same PoP failure under anycast and under DNS-based steering, measured side by side.

    anycastlab steering                                   # crash at the busiest PoP, the topology's TTL
    anycastlab steering --fault proxy-crash --pop fra --ttl 5,30 --cache chromium --report out/steering
    anycastlab steering --move dtag-c1:comcast --ttl 10      # a user move instead of a fault

With no lab with steering running (and no --lab) it boots `--topology` (default: default) with
`steering: {dns: {}}` added, runs, and tears it down. The total time budget is printed before anything starts.
Exit status: 0 when every expectation holds, 1 when one fails or the run cannot go on, 130/143/129 when
interrupted (the fault is undone and a partial report, marked incomplete, is written).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from anycastlab import interrupts
from anycastlab.errors import LabError
from anycastlab.lifecycle import Lab
from anycastlab.runtime import state
from anycastlab.steering.experiment import FAULTS, Result, Settings, budget_s, run_experiment
from anycastlab.steering.plan import steering_plan
from anycastlab.steering.report import expectations, markdown, write_reports
from anycastlab.steering.stub import PRESETS
from anycastlab.steering.topology import with_steering

from .output import emit_json, lab_option, reports_errors, runtime_option


def _ttls(value: str | None) -> list[int] | None:
    if not value:
        return None
    try:
        ttls = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of whole seconds (e.g. 5,30,120)",
                                 param_hint="--ttl") from None
    if not ttls or any(not 1 <= t <= 86400 for t in ttls):
        raise click.BadParameter("TTLs are whole seconds from 1 to 86400", param_hint="--ttl")
    return ttls


def _move(value: str | None) -> tuple[str, str] | None:
    if value is None:
        return None
    client, sep, isp = value.partition(":")
    if not sep or not client or not isp:
        raise click.BadParameter(f"{value!r} is not CLIENT:ISP (e.g. dtag-c1:comcast)", param_hint="--move")
    return client, isp


@click.command()
@lab_option
@click.option("--fault", type=click.Choice(FAULTS), default=None,
              help="The fault put in at the PoP, the same in every arm (default: crash).")
@click.option("--move", "move_spec", default=None, metavar="CLIENT:ISP",
              help="Instead of a fault: move CLIENT to eyeball ISP in every arm (moved back at the arm's end).")
@click.option("--pop", default=None, help="The failing PoP (default: the one most ISPs' resolvers are given).")
@click.option("--ttl", "ttl_list", default=None, metavar="T1,T2",
              help="TTLs in seconds for the DNS arm, one run each (default: the topology's steering.dns.ttl).")
@click.option("--cache", type=click.Choice(sorted(PRESETS)), default="ttl", show_default=True,
              help="Client stub cache: `ttl` keeps an answer for its TTL, `chromium` at least 60 s.")
@click.option("--fault-duration", type=float, default=None, metavar="S",
              help="Seconds the fault stays (default: the DNS model's bound for the longest TTL + 5 s).")
@click.option("--topology", default="default", show_default=True,
              help="What to boot, with steering on, when no lab runs.")
@runtime_option("the lab booted when none runs")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.json, report.md, junit.xml, http.jsonl and timeline-ttl<T>.png here.")
@click.option("--json", "as_json", is_flag=True, help="The report (as report.json) on stdout.")
@reports_errors
def steering(lab_name: str | None, fault: str | None, move_spec: str | None, pop: str | None, ttl_list: str | None,
             cache: str, fault_duration: float | None, topology: str, runtime: str | None, report_dir: Path | None,
             as_json: bool) -> None:
    """Anycast against DNS-based steering: the same fault (or user move), both ways, per client."""
    if fault_duration is not None and not 1.0 <= fault_duration <= 600.0:
        raise click.BadParameter("must be between 1 and 600 seconds", param_hint="--fault-duration")
    move = _move(move_spec)
    if move is not None and (fault is not None or pop is not None):
        raise click.UsageError("--move is the event instead of a fault: give it without --fault and --pop")
    settings = Settings(fault=fault or "crash", pop=pop, ttls=_ttls(ttl_list), cache=PRESETS[cache],
                        fault_s=fault_duration, move=move)
    name = lab_name or _only_lab_with_steering()
    if name is not None:
        lab = Lab.attach(name)
        if steering_plan(lab.running.plan) is None:
            raise LabError(f"lab {name} has no steering.dns: add `steering: {{dns: {{}}}}` to its topology, or run "
                           "with no lab running (a lab with steering is booted)")
        _run(lab, settings, report_dir, as_json)
        return
    with with_steering(topology) as (path, booted_name):
        click.echo(f"booting {booted_name} ({topology} with DNS steering on) ...", err=True)
        lab = Lab.up(path, name=booted_name, runtime=runtime)
        try:
            _run(lab, settings, report_dir, as_json)
        finally:
            click.echo(f"tearing down {booted_name}", err=True)
            lab.down()


def _only_lab_with_steering() -> str | None:
    """The one running lab whose topology has steering.dns on (others' labs without it are left alone)."""
    found = []
    for name in state.running_labs():
        try:
            if steering_plan(state.attach(name).plan) is not None:
                found.append(name)
        except LabError:
            continue  # starting or crashed
    return found[0] if len(found) == 1 else None


def _run(lab: Lab, settings: Settings, report_dir: Path | None, as_json: bool) -> None:
    sp = steering_plan(lab.running.plan)
    assert sp is not None
    click.echo(f"time budget: at most {budget_s(settings, sp):.0f} s (1 anycast arm + "
               f"{len(settings.ttls or [sp.config.ttl])} DNS arm(s))", err=True)
    pops = [p.name for p in lab.running.plan.pops]
    result: Result | None = None
    interrupted: BaseException | None = None
    try:
        with interrupts.catching():
            result = run_experiment(lab.running, settings, progress=lambda m: click.echo(m, err=True))
    except KeyboardInterrupt as exc:
        interrupted = exc
        result = getattr(exc, "result", None)
    except LabError as exc:
        result = getattr(exc, "result", None)
        if result is not None and report_dir is not None:
            write_reports(result, report_dir, pops)
        raise
    if result is None:
        sys.exit(interrupts.exit_status(interrupted) if interrupted else 1)
    if report_dir is not None:
        written = write_reports(result, report_dir, pops)
        click.echo(f"reports: {', '.join(str(p) for p in written)}", err=True)
    if as_json:
        data = result.to_json()
        data["expectations"] = [{"name": e.name, "passed": e.passed, "message": e.message}
                                for e in expectations(result)]
        emit_json(data)
    else:
        click.echo(markdown(result))
    if interrupted is not None:
        sys.exit(interrupts.exit_status(interrupted))
    if any(e.passed is not True for e in expectations(result)):
        sys.exit(1)
