"""Moving a client to another eyeball ISP on a running lab: a travelling user, re-homed at run time.

The client's access link goes (its veth deleted inside the client's namespace), and a new one to the other ISP
comes, with the first free /31 of that ISP's client prefix, the shaping of an access link in that ISP's city,
and the client's default route through it. ISPs announce their whole client prefix, so BGP changes nothing:
the new /31 is a connected route inside the new ISP. The client's open connections break (its old address is
gone), as a real move breaks them.

plan.json is rewritten with the client's new ISP, address and link, so every later verb, probe and the steering
stub see where the client is now; moves.json keeps each moved client's home (ISP, addresses and the shaping it
had), so `move --home`, a drill's end and an interrupted experiment put it back exactly as it was. A move that
fails half-way puts the client back where it was before raising.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import interrupts
from ..errors import LabError, UnknownNodeError
from ..plan import Interface, Link, Plan
from ..shaping import Deriver, Shaping
from . import filelock, network, paths, planfile
from .links import control
from .state import RunningLab

LOCK_FILE = "moves.lock"
LOCK_TIMEOUT_S = 60.0  # a move takes well under a second; longer means its holder is stuck
Pair = tuple[ipaddress.IPv4Interface, ipaddress.IPv4Interface]  # (the ISP's end, the client's end)


@dataclass(frozen=True)
class Home:
    """Where a moved client came from, to put it back as it was."""

    isp: str
    pair: Pair
    shaping: Shaping
    position: int  # of the client's interface among the ISP's, so the plan comes back exactly

    def to_json(self) -> dict[str, Any]:
        return {"isp": self.isp, "isp_address": str(self.pair[0]), "address": str(self.pair[1]),
                "shaping": self.shaping.to_json(), "position": self.position}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Home:
        pair = (ipaddress.IPv4Interface(data["isp_address"]), ipaddress.IPv4Interface(data["address"]))
        return cls(data["isp"], pair, Shaping.from_json(data["shaping"]), int(data["position"]))


@dataclass(frozen=True)
class Moved:
    """What one move did, for the CLI, drills and experiments."""

    client: str
    isp_from: str
    isp_to: str
    address: str  # the client's address now
    gateway: str  # its ISP's end of the new link
    home: str  # the client's ISP in the topology
    shaping: Shaping  # the new access link's
    took_s: float

    def to_json(self) -> dict[str, Any]:
        return {"client": self.client, "from": self.isp_from, "to": self.isp_to, "address": self.address,
                "gateway": self.gateway, "home": self.home, "at_home": self.isp_to == self.home,
                "delay_ms": self.shaping.delay_ms, "took_s": round(self.took_s, 3)}


# -- the plan ---------------------------------------------------------------------------------------------

def check_client(plan: Plan, client: str) -> None:
    if client not in plan.nodes:
        raise UnknownNodeError(client, list(plan.nodes))
    if plan.nodes[client].role != "client":
        raise LabError(f"{client} is a {plan.nodes[client].role}, not a client: only clients move "
                       f"(clients: {', '.join(c.name for c in plan.clients)})")


def check(plan: Plan, client: str, isp: str) -> None:
    """LabError (before anything is touched) unless `client` is a client and `isp` an eyeball ISP."""
    check_client(plan, client)
    if isp not in plan.nodes:
        raise UnknownNodeError(isp, list(plan.nodes))
    if plan.nodes[isp].role != "eyeball":
        raise LabError(f"{isp} is a {plan.nodes[isp].role}, not an eyeball ISP "
                       f"(eyeballs: {', '.join(e.name for e in plan.eyeballs)})")


def free_pair(plan: Plan, isp: str) -> Pair:
    """The first /31 of the ISP's client prefix that no interface in the plan uses."""
    block = plan.nodes[isp].announce[0]
    used = [i.address.network for n in plan.nodes.values() for i in n.interfaces]
    for net in block.subnets(new_prefix=31):
        if not any(net.overlaps(u) for u in used):
            return ipaddress.IPv4Interface(f"{net[0]}/31"), ipaddress.IPv4Interface(f"{net[1]}/31")
    raise LabError(f"{isp}'s client prefix {block} has no free /31 left for another client")


def access_link(plan: Plan, client: str) -> Link:
    isp = plan.nodes[client].isp
    link = plan.link(isp, client) if isp is not None else None
    if link is None:
        raise LabError(f"{client} has no access link in the lab's plan")
    return link


def position(plan: Plan, client: str) -> int:
    """Where the client's interface sits among its ISP's."""
    isp = plan.nodes[client].isp
    assert isp is not None
    return [i.name for i in plan.nodes[isp].interfaces].index(client)


def rehomed(plan: Plan, client: str, isp: str, pair: Pair, shaping: Shaping, at: int | None = None) -> Plan:
    """A copy of `plan` with `client` attached to `isp` by a link with these addresses (ISP end first), its
    interface at position `at` among the ISP's (None: last). The link keeps its place in the plan's list."""
    old = access_link(plan, client)
    nodes = copy.deepcopy(plan.nodes)
    before = nodes[client].isp
    assert before is not None
    nodes[before].interfaces = [i for i in nodes[before].interfaces if i.name != client]
    interfaces = nodes[isp].interfaces
    interfaces.insert(len(interfaces) if at is None else at, Interface(client, pair[0], client, pair[1].ip))
    nodes[client].interfaces = [Interface(isp, pair[1], isp, pair[0].ip)]
    nodes[client].isp, nodes[client].gateway = isp, pair[0].ip
    new = Link(isp, client, pair[0], pair[1], "access", shaping)
    return Plan(plan.topology, nodes, [new if link is old else link for link in plan.links])


# -- the record of homes ----------------------------------------------------------------------------------

def homes(directory: Path) -> dict[str, Home]:
    """Each client not at home now, with its home."""
    try:
        data = json.loads(paths.moves_file(directory).read_text())
    except FileNotFoundError:
        return {}
    return {client: Home.from_json(entry) for client, entry in data["clients"].items()}


def _save_homes(lab: RunningLab, record: dict[str, Home]) -> None:
    target = paths.moves_file(lab.directory)
    if not record:
        target.unlink(missing_ok=True)
        return
    paths.replace_file(target, json.dumps({"clients": {c: h.to_json() for c, h in record.items()}}, indent=1))


# -- the data plane ---------------------------------------------------------------------------------------

def _detach(lab: RunningLab, link: Link) -> None:
    """Take an access link away (both can run on a half-made link)."""
    control.remove_link(lab.directory, link.a, link.b)
    network.delete_interface(lab.pid(link.b), link.a)


def _attach(lab: RunningLab, link: Link) -> None:
    isp, client = link.a, link.b
    network.add_veth(lab.pid(client), isp, lab.pid(isp), client)
    network.configure_interface(lab.pid(isp), Interface(client, link.a_address, client, link.b_address.ip))
    network.configure_interface(lab.pid(client), Interface(isp, link.b_address, isp, link.a_address.ip),
                                gateway=link.a_address.ip)
    control.add_link(lab.directory, link)


def move(lab: RunningLab, client: str, isp: str) -> Moved:
    """Re-home `client` to `isp` (its home ISP: back exactly as the topology had it). `lab.plan` and plan.json
    follow. Signals wait until the move is whole (it takes well under a second)."""
    check(lab.plan, client, isp)
    started = time.monotonic()
    with interrupts.held(), filelock.locked(lab.directory / LOCK_FILE, LOCK_TIMEOUT_S, "move"):
        record = homes(lab.directory)
        plan = lab.plan
        old = access_link(plan, client)
        current = plan.nodes[client].isp
        assert current is not None
        if current == isp:
            raise LabError(f"{client} is on {isp} already")
        home = record.get(client) or Home(current, (old.a_address, old.b_address),
                                          control.current(lab.directory).get(frozenset((old.a, old.b)), old.shaping),
                                          position(plan, client))
        at: int | None = None
        if isp == home.isp:
            pair, shaping, at = home.pair, home.shaping, home.position
        else:
            pair = free_pair(plan, isp)
            shaping = Deriver(plan.topology).shaping(isp, client, b_at=isp)
        after = rehomed(plan, client, isp, pair, shaping, at)
        new = access_link(after, client)
        if isp != home.isp:  # recorded before the data plane changes: a crash half-way still knows the home
            _save_homes(lab, {**record, client: home})
        try:
            _detach(lab, old)
            _attach(lab, new)
        except BaseException as exc:
            with suppress(LabError, OSError):
                _detach(lab, new)
            with suppress(LabError, OSError):
                _attach(lab, old)
            if isp != home.isp and client not in record:
                _save_homes(lab, record)
            raise LabError(f"moving {client} to {isp} failed, and it was put back on {current}: {exc}") from exc
        planfile.save(lab.directory, after)
        lab.plan = after
        _save_homes(lab, {c: h for c, h in {**record, client: home}.items() if c != client or isp != home.isp})
    return Moved(client, current, isp, str(pair[1].ip), str(pair[0].ip), home.isp, shaping,
                 time.monotonic() - started)


def move_home(lab: RunningLab, client: str) -> Moved | None:
    """Back to its home ISP; None when it is home already."""
    check_client(lab.plan, client)
    home = homes(lab.directory).get(client)
    return None if home is None else move(lab, client, home.isp)


def all_home(lab: RunningLab) -> list[Moved]:
    """Every moved client back home (a drill's end, an interrupted experiment, `move --home --all`)."""
    return [m for c in sorted(homes(lab.directory)) if (m := move_home(lab, c)) is not None]
