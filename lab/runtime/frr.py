"""FRR daemons of one router, following one contract: write -> dry-run check -> start -> started -> stop.

Every path a daemon uses (pid file, zserv socket, vty sockets, logs, bfdd's control socket) is under
the router's own directory, so routers never share state and nothing lands in /var/run/frr.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..render.frr import DAEMON_ORDER, RouterConfig
from . import procs

FRR_DIR = Path("/usr/lib/frr")  # on the host (netns runtime) and in images/router alike
FRR_USER = "frr"
START_TIMEOUT = 15.0
# zebra first everywhere (the others register with it), then every routing daemon at once.
WAVES = (DAEMON_ORDER[:1], DAEMON_ORDER[1:])
# `2026/12/01 13:00:00 BGP: [M7Q4P-2CQTJ][EC 33554454] message`: date, time, daemon, then any bracketed tags.
_LOG_PREFIX = re.compile(r"^\S+ \S+ \w+: (?:\[[^]]*\] ?)*")
_CONFIG_ERROR = re.compile(r"config line \d+|Unknown command|Command incomplete|Ambiguous command")


def log_message(line: str) -> str:
    """An FRR log line without its timestamp, daemon name and message tags: what a person reads."""
    return _LOG_PREFIX.sub("", line.strip()).strip()


@dataclass(frozen=True)
class RouterDaemons:
    config: RouterConfig
    directory: Path

    @property
    def name(self) -> str:
        return self.config.router

    def conf(self, daemon: str) -> Path:
        return self.directory / f"{daemon}.conf"

    def pidfile(self, daemon: str) -> Path:
        return self.directory / f"{daemon}.pid"

    def log(self, daemon: str) -> Path:
        return self.directory / f"{daemon}.log"

    @property
    def zserv(self) -> Path:
        return self.directory / "zserv.api"

    def write(self, owner: tuple[int, int]) -> None:
        """frr.conf for people; one file per daemon, holding only that daemon's part, for the daemons.
        Everything belongs to FRR's user as the nodes know it (`owner`: uid, gid), since FRR drops root."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "frr.conf").write_text(self.config.unified)
        (self.directory / "vtysh.conf").write_text(self.config.vtysh_conf)
        for daemon in self.config.daemons:
            self.conf(daemon).write_text(self.config.for_daemon(daemon))
        for path in [self.directory, *self.directory.iterdir()]:
            os.chown(path, *owner)

    def _paths(self, daemon: str) -> list[str]:
        args = ["-i", str(self.pidfile(daemon)), "--vty_socket", str(self.directory), "-P", "0",
                "-f", str(self.conf(daemon))]
        args += ["-z", str(self.zserv)]  # bfdd too: BGP's BFD registrations reach it through zebra
        if daemon == "bfdd":
            args += ["--bfdctl", str(self.directory / "bfdd.sock")]
        return args

    def dry_run_argv(self, daemon: str) -> list[str]:
        return [str(FRR_DIR / daemon), "-C", *self._paths(daemon)]

    def start_argv(self, daemon: str) -> list[str]:
        return [str(FRR_DIR / daemon), *self._paths(daemon), "--log", f"file:{self.log(daemon)}"]

    def started(self, daemon: str) -> bool:
        if daemon == "zebra":
            return self.zserv.exists()
        return (self.directory / f"{daemon}.vty").exists()

    def clear_stale(self, daemon: str) -> None:
        """A SIGKILLed daemon leaves its sockets behind, and `started()` looks for fresh ones."""
        for path in [self.directory / f"{daemon}.vty"] + ([self.zserv] if daemon == "zebra" else []):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def start(routers: list[RouterDaemons], prefix: Callable[[str], list[str]], record: Callable[[str, int], None],
          wanted: Callable[[RouterDaemons, str], bool] | None = None, detach: bool = False,
          timeout: float = START_TIMEOUT) -> dict[str, int]:
    """Start the routers' daemons in FRR's order, wave by wave (see WAVES), each wave in parallel, and wait
    until each is up. The one way the lab starts FRR: at bring-up, and when a drill restarts a daemon.

    `prefix(router)` is the node's spawn prefix; `record(router/daemon, pid)` ledgers each process the
    moment it exists. A daemon dies with the caller (the supervisor) unless `detach` (a drill's restart,
    which must outlive the drill: its own session, so a Ctrl-C of the drill does not reach it). Returns
    `router/daemon` -> pid; raises LabError, naming the daemons, if one exits or is not up in `timeout`.
    """
    pids: dict[str, int] = {}
    for wave in WAVES:
        started: list[tuple[RouterDaemons, str, subprocess.Popen[bytes]]] = []
        for rd in routers:
            for daemon in wave:
                if daemon not in rd.config.daemons or (wanted is not None and not wanted(rd, daemon)):
                    continue
                rd.clear_stale(daemon)
                argv = ["setsid", *rd.start_argv(daemon)] if detach else rd.start_argv(daemon)
                proc = procs.spawn(argv, prefix=prefix(rd.name), log=rd.directory / f"{daemon}.out",
                                   die_with_parent=not detach)
                record(f"{rd.name}/{daemon}", proc.pid)
                pids[f"{rd.name}/{daemon}"] = proc.pid
                started.append((rd, daemon, proc))
        if not procs.wait_for(lambda s=started: all(r.started(d) or p.poll() is not None for r, d, p in s), timeout):
            late = [f"{r.name}/{d} (see {r.log(d)})" for r, d, p in started if not r.started(d)]
            raise LabError(f"FRR daemons did not start within {timeout:.0f} s: {', '.join(late)}")
        dead = [f"{r.name}/{d} (see {r.log(d)})" for r, d, p in started if p.poll() is not None]
        if dead:
            raise LabError("FRR daemons exited at start: " + ", ".join(dead))
    return pids


class DryRun:
    """FRR's own parser (`-C`) on every daemon's config, started router by router so the checks overlap
    node creation (as soon as a router's node can run its FRR); `check` waits and raises if any config is
    rejected. `prefix(router)` runs the FRR that router will run (nothing for the host's, the node's exec
    for an image's)."""

    def __init__(self, routers: list[RouterDaemons], prefix: Callable[[str], list[str]]) -> None:
        self.routers = {r.name: r for r in routers}
        self.prefix = prefix
        self.jobs: list[tuple[str, str, subprocess.Popen[str]]] = []
        self.problems: list[str] = []
        self.lock = threading.Lock()

    def start(self, router: str) -> None:
        """Start the checks of one router's daemons (callable from any thread; not a router: nothing)."""
        rd = self.routers.get(router)
        if rd is None:
            return
        for daemon in rd.config.daemons:
            try:
                proc = subprocess.Popen([*self.prefix(router), *rd.dry_run_argv(daemon)], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
            except OSError as exc:
                with self.lock:
                    self.problems.append(f"FRR's dry run could not run: {exc}")
                return
            with self.lock:
                self.jobs.append((router, daemon, proc))

    def start_all(self) -> DryRun:
        for router in self.routers:
            self.start(router)
        return self

    def check(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        for router, daemon, proc in self.jobs:
            try:
                out, _ = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise LabError(f"FRR's dry run did not finish within {timeout:.0f} s") from None
            bad = [log_message(line) for line in out.splitlines() if _CONFIG_ERROR.search(line)]
            if proc.returncode != 0 or bad:
                detail = "; ".join(bad) or out.strip() or f"exit {proc.returncode}"
                self.problems.append(f"{router} {daemon}: {detail}")
        if self.problems:
            raise LabError("FRR rejected the rendered configuration:\n  " + "\n  ".join(self.problems))
