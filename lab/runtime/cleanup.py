"""Removing a lab from what its ledger names, and checking that nothing of it is left.

This is both the last step of `down` and all of `clean` (after a crash or a SIGKILL). It signals only
processes the ledger names, each checked by start time (or, for an FRR pid file, by its command line
naming this lab's run directory), asks the lab's runtime to remove what it recorded (containers, checked
by their labels), and removes only the lab's run directory.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import paths, procs
from .backends import DEFAULT, runtime_class
from .ledger import Ledger


@dataclass
class Leftovers:
    processes: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    directory: bool = False

    @property
    def empty(self) -> bool:
        return not (self.processes or self.namespaces or self.containers or self.directory)


def runtime_name(ledger: Ledger) -> str:
    """The runtime the lab was booted on, from the ledger's first record (labs before runtimes: netns)."""
    first = next(iter(ledger.of_kind("lab")), None)
    return str(first.data.get("runtime", DEFAULT)) if first is not None else DEFAULT


def pidfile_pid(path: Path, lab_dir: str, holder: int | None) -> int | None:
    """The host pid of the daemon in an FRR pid file, if that process is still ours (its command line names
    our run dir). `holder` is the node's namespace holder: the pid in the file is as the daemon saw it."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    found = procs.host_pid(pid, holder) if holder is not None else pid
    if found is None:
        return None
    try:
        cmdline = Path(f"/proc/{found}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return None
    return found if lab_dir in cmdline else None


def recorded_processes(ledger: Ledger) -> list[tuple[str, int, float | None]]:
    """Every process the ledger names that is still alive, supervisor first, node shells last."""
    found: list[tuple[str, int, float | None]] = []
    entries = list(ledger.entries())
    holders = {e.name: e.data["pid"] for e in entries
               if e.kind == "node" and "pid" in e.data and procs.is_alive(e.data["pid"], e.data.get("start"))}
    for e in entries:
        if e.kind == "process" and "pid" in e.data and procs.is_alive(e.data["pid"], e.data.get("start")):
            found.append((e.name, e.data["pid"], e.data.get("start")))
        elif e.kind == "pidfile":
            node = e.name.split("/")[0]
            if node not in holders:
                continue  # its node is gone, and the daemon with it
            pid = pidfile_pid(Path(e.data["path"]), e.data["lab_dir"], holders[node])
            if pid is not None:
                found.append((e.name, pid, procs.start_time(pid)))
    for e in entries:
        if e.kind == "node" and "pid" in e.data and procs.is_alive(e.data["pid"], e.data.get("start")):
            found.append((f"node {e.name}", e.data["pid"], e.data.get("start")))
    found.sort(key=lambda item: item[0] != "supervisor")
    return found


def live_namespaces(ledger: Ledger) -> list[str]:
    """Recorded node namespaces that any process on the machine still holds (a read-only scan of /proc).

    A namespace is matched by inode number, then confirmed by the tag the lab wrote on its loopback: the
    kernel reuses a freed namespace's number at once, so another lab booting meanwhile would match too."""
    nodes = {e.data["netns"]: e for e in ledger.of_kind("node") if "netns" in e.data}
    ours: dict[int, bool] = {}  # inode -> whether its namespace is the lab's (asked once per namespace)
    for entry in Path("/proc").iterdir() if nodes else []:
        if not entry.name.isdigit():
            continue
        try:
            inode = os.stat(entry / "ns" / "net").st_ino
        except OSError:
            continue
        if inode not in nodes or ours.get(inode):
            continue
        tag = nodes[inode].data.get("tag")
        from . import netns  # pyroute2: only when a namespace must be confirmed

        ours[inode] = tag is None or netns.loopback_alias(int(entry.name)) in (tag, None)
    return sorted(nodes[inode].name for inode, held in ours.items() if held)


def unrecorded_in_namespaces(ledger: Ledger, lab_dir: Path) -> list[tuple[int, float | None]]:
    """Processes inside the lab's own namespaces (matched by inode, confirmed by the loopback tag) whose
    command line names the lab's run directory, though no pid file or ledger entry names them.

    An FRR daemon drops root early, and the kernel then forgets its parent-death signal: one SIGKILLed
    with its supervisor in the moment before it wrote its pid file survives, and nothing records it."""
    nodes = {e.data["netns"]: e for e in ledger.of_kind("node") if "netns" in e.data}
    if not nodes:
        return []
    from . import netns  # pyroute2: only when there are namespaces to look in

    ours: dict[int, bool] = {}
    found: list[tuple[int, float | None]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            inode = os.stat(entry / "ns" / "net").st_ino
            if inode not in nodes:
                continue
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(lab_dir) not in cmdline:
            continue
        if inode not in ours:
            ours[inode] = netns.loopback_alias(int(entry.name)) == nodes[inode].data.get("tag")
        if ours[inode]:
            found.append((int(entry.name), procs.start_time(int(entry.name))))
    return found


def remove(lab_dir: Path) -> list[str]:
    """Kill what the ledger names, then delete the run directory. Returns what was killed."""
    ledger = Ledger(paths.ledger_file(lab_dir))
    found = [p for p in recorded_processes(ledger) if p[1] != os.getpid()]  # a foreground lab's own process
    supervisor = [(pid, start) for what, pid, start in found if what == "supervisor"]
    procs.terminate(supervisor, grace=0.0)  # first, so it cannot start anything more
    stragglers = unrecorded_in_namespaces(ledger, lab_dir)  # before the node shells go, taking the tags
    rest = [(pid, start) for what, pid, start in found if what != "supervisor"]
    procs.terminate(rest + [p for p in stragglers if p[0] not in {pid for pid, _ in rest}], grace=1.0)
    removed = runtime_class(runtime_name(ledger)).remove_recorded(ledger)
    if lab_dir.exists():
        shutil.rmtree(lab_dir)
    return [what for what, _, _ in found] + [f"unrecorded pid {pid}" for pid, _ in stragglers] + removed


def left_by(ledger: Ledger, lab_dir: Path | None = None) -> Leftovers:
    """What of a lab still exists, by its ledger (a copy taken before `down` removed the run directory
    will do): recorded processes alive, namespaces held, containers present, the run directory."""
    return Leftovers(
        processes=[f"{what} (pid {pid})" for what, pid, _ in recorded_processes(ledger)],
        namespaces=live_namespaces(ledger),
        containers=runtime_class(runtime_name(ledger)).leftovers(ledger),
        directory=lab_dir is not None and lab_dir.exists(),
    )


def leftovers(lab_dir: Path) -> Leftovers:
    return left_by(Ledger(paths.ledger_file(lab_dir)), lab_dir)
