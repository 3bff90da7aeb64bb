"""Shaping values as people write them (`40ms`, `1%`, `100mbit`), parsed once for the model and the CLI.
Durations follow the lab's one grammar (lab/durations.py).

Rates use tc's bit units only: tc reads `mbps` as megabytes per second, a classic surprise, so byte units
are refused rather than guessed.
"""

from __future__ import annotations

import re

from . import durations

MAX_DELAY_MS = 10_000.0
MIN_RATE_BPS = 8_000
MAX_RATE_BPS = 100_000_000_000

_NUMBER = r"(\d+(?:\.\d+)?|\.\d+)"
_PERCENT = re.compile(rf"^{_NUMBER}\s*%?$")
_RATE = re.compile(rf"^{_NUMBER}\s*(bit|kbit|mbit|gbit)$", re.IGNORECASE)
_RATE_SCALE = {"bit": 1, "kbit": 1_000, "mbit": 1_000_000, "gbit": 1_000_000_000}


def _number(value: object, pattern: re.Pattern[str], what: str, example: str) -> tuple[float, str | None]:
    """A bare int/float, or text matching `pattern` (a number, then an optional unit) -> (number, unit)."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be {example}, not {value!r}")
    if isinstance(value, int | float):
        return float(value), None
    match = pattern.match(str(value).strip())
    if not match:
        raise ValueError(f"{what} must be {example}, not {value!r}")
    return float(match.group(1)), match.group(2) if pattern.groups > 1 else None


def duration_ms(value: object, what: str = "delay") -> float:
    """`40ms`, `1.5ms`, `0.2s`, `500us` (the lab's one grammar, lab/durations.py) -> milliseconds.
    A bare number is refused: it used to mean milliseconds here and seconds in drills."""
    ms = durations.milliseconds(value, what)
    if not 0 <= ms <= MAX_DELAY_MS:
        raise ValueError(f"{what} {ms:g} ms is out of range (0 to {MAX_DELAY_MS:g} ms)")
    return round(ms, 3)


def loss_pct(value: object) -> float:
    """`1%`, `0.5%` or a bare number of percent -> percent (0..100)."""
    pct, _ = _number(value, _PERCENT, "loss", "a percentage like 1% or 0.5%")
    if not 0 <= pct <= 100:
        raise ValueError(f"loss {pct:g}% is out of range (0% to 100%)")
    return round(pct, 4)


def rate_bps(value: object) -> int:
    """`100mbit`, `1gbit`, `512kbit` -> bits per second."""
    match = _RATE.match(str(value).strip()) if not isinstance(value, bool) else None
    if not match:
        raise ValueError(f"rate must be like 100mbit, 1gbit or 512kbit (bits, as tc reads them), not {value!r}")
    bps = int(float(match.group(1)) * _RATE_SCALE[match.group(2).lower()])
    if not MIN_RATE_BPS <= bps <= MAX_RATE_BPS:
        raise ValueError(f"rate {bps} bit/s is out of range (8kbit to 100gbit)")
    return bps


def show_ms(ms: float) -> str:
    return f"{ms:g}ms"


def show_rate(bps: int | None) -> str:
    if bps is None:
        return "-"
    for unit, scale in (("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)):
        if bps >= scale and bps % scale == 0:
            return f"{bps // scale}{unit}"
    return f"{bps}bit"
