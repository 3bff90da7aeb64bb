"""A running drill, observable from outside: JSON lines in the lab's run directory (`drill.jsonl`).

The drill runner holds everything it measures in memory until the end; this stream lets another process
(`anycastlab web`) follow a drill as it happens, without asking the lab anything more. One line per event:

- `{"kind": "start", "t": unix, "drill": name, "pid": pid, "pid_start": ticks, "clients": [...], ...}`:
  the file is truncated first, so it holds only the latest drill;
- `{"kind": "step", "t": unix, "step": "fail"|"wait"|"restore"|"expect", "label": ..., "ok": bool}`, a fault
  step with `"fault": {"mode": ..., "pop": ..., "link": ...}` (it is written once the fault is in);
- `{"kind": "probes", "records": [[t, client, seq, pop|null, rtt_ms|null], ...]}`: the drill's own DNS
  probes, batched (written at most every FLUSH_S, so a 20 Hz drill of 14 clients writes ~10 lines a second);
- `{"kind": "end", "t": unix, "passed": bool, "complete": bool, "error": str|null, "convergence_s": {...}}`.

Writing never fails a drill: an unwritable run directory only turns the stream off. A reader tells a drill
that died without its `end` line by its pid and start time (runtime/procs.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime import paths, procs
from .analysis import Probe

FLUSH_S = 0.1


class LiveLog:
    """The writer, used by the drill runner: thread-safe (the probe thread and the main thread both write)."""

    def __init__(self, directory: Path) -> None:
        self.path = paths.drill_live_file(directory)
        self._lock = threading.Lock()
        self._pending: list[list[Any]] = []
        self._flushed = 0.0
        self._on = True

    def _write(self, lines: list[dict[str, Any]], truncate: bool = False) -> None:
        if not self._on:
            return
        data = "".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines).encode()
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
        try:
            fd = os.open(self.path, flags, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
        except OSError:
            self._on = False  # observers see nothing more; the drill itself goes on

    def start(self, drill: str, description: str, clients: list[str], pops: list[str], rate_hz: float) -> None:
        pid = os.getpid()
        with self._lock:
            self._write([{"kind": "start", "t": round(time.time(), 4), "drill": drill, "description": description,
                          "pid": pid, "pid_start": procs.start_time(pid), "clients": clients, "pops": pops,
                          "rate_hz": rate_hz}], truncate=True)

    def step(self, step: str, label: str, ok: bool = True, t: float | None = None,
             fault: dict[str, Any] | None = None) -> None:
        """A step done; `t` when it began (a fault's injection time), else now; a fault step says which."""
        with self._lock:
            self._flush_locked()
            line: dict[str, Any] = {"kind": "step", "t": round(time.time() if t is None else t, 4), "step": step,
                                    "label": label, "ok": ok}
            if fault is not None:
                line["fault"] = fault
            self._write([line])

    def probe(self, record: Probe) -> None:
        with self._lock:
            self._pending.append([round(record.t, 4), record.client, record.seq, record.pop,
                                  None if record.rtt_ms is None else round(record.rtt_ms, 3)])
            if time.monotonic() - self._flushed >= FLUSH_S:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        self._flushed = time.monotonic()
        if self._pending:
            records, self._pending = self._pending, []
            self._write([{"kind": "probes", "records": records}])

    def end(self, passed: bool, complete: bool, error: str | None, convergence: dict[str, Any]) -> None:
        with self._lock:
            self._flush_locked()
            self._write([{"kind": "end", "t": round(time.time(), 4), "passed": passed, "complete": complete,
                          "error": error, "convergence_s": convergence}])


@dataclass
class LiveDrill:
    """What a reader has gathered of the latest drill."""

    start: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    end: dict[str, Any] | None = None

    @property
    def running(self) -> bool:
        """No `end` line yet and the drill's process still alive (a SIGKILLed drill writes no end)."""
        if self.end is not None:
            return False
        pid = self.start.get("pid")
        return isinstance(pid, int) and procs.is_alive(pid, self.start.get("pid_start"))


class LiveReader:
    """Tails the stream by offset, cheaply: a stat when nothing changed. A truncated or replaced file (the
    next drill) starts the reader over."""

    def __init__(self, directory: Path) -> None:
        self.path = paths.drill_live_file(directory)
        self.offset = 0
        self.inode: int | None = None
        self.drill: LiveDrill | None = None

    def poll(self) -> tuple[bool, list[list[Any]]]:
        """(whether a new drill began since the last poll, the probe records read now)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return False, []
        restarted = st.st_ino != self.inode or st.st_size < self.offset
        if restarted:
            self.offset, self.inode, self.drill = 0, st.st_ino, None
        if st.st_size == self.offset:
            return False, []
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(st.st_size - self.offset)
        end = data.rfind(b"\n") + 1
        self.offset += end
        records: list[list[Any]] = []
        began = False
        for line in _lines(data[:end]):
            kind = line.get("kind")
            if kind == "start":
                self.drill, records, began = LiveDrill(line), [], True
            elif self.drill is None:
                continue  # the tail of a drill whose start this reader never saw
            elif kind == "step":
                self.drill.steps.append(line)
            elif kind == "probes" and isinstance(line.get("records"), list):
                records += [r for r in line["records"] if isinstance(r, list) and len(r) == 5]
            elif kind == "end":
                self.drill.end = line
        return began or (restarted and self.drill is not None), records


def _lines(data: bytes) -> Iterator[dict[str, Any]]:
    for raw in data.splitlines():
        with contextlib.suppress(ValueError):
            line = json.loads(raw)
            if isinstance(line, dict):
                yield line
