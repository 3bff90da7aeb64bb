"""Signals for long verbs: every stop request unwinds the same way, and clean-up is not cut short.

- `catching()`: the verb's own handlers for SIGINT, SIGTERM and SIGHUP, installed unconditionally. A
  process started with SIGINT ignored (a background job of a non-interactive shell) never gets Python's
  KeyboardInterrupt otherwise, so Ctrl-C or `kill -INT` did nothing; SIGTERM (`docker stop`, CI cancel)
  and SIGHUP (a closed terminal) killed it without restoring. Each raises `Interrupted`, a
  KeyboardInterrupt, so the `except KeyboardInterrupt`/`finally` blocks that restore faults and write
  partial reports run; the verb exits with `exit_status(exc)`: 130, 143 or 129.
- `held()`: around clean-up that must finish; a signal waits until the block ends.

Only the main thread receives signals in Python, so elsewhere these do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(KeyboardInterrupt):
    """A stop request (SIGINT, SIGTERM or SIGHUP) raised in the main thread; unwinds like Ctrl-C."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def exit_status(exc: BaseException) -> int:
    """The shell's convention: 128 + the signal (130 for Ctrl-C, a plain KeyboardInterrupt, 143 for SIGTERM)."""
    return 128 + (exc.signum if isinstance(exc, Interrupted) else signal.SIGINT)


def describe(exc: BaseException) -> str:
    """`interrupted` for Ctrl-C; `interrupted by SIGTERM` (or SIGHUP) for the others."""
    if isinstance(exc, Interrupted) and exc.signum != signal.SIGINT:
        return f"interrupted by {exc.name}"
    return "interrupted"


@contextlib.contextmanager
def catching() -> Iterator[None]:
    """Inside the block SIGINT, SIGTERM and SIGHUP raise `Interrupted`, whatever their disposition was
    (even SIG_IGN inherited from the parent); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {s: signal.signal(s, interrupt) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def held(raise_pending: bool = True) -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP wait until the block ends (keep it bounded), then raise `Interrupted`
    for the first of them (unless `raise_pending` is false: clean-up that is already unwinding one)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: pending.append(signum)) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending and raise_pending:
            raise Interrupted(pending[0])


@contextlib.contextmanager
def sigterm_raises(error: Callable[[], BaseException]) -> Iterator[None]:
    """Inside the block SIGTERM raises `error()` like Ctrl-C raises KeyboardInterrupt, so `finally` runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_it(_signum: int, _frame: FrameType | None) -> None:
        raise error()

    previous = signal.signal(signal.SIGTERM, raise_it)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
