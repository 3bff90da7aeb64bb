"""Interrupts of long verbs: their own handlers for SIGINT, SIGTERM and SIGHUP, even when started with SIGINT
ignored (a background job of a non-interactive shell), unwinding like Ctrl-C and exiting 130, 143 or 129."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from anycastlab import interrupts

# `probe --watch`'s own loop (cli/probe.py _watch) over a fake record stream: no lab, no root needed.
WATCH = textwrap.dedent("""
    import sys, time
    import anycastlab.probes.watch as w

    def fake(lab, rate, duration, clients):
        try:
            for seq in range(1200):
                yield w.ProbeRecord(time.time(), "c1", seq, "ams", 1.0)
                time.sleep(0.05)
        finally:
            print("generator closed", file=sys.stderr, flush=True)

    w.watch = fake
    from anycastlab.cli.probe import _watch
    _watch(None, None, 10.0, 60.0, None, True)
""")

BLOCK = textwrap.dedent("""
    import sys, time
    from anycastlab import interrupts
    try:
        with interrupts.catching():
            print("ready", flush=True)
            time.sleep(30)
    except KeyboardInterrupt as exc:
        print(interrupts.describe(exc), flush=True)
        sys.exit(interrupts.exit_status(exc))
""")


def ignoring_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start(code: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=ignoring_sigint)


@pytest.mark.parametrize(("signum", "status", "words"), [(signal.SIGINT, 130, "interrupted"),
                                                         (signal.SIGTERM, 143, "interrupted by SIGTERM"),
                                                         (signal.SIGHUP, 129, "interrupted by SIGHUP")])
def test_catching_stops_a_process_started_with_sigint_ignored(signum: int, status: int, words: str) -> None:
    proc = start(BLOCK)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=10)
    assert proc.returncode == status and out.strip() == words


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_watch_started_with_sigint_ignored_stops_summarises_and_exits(signum: int, status: int) -> None:
    proc = start(WATCH)
    assert proc.stdout is not None
    for _ in range(3):
        assert json.loads(proc.stdout.readline())["client"] == "c1"
    started = time.monotonic()
    proc.send_signal(signum)
    _rest, err = proc.communicate(timeout=10)
    assert time.monotonic() - started < 5
    assert proc.returncode == status, err
    assert "generator closed" in err  # the probes' sockets are closed on the way out
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["interrupted"] is True and summary["records"] >= 3


def test_held_delays_a_signal_and_raises_it_after_or_drops_it_when_told() -> None:
    with pytest.raises(interrupts.Interrupted) as info, interrupts.held():
        signal.raise_signal(signal.SIGTERM)
        time.sleep(0.01)  # still here: the signal waits for the block to end
    assert info.value.signum == signal.SIGTERM and interrupts.exit_status(info.value) == 143
    with interrupts.held(raise_pending=False):
        signal.raise_signal(signal.SIGINT)
    assert interrupts.exit_status(KeyboardInterrupt()) == 130


def test_catching_puts_the_previous_handlers_back() -> None:
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    with interrupts.catching():
        assert all(signal.getsignal(s) is not before[s] for s in interrupts.SIGNALS)
    assert {s: signal.getsignal(s) for s in interrupts.SIGNALS} == before
