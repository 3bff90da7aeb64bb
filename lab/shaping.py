"""What each link gets: one-way delay, jitter, loss and rate, per direction, derived when the plan is built.

Geography gives the delay (lab/geo.py); a topology's `links:` entry replaces any field it names;
`anycastlab link set` changes a running lab's copy (lab/runtime/links/control.py). Pure: no kernel, no files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from . import geo

if TYPE_CHECKING:
    from .model import Place, Topology

Source = Literal["none", "geography", "topology", "runtime"]

# Below this a delay is left to the path itself when it would cost a userspace detour: a veth hop and the
# NFQUEUE round trip already take about this long, and the accuracy target allows +-0.5 ms.
MIN_USERSPACE_DELAY_MS = 0.5


@dataclass(frozen=True)
class Shaping:
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss_pct: float = 0.0
    rate_bps: int | None = None
    distance_km: float | None = None
    source: Source = "none"

    @property
    def needs_delay(self) -> bool:
        """Worth a userspace detour: a delay above what the path adds anyway, or any jitter or loss."""
        return self.delay_ms >= MIN_USERSPACE_DELAY_MS or self.jitter_ms > 0 or self.loss_pct > 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Shaping:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def changed(self, source: Source, **fields: Any) -> Shaping:
        """This shaping with the given fields replaced (None leaves a field as it is)."""
        given = {k: v for k, v in fields.items() if v is not None}
        return replace(self, **given, source=source) if given else self


class Deriver:
    """Shaping per node pair for one topology: locations are resolved once."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.places: dict[str, Place] = {t.name: t for t in topo.transits}
        self.places.update({p.name: p for p in topo.pops})
        self.places.update({e.name: e for e in topo.eyeballs})
        self.places[topo.origin.name] = topo.origin
        for e in topo.eyeballs:  # clients sit in their ISP's city
            self.places.update({c: e for c in topo.client_names(e)})
        self.overrides = {frozenset(o.between): o for o in topo.links}
        self._located: dict[str, geo.Location | None] = {}

    def location(self, node: str) -> geo.Location | None:
        if node not in self._located:
            place = self.places.get(node)
            located = None
            if place is not None and self.topo.latency.from_geography:
                try:
                    located = geo.locate(place.city, place.continent, place.lat, place.lon)
                except LookupError:
                    located = None  # the model already refused unknown cities; a renamed city keeps no delay
            self._located[node] = located
        return self._located[node]

    def shaping(self, a: str, b: str, b_at: str | None = None) -> Shaping:
        """The link a-b; with `b_at`, as if b sat where that node does (a moved client is in its new ISP's city)."""
        la, lb = self.location(a), self.location(b if b_at is None else b_at)
        km = round(geo.distance_km(la, lb), 1) if la is not None and lb is not None else None
        base = Shaping()
        if self.topo.latency.from_geography:
            base = Shaping(delay_ms=geo.derived_delay_ms(km, self.topo.latency.per_hop_ms), distance_km=km,
                           source="geography")
        else:
            base = Shaping(distance_km=km)
        override = self.overrides.get(frozenset((a, b)))
        if override is None:
            return base
        return base.changed("topology", delay_ms=override.delay, jitter_ms=override.jitter,
                            loss_pct=override.loss, rate_bps=override.rate)
