"""One duration grammar for the whole lab: topology files (`links:`), drill files and `link set`.

A duration is a number and a unit: `500us`, `5ms`, `1.5s`, `2m`, `1h` (a space between them is allowed).

| unit | meaning |
|---|---|
| `us` or `µs` | microseconds |
| `ms` | milliseconds |
| `s` | seconds |
| `m` | minutes |
| `h` | hours |

A bare number is refused, `0` alone excepted: the same `5` used to mean milliseconds in `link set` and
seconds in a drill. Callers check their own range (a link delay at most 10 s, a drill wait at most 600 s).

    seconds("1.5s") == 1.5;  milliseconds("500us") == 0.5;  seconds("5")  -> ValueError
"""

from __future__ import annotations

import re

UNITS = "us, ms, s, m or h"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*(us|µs|ms|s|m|h)$")
# unit -> (multiply, divide) to get seconds, kept exact where it can be ("200ms" is 200 / 1000, not 200 * 0.001)
_TO_SECONDS: dict[str, tuple[float, float]] = {"us": (1, 1e6), "µs": (1, 1e6), "ms": (1, 1e3), "s": (1, 1),
                                               "m": (60, 1), "h": (3600, 1)}


def seconds(value: object, what: str = "duration") -> float:
    """A duration as written (`1.5s`, `200ms`, `500us`, `2m`) -> seconds; ValueError names what is wrong."""
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration like 40ms, 1.5s or 500us (units: {UNITS}), not {value!r}")
    if isinstance(value, int | float):
        if value == 0:
            return 0.0
        raise ValueError(f"{what} {value!r} has no unit: write it with one of {UNITS} (e.g. 40ms or 1.5s)")
    text = str(value).strip()
    if text == "0":
        return 0.0
    match = _DURATION.match(text)
    if match is None:
        if re.fullmatch(r"\d+(?:\.\d+)?|\.\d+", text):
            raise ValueError(f"{what} {text!r} has no unit: write it with one of {UNITS} (e.g. 40ms or 1.5s)")
        raise ValueError(f"{what} must be a duration like 40ms, 1.5s or 500us (units: {UNITS}), not {value!r}")
    multiply, divide = _TO_SECONDS[match.group(2)]
    return float(match.group(1)) * multiply / divide


def milliseconds(value: object, what: str = "duration") -> float:
    """The same grammar -> milliseconds (rounded to the microsecond)."""
    if isinstance(value, str) and value.strip().endswith(("us", "µs", "ms")):
        return round(_scaled_ms(value, what), 3)  # no detour through seconds: 0.5ms stays 0.5
    return round(seconds(value, what) * 1000, 3)


def _scaled_ms(value: str, what: str) -> float:
    match = _DURATION.match(value.strip())
    if match is None:
        return seconds(value, what) * 1000  # raises the same error
    number = float(match.group(1))
    return number / 1000 if match.group(2) in ("us", "µs") else number


def show(seconds_value: float) -> str:
    """A duration for people, in the grammar: 0.0005 -> `500us`, 0.25 -> `250ms`, 1.5 -> `1.5s`, 120 -> `2m`."""
    s = seconds_value
    if s == 0:
        return "0s"
    if abs(s) < 1e-3:
        return f"{s * 1e6:.3g}us"
    if abs(s) < 1:
        return f"{s * 1e3:.4g}ms"
    if abs(s) >= 120 and s % 60 == 0:
        return f"{s / 60:g}m"
    return f"{s:.4g}s"
