"""Progress of a lab's bring-up, as JSON lines the `up` command follows while the supervisor works."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY, FAILED = "ready", "failed"
DEFAULT_TIMEOUT = 60.0  # seconds `up` waits for the readiness gate


@dataclass(frozen=True)
class Event:
    t: float  # seconds since bring-up began
    stage: str
    message: str
    details: list[str]

    @property
    def final(self) -> bool:
        return self.stage in (READY, FAILED)


class EventLog:
    def __init__(self, path: Path, listener: Callable[[Event], None] | None = None) -> None:
        self.path = path
        self.started = time.monotonic()
        self.listener = listener

    def emit(self, stage: str, message: str, details: list[str] | None = None) -> Event:
        event = Event(round(time.monotonic() - self.started, 3), stage, message, details or [])
        line = json.dumps(event.__dict__) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
        if self.listener is not None:
            self.listener(event)
        return event


def follow(path: Path, offset: int = 0) -> tuple[list[Event], int]:
    """Events written since `offset`, and the new offset (only whole lines are consumed)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    events = [Event(**_load(line)) for line in data[:end].splitlines() if line.strip()]
    return events, offset + end


def _load(line: bytes) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(line)
    return obj


def all_events(path: Path) -> Iterator[Event]:
    yield from follow(path)[0]
