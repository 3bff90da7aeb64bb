"""The topology model: what a user writes in topologies/*.yaml, validated.

Pydantic checks each field's shape; `check_references` then checks what spans fields (names, relations,
address conflicts). Every error carries the path of the field at fault, which `load_topology` turns into
the file's line number.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import geo, units
from .errors import TopologyError
from .yamlsource import Loc, field_name, first_problem, line_of, load_yaml

# Names become interface names (15 bytes at most) and client names `<isp>-c<n>`, so they stay short.
NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
MAX_CLIENTS = 500
ASN_MIN, ASN_MAX = 1, 4_294_967_294
RESERVED_ASNS = {23456, 65535}  # AS_TRANS (RFC 6793) and the last 16-bit ASN (RFC 7300)

# Pools the address plan allocates from; user-given prefixes must not overlap them.
LINK_POOL = ipaddress.IPv4Network("10.0.0.0/16")
BACKBONE_POOL = ipaddress.IPv4Network("10.254.0.0/16")
LOOPBACK_POOL = ipaddress.IPv4Network("10.255.0.0/16")
CLIENT_POOL = ipaddress.IPv4Network("100.64.0.0/10")
CLIENT_BLOCK = 20  # each eyeball's clients get a /20 from CLIENT_POOL unless it names a prefix
# Each PoP's own unicast service address: PoP n (declaration order, from 1) gets UNICAST_POOL[n] (TEST-NET-1).
UNICAST_POOL = ipaddress.IPv4Network("192.0.2.0/24")
MAX_POPS = UNICAST_POOL.num_addresses - 2

Name = Annotated[str, Field(description="a short lowercase name: a letter, then up to 9 letters or digits")]


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a valid name (a lowercase letter, then up to 9 letters or digits)")
    return value


def _check_asn(value: int) -> int:
    if not ASN_MIN <= value <= ASN_MAX or value in RESERVED_ASNS:
        raise ValueError(f"ASN {value} is out of range (1..4294967294, not 23456 or 65535)")
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


ImageRole = Literal["router", "pop", "origin", "client"]  # images/<role>; transits and eyeballs run `router`
ImageRef = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9._/:@-]*$")]


class Place(Strict):
    """Where a node sits: its links' delays derive from it (lat/lon, else the city looked up in GeoNames).
    With the docker runtime, `image:` pins the image the node runs (another FRR, your own PoP service)."""

    image: ImageRef | None = None
    city: str | None = None
    continent: Literal["africa", "asia", "europe", "north-america", "oceania", "south-america"] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    @model_validator(mode="after")
    def _both_coordinates(self) -> Place:
        if (self.lat is None) != (self.lon is None):
            raise ValueError("give both lat and lon, or neither")
        return self


class Transit(Place):
    name: str
    asn: int
    upstreams: list[str] = []
    peers: list[str] = []

    _name = field_validator("name")(_check_name)
    _asn = field_validator("asn")(_check_asn)


class Pop(Place):
    name: str
    upstreams: list[str] = Field(min_length=1)
    peers: list[str] = []

    _name = field_validator("name")(_check_name)


class Eyeball(Place):
    name: str
    asn: int
    upstreams: list[str] = Field(min_length=1)
    peers: list[str] = []
    clients: int = Field(default=2, ge=1, le=MAX_CLIENTS)
    prefix: ipaddress.IPv4Network | None = None

    _name = field_validator("name")(_check_name)
    _asn = field_validator("asn")(_check_asn)

    @field_validator("prefix")
    @classmethod
    def _prefix_fits(cls, value: ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
        if value is not None and value.prefixlen > 30:
            raise ValueError(f"{value} is too small for client links (use /30 or larger)")
        return value

    @model_validator(mode="after")
    def _clients_fit(self) -> Eyeball:
        if self.prefix is not None and self.prefix.num_addresses < 2 * self.clients:
            raise ValueError(f"prefix {self.prefix} cannot hold {self.clients} client links (/31 each)")
        return self


class Origin(Place):
    name: str = "origin"
    asn: int = 64496
    upstreams: list[str] = Field(min_length=1)
    pops: list[str] = Field(min_length=1, description="PoPs the origin joins over the private backbone")
    prefix: ipaddress.IPv4Network = ipaddress.IPv4Network("203.0.113.0/24")

    _name = field_validator("name")(_check_name)
    _asn = field_validator("asn")(_check_asn)


PROFILES: dict[str, tuple[int, int]] = {"default": (3, 9), "fast": (1, 3), "internet": (60, 180)}


MULTIPATHS = 8  # `maximum-paths` with multipath on: more than any shipped topology's ties


class Bgp(Strict):
    """BGP timers (a named profile, optionally overridden field by field) and how ties are installed.

    `multipath: false` (the default, like most ISP routers): each router installs one best path
    (`maximum-paths 1`), chosen by BGP's tie-break, so the PoP community on an eyeball's best path is
    where its clients land. `true`: equal paths (same local-pref and AS-path length, from any neighbour
    AS: `bgp bestpath as-path multipath-relax`) are all installed and flows are hashed across them
    (ECMP); a client's prediction is then the set of PoPs its ISP's FIB reaches.
    """

    profile: Literal["default", "fast", "internet"] = "default"
    keepalive: int | None = Field(default=None, ge=1, le=21845)
    hold: int | None = Field(default=None, ge=3, le=65535)
    multipath: bool = False

    @property
    def timers(self) -> tuple[int, int]:
        keepalive, hold = PROFILES[self.profile]
        return (self.keepalive or keepalive, self.hold or hold)

    @model_validator(mode="after")
    def _keepalive_below_hold(self) -> Bgp:
        keepalive, hold = self.timers
        if keepalive * 3 > hold:
            raise ValueError(f"hold ({hold}) must be at least 3 x keepalive ({keepalive})")
        return self


class Bfd(Strict):
    enabled: bool = False
    interval_ms: int = Field(default=100, ge=10, le=60000)
    multiplier: int = Field(default=3, ge=2, le=255)


class TieredCache(Strict):
    """Lower-tier PoPs fetch misses from the nearest upper-tier PoP (near the origin), not the origin."""

    upper: list[str] = Field(min_length=1, description="upper-tier PoPs")
    enabled: bool = Field(default=True, description="at start; `anycastlab backbone tiered on|off` at runtime")


Delay = Annotated[float, BeforeValidator(units.duration_ms)]
Jitter = Annotated[float, BeforeValidator(lambda v: units.duration_ms(v, "jitter"))]
Loss = Annotated[float, BeforeValidator(units.loss_pct)]
Rate = Annotated[int, BeforeValidator(units.rate_bps)]


class LinkOverride(Strict):
    """One link's shaping, replacing what geography derives: `{between: [a, b], delay: 40ms, loss: 1%}`."""

    between: tuple[str, str]
    delay: Delay | None = Field(default=None, description="one-way, each direction (e.g. 40ms)")
    jitter: Jitter | None = None
    loss: Loss | None = Field(default=None, description="percent of packets dropped, each direction")
    rate: Rate | None = Field(default=None, description="bits per second (e.g. 100mbit)")


class Latency(Strict):
    """How link delays are derived: from the nodes' locations (1 ms per 200 km) plus a per-hop constant."""

    from_geography: bool = True
    per_hop_ms: float = Field(default=geo.PER_HOP_MS, ge=0, le=100)


def _whole_seconds(value: object, what: str = "duration") -> int:
    """A duration in the lab's grammar (`30s`, `2m`) that must be whole seconds: DNS TTLs and gdnsd's
    monitor timers are integers."""
    from .durations import seconds

    secs = seconds(value, what)
    if secs != int(secs):
        raise ValueError(f"{value!r} is not a whole number of seconds (DNS and gdnsd count whole seconds)")
    return int(secs)


WholeSeconds = Annotated[int, BeforeValidator(_whole_seconds)]
DNS_NAME_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class HealthChecks(Strict):
    """gdnsd's http_status monitor of each PoP's proxy, on the PoP's unicast address. gdnsd's own defaults
    (10 s interval, down after 10 failures) take about 100 s to notice a dead PoP; these take 2-4 s."""

    interval: WholeSeconds = Field(default=2, ge=2, le=255, description="between checks of one PoP")
    timeout: WholeSeconds = Field(default=1, ge=1, le=254, description="a check slower than this fails")
    down_after: int = Field(default=2, ge=1, le=65535, description="failed checks before a PoP is DOWN")
    up_after: int = Field(default=2, ge=1, le=65535, description="good checks in a row before a DOWN PoP is UP")
    path: str = Field(default="/cdn-cgi/trace", pattern=r"^/[A-Za-z0-9._~/?=&%-]*$",
                      description="answered by the PoP's proxy itself (no origin involved)")

    @model_validator(mode="after")
    def _timeout_below_interval(self) -> HealthChecks:
        if self.timeout >= self.interval:
            raise ValueError(f"timeout ({self.timeout}s) must be shorter than interval ({self.interval}s)")
        return self

    @property
    def detection_s(self) -> tuple[float, float]:
        """Fastest and slowest time from a PoP's death to gdnsd marking it DOWN: the first failed check comes
        0..interval after it, then down_after - 1 more intervals, and a check that times out takes `timeout`."""
        base = (self.down_after - 1) * self.interval
        return (float(base), float(base + self.interval + self.timeout))


class Resolvers(Strict):
    """unbound in every eyeball ISP (the ISP's caching resolver, which its clients use)."""

    min_ttl: WholeSeconds = Field(default=0, ge=0, le=86400, description="cache-min-ttl: stretch short TTLs")
    max_ttl: WholeSeconds = Field(default=86400, ge=1, le=604800, description="cache-max-ttl")
    serve_expired: bool = Field(default=False, description="answer from expired cache entries (RFC 8767)")
    serve_expired_ttl: WholeSeconds = Field(default=30, ge=0, le=86400,
                                            description="with serve_expired: how long past expiry")


class DnsSteering(Strict):
    """DNS-based steering beside anycast: gdnsd on the origin's service address is authoritative for `zone`,
    answers `name` with the nearest healthy PoP's unicast address (nearest for the asking resolver's ISP),
    and `anycast_name` with the anycast address."""

    enabled: bool = True
    zone: str = "example.com"
    name: str = Field(default="dns.example.com", description="the DNS-steered name")
    anycast_name: str = Field(default="www.example.com", description="resolves to the anycast address")
    ttl: WholeSeconds = Field(default=30, ge=1, le=86400, description="of the steered and the anycast answer")
    health: HealthChecks = HealthChecks()
    resolvers: Resolvers = Resolvers()

    @field_validator("zone", "name", "anycast_name")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not DNS_NAME_RE.match(value):
            raise ValueError(f"{value!r} is not a lowercase DNS name like dns.example.com")
        return value

    @model_validator(mode="after")
    def _names_in_zone(self) -> DnsSteering:
        for name in (self.name, self.anycast_name):
            if not name.endswith("." + self.zone):
                raise ValueError(f"{name!r} is not inside the zone {self.zone!r}")
        if self.name == self.anycast_name:
            raise ValueError("name and anycast_name must differ (one is steered by DNS, the other is anycast)")
        return self


class Steering(Strict):
    dns: DnsSteering | None = Field(default=None, description="off unless given")

    @property
    def dns_on(self) -> bool:
        return self.dns is not None and self.dns.enabled


class Topology(Strict):
    name: str
    description: str = ""
    anycast: ipaddress.IPv4Interface = ipaddress.IPv4Interface("198.51.100.10/32")
    asn: int = 13335
    bgp: Bgp = Bgp()
    bfd: Bfd = Bfd()
    transits: list[Transit] = Field(min_length=1)
    pops: list[Pop] = Field(min_length=1)
    eyeballs: list[Eyeball] = Field(min_length=1)
    origin: Origin
    backbone: list[tuple[str, str]] = []
    latency: Latency = Latency()
    links: list[LinkOverride] = []
    smart_routing: bool = Field(default=False, description="backbone OSPF costs follow measured RTT (lab/backbone)")
    runtime: Literal["netns", "docker"] | None = Field(
        default=None, description="what holds the nodes: netns (default) or docker; `up --runtime` overrides")
    images: dict[ImageRole, ImageRef] = Field(
        default={}, description="docker runtime: the image per role, where a node names none of its own")
    tiered_cache: TieredCache | None = None
    hostnames: list[str] = Field(default=["www.example.com", "example.com"], min_length=1,
                                 description="names the PoPs' certificates cover (SNI picks the certificate)")
    steering: Steering = Field(default=Steering(), description="DNS-based steering beside anycast (lab/steering)")

    _asn = field_validator("asn")(_check_asn)

    @field_validator("name")
    @classmethod
    def _lab_name(cls, value: str) -> str:
        if not re.match(r"^[a-z][a-z0-9-]{0,31}$", value):
            raise ValueError(f"{value!r} is not a valid lab name (lowercase letters, digits, '-'; 32 at most)")
        return value

    @field_validator("anycast")
    @classmethod
    def _host_route(cls, value: ipaddress.IPv4Interface) -> ipaddress.IPv4Interface:
        if value.network.prefixlen != 32:
            raise ValueError(f"the anycast address must be a /32, not /{value.network.prefixlen}")
        return value

    @property
    def anycast_ip(self) -> ipaddress.IPv4Address:
        return self.anycast.ip

    def client_names(self, eyeball: Eyeball) -> list[str]:
        return [f"{eyeball.name}-c{i}" for i in range(1, eyeball.clients + 1)]


def load_topology(path: Path | str) -> Topology:
    """Read and validate a topology file; any problem raises one TopologyError naming file, line, field."""
    path = Path(path)
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise TopologyError(path, line_of(doc, ()), "", "a topology must be a YAML mapping")
    try:
        topo = Topology.model_validate(doc)
    except ValidationError as exc:
        raise TopologyError(path, *first_problem(doc, exc, Topology)) from None
    for ref_loc, message in check_references(topo):
        raise TopologyError(path, line_of(doc, ref_loc), field_name(ref_loc), message)
    return topo


def check_references(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """What pydantic cannot see field by field: unique names and ASNs, known references, no conflicts."""
    yield from _unique_names(topo)
    yield from _unique_asns(topo)
    yield from _known_references(topo)
    yield from _backbone_links(topo)
    yield from _conflicting_relations(topo)
    yield from _address_conflicts(topo)
    yield from _steering_room(topo)
    yield from _unknown_cities(topo)
    yield from _link_overrides(topo)


def _unique_names(topo: Topology) -> Iterator[tuple[Loc, str]]:
    seen: dict[str, str] = {}
    groups: list[tuple[str, list[Any]]] = [
        ("transits", topo.transits),
        ("pops", topo.pops),
        ("eyeballs", topo.eyeballs),
    ]
    for group, items in groups:
        for i, item in enumerate(items):
            if item.name in seen:
                yield (group, i, "name"), f"duplicate name {item.name!r} (also used in {seen[item.name]})"
            seen[item.name] = group
    if topo.origin.name in seen:
        yield ("origin", "name"), f"duplicate name {topo.origin.name!r} (also used in {seen[topo.origin.name]})"
    for i, eyeball in enumerate(topo.eyeballs):
        for client in topo.client_names(eyeball):
            if client in seen:
                yield ("eyeballs", i, "clients"), f"client name {client!r} clashes with a node in {seen[client]}"


def _unique_asns(topo: Topology) -> Iterator[tuple[Loc, str]]:
    asns: dict[int, str] = {topo.asn: "asn (the edge network)"}
    asn_owners: list[tuple[Loc, int, str]] = [
        *((("transits", i, "asn"), t.asn, t.name) for i, t in enumerate(topo.transits)),
        *((("eyeballs", i, "asn"), e.asn, e.name) for i, e in enumerate(topo.eyeballs)),
        (("origin", "asn"), topo.origin.asn, topo.origin.name),
    ]
    for loc, asn, owner in asn_owners:
        if asn in asns:
            yield loc, f"duplicate ASN {asn} (also used by {asns[asn]})"
        asns[asn] = owner


def _refs(group: str, index: int | None, attr: str, names: list[str], allowed: set[str], kind: str,
          self_name: str) -> Iterator[tuple[Loc, str]]:
    """Each name of a reference list: known, not the node itself, listed once."""
    base: tuple[str | int, ...] = (group,) if index is None else (group, index)
    for j, ref in enumerate(names):
        if ref == self_name:
            yield (*base, attr, j), f"{self_name!r} cannot list itself"
        elif ref not in allowed:
            known = ", ".join(sorted(allowed)) or "none"
            yield (*base, attr, j), f"unknown {kind} {ref!r} (known: {known})"
        elif names.index(ref) != j:
            yield (*base, attr, j), f"{ref!r} is listed twice"


def _known_references(topo: Topology) -> Iterator[tuple[Loc, str]]:
    transits = {t.name for t in topo.transits}
    pops = {p.name for p in topo.pops}
    eyeballs = {e.name for e in topo.eyeballs}
    for i, t in enumerate(topo.transits):
        yield from _refs("transits", i, "upstreams", t.upstreams, transits, "transit", t.name)
        yield from _refs("transits", i, "peers", t.peers, transits | eyeballs, "transit or eyeball", t.name)
    for i, p in enumerate(topo.pops):
        yield from _refs("pops", i, "upstreams", p.upstreams, transits, "transit", p.name)
        yield from _refs("pops", i, "peers", p.peers, transits | eyeballs, "transit or eyeball", p.name)
    for i, e in enumerate(topo.eyeballs):
        yield from _refs("eyeballs", i, "upstreams", e.upstreams, transits, "transit", e.name)
        yield from _refs("eyeballs", i, "peers", e.peers, transits | eyeballs | pops, "peer", e.name)
    yield from _refs("origin", None, "upstreams", topo.origin.upstreams, transits, "transit", topo.origin.name)
    yield from _refs("origin", None, "pops", topo.origin.pops, pops, "PoP", topo.origin.name)
    if topo.tiered_cache is not None:
        yield from _refs("tiered_cache", None, "upper", topo.tiered_cache.upper, pops, "PoP", "")


def _backbone_links(topo: Topology) -> Iterator[tuple[Loc, str]]:
    pops = {p.name for p in topo.pops}
    for i, (a, b) in enumerate(topo.backbone):
        for j, end in enumerate((a, b)):
            if end not in pops:
                yield ("backbone", i, j), f"unknown PoP {end!r} (known: {', '.join(sorted(pops))})"
        if a == b:
            yield ("backbone", i), f"a backbone link needs two different PoPs, not {a!r} twice"
        if any({a, b} == set(other) for other in topo.backbone[:i]):
            yield ("backbone", i), f"backbone link {a}-{b} is listed twice"


def adjacencies(topo: Topology) -> set[frozenset[str]]:
    """Every pair of nodes the plan joins by a link: relations, backbone, origin to its PoPs, ISP to clients."""
    pairs: set[frozenset[str]] = set()
    items: list[Transit | Pop | Eyeball] = [*topo.transits, *topo.pops, *topo.eyeballs]
    for item in items:
        pairs.update(frozenset((item.name, other)) for other in [*item.upstreams, *item.peers])
    pairs.update(frozenset((topo.origin.name, u)) for u in [*topo.origin.upstreams, *topo.origin.pops])
    pairs.update(frozenset(pair) for pair in topo.backbone)
    for e in topo.eyeballs:
        pairs.update(frozenset((e.name, c)) for c in topo.client_names(e))
    return pairs


def _unknown_cities(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """A city without coordinates must be one GeoNames knows, or its links would silently get no delay."""
    if not topo.latency.from_geography:
        return
    places: list[tuple[Loc, Place]] = [
        *((("transits", i), t) for i, t in enumerate(topo.transits)),
        *((("pops", i), p) for i, p in enumerate(topo.pops)),
        *((("eyeballs", i), e) for i, e in enumerate(topo.eyeballs)),
        (("origin",), topo.origin),
    ]
    unplaced = [(loc, (place.city, place.continent)) for loc, place in places
                if place.city is not None and place.lat is None]
    found = geo.find_cities(query for _, query in unplaced)  # one pass over GeoNames for all of them
    for loc, (city, continent) in unplaced:
        if found[(city, continent)] is None:
            where = f" in {continent}" if continent else ""
            yield (*loc, "city"), f"unknown city {city!r}{where} (give lat: and lon: instead)"


def _link_overrides(topo: Topology) -> Iterator[tuple[Loc, str]]:
    nodes = {t.name for t in topo.transits} | {p.name for p in topo.pops} | {topo.origin.name}
    for e in topo.eyeballs:
        nodes |= {e.name, *topo.client_names(e)}
    pairs = adjacencies(topo)
    seen: set[frozenset[str]] = set()
    for i, override in enumerate(topo.links):
        a, b = override.between
        unknown = [(j, end) for j, end in enumerate((a, b)) if end not in nodes]
        for j, end in unknown:
            yield ("links", i, "between", j), f"unknown node {end!r}"
        if unknown:
            continue
        pair = frozenset((a, b))
        if pair not in pairs:
            yield ("links", i, "between"), f"there is no link between {a} and {b}"
        elif pair in seen:
            yield ("links", i, "between"), f"link {a}-{b} is listed twice"
        seen.add(pair)


def _conflicting_relations(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """Two ASes may be declared from both sides, but only with the same relation."""
    declared: dict[frozenset[str], tuple[str, str]] = {}
    # relation as seen from the declaring side: "provider" means the listed one is my provider
    decls: list[tuple[Loc, str, str, str]] = []
    for i, t in enumerate(topo.transits):
        decls += [(("transits", i, "upstreams", j), t.name, u, "provider") for j, u in enumerate(t.upstreams)]
        decls += [(("transits", i, "peers", j), t.name, p, "peer") for j, p in enumerate(t.peers)]
    for i, e in enumerate(topo.eyeballs):
        decls += [(("eyeballs", i, "upstreams", j), e.name, u, "provider") for j, u in enumerate(e.upstreams)]
        decls += [(("eyeballs", i, "peers", j), e.name, p, "peer") for j, p in enumerate(e.peers)]
    for i, p in enumerate(topo.pops):
        decls += [(("pops", i, "upstreams", j), p.name, u, "provider") for j, u in enumerate(p.upstreams)]
        decls += [(("pops", i, "peers", j), p.name, q, "peer") for j, q in enumerate(p.peers)]
    for loc, me, other, rel in decls:
        key = frozenset((me, other))
        seen_as = (me, rel) if rel == "peer" else (other, "provider-of-" + me)
        if key in declared and declared[key] != seen_as:
            yield loc, f"{me} and {other} are declared twice with different relations"
        declared.setdefault(key, seen_as)


def _steering_room(topo: Topology) -> Iterator[tuple[Loc, str]]:
    """With DNS steering on, each ISP's resolver takes the last address of the ISP's client prefix."""
    if not topo.steering.dns_on:
        return
    for i, e in enumerate(topo.eyeballs):
        if e.prefix is not None and e.prefix.num_addresses < 2 * e.clients + 2:
            yield (("eyeballs", i, "prefix"), f"prefix {e.prefix} has no room for the ISP's resolver beside "
                   f"{e.clients} client links (steering.dns takes its last /31)")


def _address_conflicts(topo: Topology) -> Iterator[tuple[Loc, str]]:
    reserved: list[tuple[str, ipaddress.IPv4Network]] = [
        ("the link pool", LINK_POOL),
        ("the backbone pool", BACKBONE_POOL),
        ("the loopback pool", LOOPBACK_POOL),
        ("the PoP unicast pool", UNICAST_POOL),
    ]
    if len(topo.pops) > MAX_POPS:
        yield ("pops",), f"{len(topo.pops)} PoPs do not fit the unicast pool {UNICAST_POOL} (at most {MAX_POPS})"
    claimed: list[tuple[Loc, str, ipaddress.IPv4Network]] = [
        (("anycast",), "the anycast address", topo.anycast.network),
        (("origin", "prefix"), "the origin prefix", topo.origin.prefix),
    ]
    claimed += [
        (("eyeballs", i, "prefix"), f"{e.name}'s client prefix", e.prefix)
        for i, e in enumerate(topo.eyeballs)
        if e.prefix is not None
    ]
    for n, (loc, what, net) in enumerate(claimed):
        for pool_name, pool in reserved:
            if net.overlaps(pool):
                yield loc, f"{what} {net} overlaps {pool_name} {pool} that the lab allocates from"
        for _, other_what, other in claimed[:n]:
            if net.overlaps(other):
                yield loc, f"{what} {net} overlaps {other_what} {other}"
