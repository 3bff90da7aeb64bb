"""`anycastlab drill`: run scripted PoP-failure drills and gate on their expectations.

    anycastlab drill run topologies/drills/withdraw.yaml --report out/withdraw --junit out/withdraw.xml
    anycastlab drill run-all                  # every shipped drill, one line each (what `make drills` runs)

With no lab running (and no --lab), a drill boots the topology it names, runs, and tears it down.
Exit status: 0 passed, 1 an expectation failed or the drill could not run, 130 interrupted (the faults
are restored and a partial report, marked incomplete, is written).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from types import FrameType

import click
from anycastlab.drills import Drill, DrillResult, load_drill, run_drill
from anycastlab.drills.report import summary_line
from anycastlab.drills.topology import drill_topology
from anycastlab.lifecycle import Lab
from anycastlab.runtime import state

from .output import reports_errors


def shipped_drills() -> list[Path]:
    folder = resources.files("anycastlab.topologies") / "drills"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


def _sigterm_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _lab_for(drill: Drill, lab_name: str | None, booted: dict[str, Lab]) -> Iterator[Lab]:
    """The named lab, the only running one, or one booted for the drill's topology (kept in `booted`)."""
    if not drill.topology_overrides and (lab_name is not None or (
            not booted and drill.topology == "default" and len(state.running_labs()) == 1)):
        yield Lab.attach(lab_name)
        return
    path, name = drill_topology(drill)
    if name not in booted:
        click.echo(f"booting {name} for the drills ...", err=True)
        booted[name] = Lab.up(path, name=name)
    yield booted[name]


def _run_one(file: Path, lab_name: str | None, report: Path | None, junit: Path | None, booted: dict[str, Lab],
             quiet: bool) -> DrillResult:
    drill = load_drill(file)
    with _lab_for(drill, lab_name, booted) as lab:
        def say(message: str) -> None:
            if not quiet:
                click.echo(f"  {drill.name}: {message}", err=True)

        return run_drill(lab, drill, report, junit, progress=say)


@click.group()
def drill() -> None:
    """Scripted PoP-failure drills: inject, measure what clients see, assert, report."""


@drill.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--lab", "lab_name", default=None, metavar="NAME", help="Run on this lab (default: the only one "
              "running, else boot the drill's topology for the run).")
@click.option("--report", "report", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.json, report.md, timeline.png and junit.xml here.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), default=None, help="JUnit XML file.")
@reports_errors
def run(file: Path, lab_name: str | None, report: Path | None, junit: Path | None) -> None:
    """Run one drill FILE; exit non-zero when an expectation fails."""
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    booted: dict[str, Lab] = {}
    try:
        result = _run_one(file, lab_name, report, junit, booted, quiet=False)
    except KeyboardInterrupt:
        click.echo("interrupted: every injected fault was restored"
                   + (f"; partial report in {report}" if report else ""), err=True)
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)
        for lab in booted.values():
            lab.down()
    click.echo(summary_line(result))
    for e in result.expectations:
        if e.passed is False:
            click.echo(f"  FAILED {e.name}: {e.message}")
    if report:
        click.echo(f"  report: {report / 'report.md'}")
    sys.exit(0 if result.passed else 1)


@drill.command("run-all")
@click.option("--lab", "lab_name", default=None, metavar="NAME", help="Run every drill on this lab.")
@click.option("--report", "report", type=click.Path(file_okay=False, path_type=Path), default=Path("drill-reports"),
              show_default=True, help="One sub-directory per drill.")
@click.option("--verbose", "-v", is_flag=True, help="Show each drill's steps as they run.")
@reports_errors
def run_all(lab_name: str | None, report: Path, verbose: bool) -> None:
    """Run every shipped drill, one line each: pass or fail, p95 convergence, lost probes, HTTP errors."""
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    booted: dict[str, Lab] = {}
    failed = 0
    try:
        for file in shipped_drills():
            name = file.stem
            try:
                result = _run_one(file, lab_name, report / name, report / name / "junit.xml", booted, not verbose)
            except KeyboardInterrupt:
                click.echo(f"interrupted during {name}: faults restored; partial report in {report / name}", err=True)
                sys.exit(130)
            except Exception as exc:  # one drill's failure to run does not stop the others
                failed += 1
                click.echo(f"{'ERROR':<10} {name:<24} {exc}")
                continue
            failed += not result.passed
            click.echo(summary_line(result))
    finally:
        signal.signal(signal.SIGTERM, previous)
        for lab in booted.values():
            lab.down()
    click.echo(f"{failed} of {len(shipped_drills())} drills failed; reports in {report}")
    sys.exit(1 if failed else 0)
