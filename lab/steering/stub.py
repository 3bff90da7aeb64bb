"""A client's stub resolver: asks its ISP's resolver (unbound) from the client's namespace and keeps the answer
as a client would, for the answer's TTL but never less than a floor (Chromium keeps host-cache entries for at
least 60 s: the `chromium` preset). Driven from the HTTP load's asyncio loop (http_load.HttpLoad.resolve)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..drills.http_load import RequestFailed
from ..runtime.state import RunningLab
from .dnsquery import query_async
from .plan import SteeringPlan


@dataclass(frozen=True)
class CachePolicy:
    name: str
    floor_s: float  # an answer is kept at least this long, whatever its TTL


PRESETS = {"ttl": CachePolicy("ttl", 0.0), "chromium": CachePolicy("chromium", 60.0)}


@dataclass(frozen=True)
class Lookup:
    t: float  # Unix time of the lookup
    client: str
    address: str | None  # None: the resolver did not answer
    ttl: int | None
    kept_s: float | None  # how long the stub keeps it: max(ttl, floor)


@dataclass
class StubResolver:
    lab: RunningLab  # its plan says each client's ISP now (a moved client asks its new ISP's resolver)
    steering: SteeringPlan
    name: str  # the name every client asks for
    policy: CachePolicy
    pid_of: dict[str, int]  # client -> its namespace's pid
    timeout_s: float = 1.0
    lookups: list[Lookup] = field(default_factory=list)
    _cache: dict[str, tuple[str, float]] = field(default_factory=dict)  # client -> (address, until monotonic)

    def last(self, client: str) -> str | None:
        """The address the client got from its last answer, held or just expired (what it is using now)."""
        entry = self._cache.get(client)
        return entry[0] if entry is not None else None

    async def __call__(self, client: str) -> str:
        now = time.monotonic()
        cached = self._cache.get(client)
        if cached is not None and cached[1] > now:
            return cached[0]
        resolver = self.steering.resolver_of_client(self.lab.plan, client)
        answer = await query_async(self.pid_of[client], str(resolver.address), self.name, self.timeout_s)
        if answer is None or answer.address is None:
            self.lookups.append(Lookup(time.time(), client, None, None, None))
            raise RequestFailed("dns", f"{resolver.isp}'s resolver gave no address for {self.name}")
        kept = max(float(answer.ttl), self.policy.floor_s)
        self._cache[client] = (answer.address, time.monotonic() + kept)
        self.lookups.append(Lookup(time.time(), client, answer.address, answer.ttl, kept))
        return answer.address
