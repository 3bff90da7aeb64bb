"""Per-PoP counters, kept as plain ints so the hot path pays one attribute increment per event."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field


@dataclass(slots=True)
class Metrics:
    started: float = field(default_factory=time.time)
    requests: int = 0
    connections: int = 0
    tls_handshakes: int = 0
    tls_resumptions: int = 0
    tls_handshake_errors: int = 0
    origin_fetches: int = 0
    origin_errors: int = 0
    coalesced: int = 0
    bytes_out: int = 0
    bytes_from_origin: int = 0
    errors_400: int = 0
    errors_413: int = 0
    errors_414: int = 0
    errors_431: int = 0
    errors_502: int = 0
    errors_504: int = 0
    timeouts: int = 0
    purges: int = 0
    fast_hits: int = 0  # HITs answered on the inline path; folded into cache_status["HIT"] on read
    # cf-cache-status value -> count
    cache_status: dict[str, int] = field(default_factory=dict)

    def count_status(self, status: str) -> None:
        self.cache_status[status] = self.cache_status.get(status, 0) + 1

    def snapshot(self) -> dict[str, object]:
        data = asdict(self)
        statuses = dict(self.cache_status)
        statuses["HIT"] = statuses.get("HIT", 0) + self.fast_hits
        data["cache_status"] = statuses
        data["uptime"] = round(time.time() - self.started, 3)
        data["errors"] = sum(v for k, v in data.items() if k.startswith("errors_") and isinstance(v, int))
        return data
