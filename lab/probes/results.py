"""What a probe method finds for one client, and what a whole probe run reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class MethodResult:
    """One method's answer for one client: the PoP it landed on (None when unanswered) and how."""

    pop: str | None
    rtt_ms: float | None = None
    hops: int | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"pop": self.pop, "rtt_ms": _ms(self.rtt_ms), "hops": self.hops}
        if self.error:
            out["error"] = self.error
        out.update(self.detail)
        return out


class MethodUnavailable(Exception):
    """The method cannot run in this lab at all (e.g. no edge proxy serves HTTPS yet): says why."""


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 3)
