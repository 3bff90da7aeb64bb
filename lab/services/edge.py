"""The edge services of a lab: the origin server, one proxy and one DNS identity service per PoP (each a
runtime.service.Service: started, checked and stopped the one way), and health-driven announcement.

A PoP whose proxy is dead or fails its health check stops announcing the anycast /32 (its `network`
statement is removed through vtysh), so BGP moves its clients to another PoP; it announces again once
the proxy is healthy.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..edge import mgmt
from ..edge.endpoints import HTTP_PORT, HTTPS_PORT, origin_url, proxy_socket
from ..edge.tls import ensure_ca
from ..errors import LabError
from ..plan import Plan
from ..runtime import paths
from ..runtime.ledger import Ledger
from ..runtime.service import Command, Health, Service
from ..runtime.vtysh import Vty, vtysh


def module_argv(*args: str) -> list[str]:
    """Run an anycastlab verb with this interpreter (the lab's own virtualenv)."""
    return [sys.executable, "-m", "anycastlab", *args]


def origin_argv(plan: Plan, lab: str) -> list[str]:
    node = plan.nodes[plan.topology.origin.name]
    listen = [f"{node.loopback}:{HTTP_PORT}", *(f"{a.ip}:{HTTP_PORT}" for a in node.lo_addresses)]
    control = paths.lab_dir(lab) / "origin" / "control.sock"
    args = ["origin", "--name", node.name, "--control-socket", str(control)]
    for address in listen:
        args += ["--listen", address]
    # HTTPS on the public address only, so `anycastlab compare` can time a visit with no edge at all.
    args += ["--ca-dir", str(paths.ca_dir(lab)), *(f"--tls-listen={a.ip}:{HTTPS_PORT}" for a in node.lo_addresses)]
    for hostname in plan.topology.hostnames:
        args += ["--hostname", hostname]
    return module_argv(*args)


def service_addresses(plan: Plan, pop: str) -> list[str]:
    """Where a PoP's proxy and DNS identity service answer: the anycast address and the PoP's unicast one."""
    return [str(plan.topology.anycast.ip), str(plan.unicast_of(pop))]


def dns_argv(plan: Plan, pop: str) -> list[str]:
    """The PoP's DNS identity service (lab/services/pop_dns.py) on each of its service addresses."""
    args = [sys.executable, "-m", "anycastlab.services.pop_dns", "--pop", pop]
    for address in service_addresses(plan, pop):
        args += ["--listen", address]
    return args


def proxy_argv(plan: Plan, lab: str, pop: str) -> list[str]:
    """A PoP's proxy on the anycast and its unicast address; with a tiered cache, a lower tier fetches from its
    upper tier, which also listens on its backbone loopback (lab/backbone/tiered.py)."""
    from ..backbone.tiered import enabled_in, extra_listen, origin_for

    args = ["proxy"]
    for address in service_addresses(plan, pop):
        args += ["--listen", f"{address}:{HTTP_PORT}", "--tls-listen", f"{address}:{HTTPS_PORT}"]
    args += ["--origin", origin_for(plan, pop, origin_url(plan), enabled_in(lab, plan)), "--pop", pop,
            "--mgmt-socket", str(proxy_socket(lab, pop)), "--ca-dir", str(paths.ca_dir(lab))]
    for address in extra_listen(plan, pop):
        args += ["--listen", address]
    for hostname in certificate_names(plan):
        args += ["--hostname", hostname]
    return module_argv(*args)


def certificate_names(plan: Plan) -> list[str]:
    """The names PoP certificates cover: the topology's, and with DNS steering on its two names as well."""
    names = list(plan.topology.hostnames)
    dns = plan.topology.steering.dns
    if dns is not None and dns.enabled:
        names += [n for n in (dns.anycast_name, dns.name) if n not in names]
    return names


def proxy_health(lab: str, pop: str) -> Health:
    """A PoP's proxy as its management socket answers (0.5 s at most): the Proxy service's health check."""
    return mgmt.health_state(proxy_socket(lab, pop), timeout=0.5)


def proxy_healthy(lab: str, pop: str) -> bool:
    return proxy_health(lab, pop) == "ok"


def _pop_dir(lab: str, pop: str, ledger: Ledger) -> Path:
    """The PoP's service directory, made (and ledgered, so `clean` removes it) by the first service to need it."""
    directory = paths.pop_dir(lab, pop)
    if not directory.exists():
        directory.mkdir(parents=True, exist_ok=True)
        ledger.record("dir", f"pop-{pop}", path=str(directory))
    return directory


class PopService(Service):
    """A service of one PoP, in the PoP's node, logging to `<kind>.log` in the PoP's directory."""

    kind: ClassVar[str] = ""

    def __init__(self, plan: Plan, lab: str, pop: str) -> None:
        self.plan, self.lab, self.pop = plan, lab, pop
        self.name, self.node = f"{pop}/{self.kind}", pop

    @property
    def log(self) -> Path:
        return paths.pop_dir(self.lab, self.pop) / f"{self.kind}.log"


class PopDns(PopService):
    """The PoP's DNS identity service (pop_dns.py). No check of its own: alive is healthy."""

    kind = "dns"

    def command(self) -> Command:
        return Command(dns_argv(self.plan, self.pop), self.log)

    def prepare(self, ledger: Ledger) -> None:
        _pop_dir(self.lab, self.pop, ledger)


class Proxy(PopService):
    """The PoP's edge proxy; healthy when its management socket says it serves."""

    kind = "proxy"

    def command(self) -> Command:
        return Command(proxy_argv(self.plan, self.lab, self.pop), self.log)

    def prepare(self, ledger: Ledger) -> None:
        _pop_dir(self.lab, self.pop, ledger)
        ensure_ca(paths.ca_dir(self.lab))

    def health(self) -> Health:
        return proxy_health(self.lab, self.pop)


class Origin(Service):
    """The lab's origin server, in the origin's node. No check of its own: its listeners are what the drills'
    origin-down closes, while the process stays up."""

    def __init__(self, plan: Plan, lab: str) -> None:
        self.plan, self.lab = plan, lab
        self.node = plan.topology.origin.name
        self.name = f"{self.node}/origin-server"

    def command(self) -> Command:
        return Command(origin_argv(self.plan, self.lab), paths.lab_dir(self.lab) / "origin" / "origin.log")

    def prepare(self, ledger: Ledger) -> None:
        del ledger  # inside the run directory, which `down` removes
        (paths.lab_dir(self.lab) / "origin").mkdir(exist_ok=True)
        ensure_ca(paths.ca_dir(self.lab))


def edge_services(plan: Plan, lab: str) -> tuple[list[PopDns], Origin, list[Proxy]]:
    """Every edge service of the lab: the PoPs' DNS identity services, the origin and the PoPs' proxies."""
    return ([PopDns(plan, lab, p.name) for p in plan.pops], Origin(plan, lab),
            [Proxy(plan, lab, p.name) for p in plan.pops])


def set_announcement(plan: Plan, vty: Vty, on: bool) -> None:
    """Start or stop originating the anycast /32 at a PoP. Its other routes, its unicast /32 among them, are
    untouched: DNS steering's health checks, not BGP, take a PoP with a dead proxy out of its answers."""
    statement = f"network {plan.topology.anycast.network} route-map ORIGINATE"
    vtysh(vty, "configure terminal", f"router bgp {plan.topology.asn}", "address-family ipv4 unicast",
          statement if on else f"no {statement}")


SLOW_POLLS = 3  # consecutive timed-out health checks before a live but unresponsive proxy is withdrawn


@dataclass
class HealthWatch:
    """Remembers each PoP's proxy health and withdraws or re-announces on each change.

    A dead proxy (socket refused or gone, or a 503) is withdrawn at the first poll. One slow answer is not
    enough: on a loaded machine a single check can miss its 0.5 s deadline, and withdrawing a healthy PoP
    for that moved clients for nothing; SLOW_POLLS in a row are."""

    plan: Plan
    proxies: list[Proxy]
    vty_of: Callable[[str], Vty]
    healthy: dict[str, bool]
    slow: dict[str, int] = field(default_factory=dict)

    def poll(self) -> list[tuple[str, bool]]:
        changes = []
        for proxy in self.proxies:
            pop = proxy.pop
            was = self.healthy.get(pop, True)
            state = proxy.health()
            self.slow[pop] = self.slow.get(pop, 0) + 1 if state == "slow" else 0
            now = state == "ok" or (state == "slow" and was and self.slow[pop] < SLOW_POLLS)
            if now != was:
                try:
                    set_announcement(self.plan, self.vty_of(pop), now)
                except LabError:
                    continue  # FRR itself is down (a drill); try again on the next poll
                self.healthy[pop] = now
                changes.append((pop, now))
        return changes
