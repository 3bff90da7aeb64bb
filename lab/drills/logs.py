"""Control-plane events from the routers' FRR logs, each stamped with the time it was read.

FRR's file log has one-second timestamps, so a follower thread polls every router's bgpd.log and
stamps new lines as they appear (to within the poll interval). During a drill the routers also log
BGP updates for the anycast prefix only (`debug bgp updates prefix`), switched off afterwards.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import LabError
from ..runtime.frr import log_message
from ..runtime.state import RunningLab
from ..runtime.vtysh import vtysh
from .model import MAX_DRILL_S

POLL_S = 0.02
MAX_EVENTS = 20_000
_KINDS: list[tuple[str, re.Pattern[str]]] = [
    ("session-down", re.compile(r"ADJCHANGE: neighbor \S+ .*Down")),
    ("session-up", re.compile(r"ADJCHANGE: neighbor \S+ .*Up")),
    ("withdraw-rcvd", re.compile(r"rcvd UPDATE about \S+ .*withdrawn")),
    ("withdraw-sent", re.compile(r"send UPDATE \S+ .*unreachable")),
    ("update-rcvd", re.compile(r"rcvd UPDATE w/ attr")),
    ("update-sent", re.compile(r"send UPDATE \d+\.\d+\.\d+\.\d+/\d+")),
    ("notification", re.compile(r"[Nn]otification|[Hh]old [Tt]imer")),
    ("bfd", re.compile(r"BFD|bfd.*(down|up)")),
    ("graceful-shutdown", re.compile(r"graceful.shutdown", re.I)),
]


@dataclass(frozen=True)
class LogEvent:
    t: float
    router: str
    kind: str
    text: str

    def to_json(self, t0: float) -> dict[str, Any]:
        return {**asdict(self), "t": round(self.t - t0, 3)}


def classify(line: str) -> str | None:
    if "duplicate ignored" in line:
        return None
    for kind, pattern in _KINDS:
        if pattern.search(line):
            return kind
    return None


class LogFollower:
    """Reads new lines of every router's bgpd.log until stopped (at most MAX_DRILL_S, MAX_EVENTS events)."""

    def __init__(self, lab: RunningLab) -> None:
        self.lab = lab
        self.events: list[LogEvent] = []
        self._stop = threading.Event()
        self._files = {r.name: lab.router_dir(r.name) / "bgpd.log" for r in lab.plan.routers}
        self._offsets = {name: _size(path) for name, path in self._files.items()}
        self._thread = threading.Thread(target=self._run, name="drill-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._poll()

    def _run(self) -> None:
        deadline = time.monotonic() + MAX_DRILL_S
        while not self._stop.wait(POLL_S) and time.monotonic() < deadline:
            self._poll()

    def _poll(self) -> None:
        now = time.time()
        for name, path in self._files.items():
            size = _size(path)
            if size < self._offsets[name]:
                self._offsets[name] = 0  # rewritten
            if size == self._offsets[name]:
                continue
            with path.open("rb") as f:
                f.seek(self._offsets[name])
                data = f.read(size - self._offsets[name])
            end = data.rfind(b"\n") + 1
            self._offsets[name] += end
            for raw in data[:end].decode(errors="replace").splitlines():
                kind = classify(raw)
                if kind is not None and len(self.events) < MAX_EVENTS:
                    self.events.append(LogEvent(now, name, kind, log_message(raw)))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def debug_updates(lab: RunningLab, on: bool) -> None:
    """Log BGP updates for the anycast prefix on every router (or stop). Best effort: a dead bgpd is skipped."""
    prefix = lab.plan.topology.anycast.network
    command = f"{'' if on else 'no '}debug bgp updates prefix {prefix}"

    def one(router: str) -> None:
        with contextlib.suppress(LabError):
            vtysh(lab.vty(router), "configure terminal", command, timeout=5)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, [r.name for r in lab.plan.routers]))
