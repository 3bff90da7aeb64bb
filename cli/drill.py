"""`anycastlab drill`: run scripted PoP-failure drills and gate on their expectations.

    anycastlab drill run topologies/drills/withdraw.yaml --report out/withdraw --junit out/withdraw.xml
    anycastlab drill run-all                  # every shipped drill, one line each (what `make drills` runs)

With no lab running (and no --lab), a drill boots the topology it names, runs, and tears it down.
Exit status: 0 passed, 1 an expectation failed or the drill could not run, 130 interrupted (143 on SIGTERM,
129 on SIGHUP, handled even when started with SIGINT ignored: the faults are restored and a partial
report, marked incomplete, is written).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import click
from anycastlab import interrupts
from anycastlab.drills import Drill, DrillResult, load_drill, run_drill
from anycastlab.drills.report import summary_line
from anycastlab.drills.runner import RestoreFailed
from anycastlab.drills.topology import drill_topology, runs_topology_of
from anycastlab.lifecycle import Lab
from anycastlab.runtime import state

from .output import emit_json, reports_errors, runtime_option


def shipped_drills() -> list[Path]:
    folder = resources.files("anycastlab.topologies") / "drills"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml"))


RUNTIME = runtime_option("the labs booted for drills")


@dataclass(frozen=True)
class Target:
    """The lab the drills run on, decided once before any is booted: the named one, else the only one running
    (for drills on the default topology)."""

    name: str | None
    named: bool
    prefix: str  # of the names of labs booted for drills
    runtime: str | None = None  # of labs booted for drills (None: the topology's, else netns)

    @classmethod
    def of(cls, lab_name: str | None, prefix: str, runtime: str | None = None) -> Target:
        if lab_name:
            return cls(lab_name, True, prefix, runtime)
        running = state.running_labs()
        return cls(running[0] if len(running) == 1 else None, False, prefix, runtime)

    def fits(self, drill: Drill) -> bool:
        """The named lab always (unless the drill changes the topology); the only running lab only when it
        runs the drill's topology, so a drill never attaches to a lab of another one."""
        if self.name is None or drill.topology_overrides:
            return False
        return self.named or runs_topology_of(self.name, drill)


@contextmanager
def _lab_for(drill: Drill, target: Target, booted: dict[str, Lab]) -> Iterator[Lab]:
    """The target lab when it fits the drill, else one booted for its topology (kept for the next drills)."""
    if target.fits(drill):
        if not target.named:
            click.echo(f"running on lab {target.name} (it runs the drill's topology)", err=True)
        yield Lab.attach(target.name)
        return
    with drill_topology(drill, target.prefix) as (path, name):
        if name not in booted:
            click.echo(f"booting {name} for the drills ...", err=True)
            booted[name] = Lab.up(path, name=name, runtime=target.runtime)
    yield booted[name]


def _run_one(file: Path, target: Target, report: Path | None, junit: Path | None, booted: dict[str, Lab],
             quiet: bool) -> DrillResult:
    drill = load_drill(file)
    with _lab_for(drill, target, booted) as lab:
        def say(message: str) -> None:
            if not quiet:
                click.echo(f"  {drill.name}: {message}", err=True)

        return run_drill(lab, drill, report, junit, progress=say)


@contextmanager
def _booting() -> Iterator[dict[str, Lab]]:
    """Labs booted for the drills, taken down at the end. SIGINT, SIGTERM and SIGHUP unwind like Ctrl-C
    (faults restored, partial report written), also when the verb started with SIGINT ignored."""
    booted: dict[str, Lab] = {}
    try:
        with interrupts.catching():
            yield booted
    finally:
        with interrupts.held(raise_pending=False):
            for lab in booted.values():
                lab.down()


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
@click.option("--prefix", default="drills", show_default=True, metavar="PREFIX",
              help="Labs booted for drills are named PREFIX-TOPOLOGY[-HASH].")
@RUNTIME
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON (as report.json), not the steps.")
@reports_errors
def run(file: Path, lab_name: str | None, report: Path | None, junit: Path | None, prefix: str,
        runtime: str | None, as_json: bool) -> None:
    """Run one drill FILE; exit non-zero when an expectation fails."""
    with _booting() as booted:
        try:
            result = _run_one(file, Target.of(lab_name, prefix, runtime), report, junit, booted, quiet=as_json)
        except KeyboardInterrupt as exc:
            click.echo(f"{interrupts.describe(exc)}: every injected fault was restored"
                       + (f"; partial report in {report}" if report else ""), err=True)
            sys.exit(interrupts.exit_status(exc))
    if as_json:
        emit_json(result.to_json())
        sys.exit(0 if result.passed else 1)
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
@click.option("--prefix", default="drills", show_default=True, metavar="PREFIX",
              help="Labs booted for drills are named PREFIX-TOPOLOGY[-HASH].")
@RUNTIME
@reports_errors
def run_all(lab_name: str | None, report: Path, verbose: bool, prefix: str, runtime: str | None) -> None:
    """Run every shipped drill, one line each: pass or fail, p95 convergence, lost probes, HTTP errors."""
    files = shipped_drills()
    target = Target.of(lab_name, prefix, runtime)
    failed = 0
    with _booting() as booted:
        for file in files:
            name = file.stem
            try:
                result = _run_one(file, target, report / name, report / name / "junit.xml", booted, not verbose)
            except KeyboardInterrupt as exc:
                click.echo(f"{interrupts.describe(exc)} during {name}: faults restored; partial report in "
                           f"{report / name}", err=True)
                sys.exit(interrupts.exit_status(exc))
            except RestoreFailed as exc:  # the lab may still carry the fault: no drill after this one
                click.echo(f"{'ERROR':<10} {name:<24} {exc}")
                sys.exit(1)
            except Exception as exc:  # one drill's failure to run does not stop the others
                failed += 1
                click.echo(f"{'ERROR':<10} {name:<24} {exc}")
                continue
            failed += not result.passed
            click.echo(summary_line(result))
    click.echo(f"{failed} of {len(files)} drills failed; reports in {report}")
    sys.exit(1 if failed else 0)
