"""An exclusive lock on a file of the run directory, for changes two verbs must not make at once (link shaping,
client moves): bounded, so a stuck holder is an error naming the file rather than a hang."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import LabError
from . import procs


@contextmanager
def locked(path: Path, timeout: float, what: str) -> Iterator[None]:
    """Hold `path`'s lock; LabError if another `what` holds it longer than `timeout` (0: one try)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        def taken() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not (taken() or (timeout > 0 and procs.wait_for(taken, timeout, interval=0.05))):
            raise LabError(f"another {what} held {path} for {timeout:.0f} s")
        yield
    finally:
        os.close(fd)
