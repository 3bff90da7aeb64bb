"""Running the steering plane inside a lab: gdnsd in the origin's namespace, one unbound per eyeball ISP in the
ISP router's namespace, each a runtime.service.Service. The supervisor starts them (its children, in the
ledger: `down` ends them); the gate asks `check` whether they answer; the experiment reloads the TTL and
flushes the resolvers between runs.

Both are the nodes' own software, reached through their handles: the host's Debian packages on netns, the
images' on docker (anycastlab/origin has gdnsd, anycastlab/router unbound). Their configuration is written
in the lab's run directory, which every container sees at the same path; gdnsdctl and unbound-control run
in the node too, so nothing here needs the host to have them.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import LabError
from ..runtime import netns, paths
from ..runtime.ledger import Ledger
from ..runtime.service import Command, Launcher, Service
from ..runtime.state import RunningLab
from . import render
from .dnsquery import query
from .plan import SteeringPlan, steering_plan

GDNSD = "/usr/sbin/gdnsd"
GDNSDCTL = "/usr/bin/gdnsdctl"
UNBOUND = "/usr/sbin/unbound"
UNBOUND_CONTROL = "/usr/sbin/unbound-control"
START_TIMEOUT = 15.0


def directory(lab_name: str) -> Path:
    return paths.lab_dir(lab_name) / "steering"


def gdnsd_dir(lab_name: str) -> Path:
    return directory(lab_name) / "gdnsd"


def resolver_dir(lab_name: str, isp: str) -> Path:
    return directory(lab_name) / "unbound" / isp


def write_gdnsd(lab_name: str, sp: SteeringPlan, serial: int = 1) -> Path:
    folder = gdnsd_dir(lab_name)
    (folder / "zones").mkdir(parents=True, exist_ok=True)
    (folder / "config").write_text(render.gdnsd_config(sp, folder))
    (folder / "zones" / sp.config.zone).write_text(render.zone_file(sp, serial))
    return folder


class Gdnsd(Service):
    """The authoritative server, in the origin's node; its readiness is the lab-wide `check` the gate asks."""

    name = "steering/gdnsd"

    def __init__(self, lab: RunningLab, sp: SteeringPlan) -> None:
        self.lab, self.sp = lab, sp
        self.node = lab.plan.topology.origin.name

    def command(self) -> Command:
        folder = gdnsd_dir(self.lab.name)
        return Command([GDNSD, "-c", str(folder), "start"], folder / "gdnsd.log")

    def prepare(self, ledger: Ledger) -> None:
        """Its configuration and zone, checked by gdnsd itself (a LabError names what it rejected)."""
        del ledger  # inside the steering directory, ledgered by `start`
        folder = write_gdnsd(self.lab.name, self.sp)
        check = subprocess.run(self.lab.exec_argv(self.node, [GDNSD, "-c", str(folder), "checkconf"]),
                               capture_output=True, text=True, timeout=30)
        if check.returncode != 0:
            raise LabError(f"gdnsd rejected the rendered configuration: {check.stderr.strip()[-400:]}")


class Unbound(Service):
    """One eyeball ISP's resolver, in the ISP router's node."""

    def __init__(self, lab: RunningLab, sp: SteeringPlan, isp: str) -> None:
        self.lab, self.sp, self.isp = lab, sp, isp
        self.name, self.node = f"steering/unbound-{isp}", isp

    def _conf(self) -> Path:
        return resolver_dir(self.lab.name, self.isp) / "unbound.conf"

    def command(self) -> Command:
        return Command([UNBOUND, "-d", "-c", str(self._conf())], self._conf().with_name("unbound.log"))

    def prepare(self, ledger: Ledger) -> None:
        del ledger  # inside the steering directory, ledgered by `start`
        rdir = self._conf().parent
        rdir.mkdir(parents=True, exist_ok=True)
        resolver = self.sp.resolvers[self.isp]
        self._conf().write_text(render.unbound_config(self.sp.config, resolver, str(self.sp.authoritative), rdir))


def services(lab: RunningLab) -> list[Service]:
    """gdnsd and every ISP's unbound, when the lab has steering.dns on."""
    sp = steering_plan(lab.plan)
    if sp is None:
        return []
    return [Gdnsd(lab, sp), *(Unbound(lab, sp, isp) for isp in sp.resolvers)]


def start(lab: RunningLab, launch: Launcher, emit: Callable[[str, str], object]) -> None:
    """Put each resolver's address on its ISP router's loopback, then start gdnsd and every unbound."""
    sp = steering_plan(lab.plan)
    if sp is None:
        return
    origin = lab.plan.topology.origin.name
    for node, tools in ((origin, [GDNSD, GDNSDCTL]), *((isp, [UNBOUND, UNBOUND_CONTROL]) for isp in sp.resolvers)):
        if missing := lab.missing_tools(node, tools):
            where = ("the host's Debian packages gdnsd and unbound: `make deps`" if lab.runtime == "netns" else
                     "its image: anycastlab/origin has gdnsd and anycastlab/router unbound (`anycastlab images build`)")
            raise LabError(f"steering.dns needs {', '.join(missing)} in {node} ({where})")
    ledger = Ledger(paths.ledger_file(lab.directory))
    ledger.record("dir", "steering", path=str(directory(lab.name)))
    emit("steering", f"starting gdnsd on {origin} and unbound in "
                     f"{len(sp.resolvers)} ISPs (TTL {sp.config.ttl} s)")
    for resolver in sp.resolvers.values():
        with netns.iproute(lab.pid(resolver.isp)) as ipr:
            ipr.addr("add", index=ipr.link_lookup(ifname="lo")[0], address=str(resolver.address), prefixlen=32)
    for service in services(lab):
        service.start(lab, launch)


def gdnsdctl(lab: RunningLab, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """gdnsdctl, in the origin's node, on the lab's gdnsd (`-t`: its own timeout, well inside ours)."""
    argv = [GDNSDCTL, "-c", str(gdnsd_dir(lab.name)), "-o", "-t", f"{timeout:g}", *args]
    return subprocess.run(lab.exec_argv(lab.plan.topology.origin.name, argv), capture_output=True, text=True,
                          timeout=2 * timeout)


def states(lab: RunningLab) -> dict[str, str]:
    """gdnsd's monitored state of each PoP (`UP`, `DOWN`, ...), by PoP unicast address."""
    out = gdnsdctl(lab, "states", timeout=5)
    if out.returncode != 0:
        raise LabError(f"gdnsdctl states failed: {out.stderr.strip()[-300:]}")
    data: Any = json.loads(out.stdout)  # {"192.0.2.1/proxy": {"state": "UP", "real_state": "UP"}, ...}
    return {name.split("/", 1)[0]: str(value.get("state", "?")) for name, value in data.items()
            if name.endswith(f"/{render.SERVICE}") and isinstance(value, dict)}


def pop_states(lab: RunningLab) -> dict[str, str]:
    """gdnsd's state of each PoP, by PoP name."""
    sp = steering_plan(lab.plan)
    if sp is None:
        return {}
    raw = states(lab)
    return {pop: raw.get(str(address), "unknown") for pop, address in sp.unicast.items()}


def check(lab: RunningLab) -> list[str]:
    """What is not ready yet: a resolver that does not answer the anycast name with the anycast address, gdnsd
    not answering the steered name with an ISP's first-choice PoP (its answers lag `gdnsdctl states` by up to
    a couple of seconds at start), or a PoP gdnsd does not see UP."""
    sp = steering_plan(lab.plan)
    if sp is None:
        return []
    missing = []
    origin = lab.plan.topology.origin.name
    for resolver in sp.resolvers.values():  # gdnsd's own answer for each ISP (EDNS client-subnet)
        steered = query(lab.pid(origin), str(sp.authoritative), sp.config.name, timeout_s=0.5, tries=1,
                        subnet=resolver.network)
        want = str(sp.unicast[resolver.pops[0]])
        if steered is None or steered.address != want:
            missing.append(f"gdnsd answers {sp.config.name} for {resolver.isp} with "
                           f"{'nothing' if steered is None else steered.address}, not {want} "
                           f"({resolver.pops[0]})")
    try:
        down = [pop for pop, state in pop_states(lab).items() if not state.startswith("UP")]
        if down:
            missing.append(f"gdnsd's health checks do not see {', '.join(down)} up yet")
    except (LabError, ValueError, subprocess.TimeoutExpired) as exc:
        missing.append(f"gdnsd's states: {exc}")
    for resolver in sp.resolvers.values():
        answer = query(lab.pid(resolver.isp), str(resolver.address), sp.config.anycast_name, timeout_s=0.5, tries=1)
        if answer is None or answer.addresses != (str(sp.anycast),):
            missing.append(f"{resolver.isp}'s resolver {resolver.address} does not answer {sp.config.anycast_name}")
    return missing


def set_ttl(lab: RunningLab, ttl: int, serial: int) -> SteeringPlan:
    """Serve both names at `ttl` from now on (zone rewritten, gdnsd reloaded); the caller flushes resolvers."""
    sp = steering_plan(lab.plan)
    if sp is None:
        raise LabError(f"lab {lab.name} has no steering.dns")
    sp = replace(sp, config=sp.config.model_copy(update={"ttl": ttl}))
    folder = gdnsd_dir(lab.name)
    (folder / "zones" / sp.config.zone).write_text(render.zone_file(sp, serial))
    out = gdnsdctl(lab, "reload-zones", timeout=10)
    if out.returncode != 0:
        raise LabError(f"gdnsd did not reload its zone: {out.stderr.strip()[-300:]}")
    return sp


def flush_resolvers(lab: RunningLab) -> None:
    """Empty every ISP resolver's cache for the lab's zone (between the experiment's runs)."""
    sp = steering_plan(lab.plan)
    if sp is None:
        return
    for resolver in sp.resolvers.values():
        conf = resolver_dir(lab.name, resolver.isp) / "unbound.conf"
        out = subprocess.run(lab.exec_argv(resolver.isp, [UNBOUND_CONTROL, "-c", str(conf), "flush_zone",
                                                          sp.config.zone]), capture_output=True, text=True, timeout=10)
        if out.returncode != 0:
            raise LabError(f"{resolver.isp}'s unbound did not flush: {(out.stderr or out.stdout).strip()[-200:]}")


def wait_ready(lab: RunningLab, timeout: float = START_TIMEOUT) -> list[str]:
    """Poll `check` until nothing is missing or `timeout`; what is still missing (empty when ready)."""
    deadline = time.monotonic() + timeout
    while True:
        missing = check(lab)
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(0.25)
