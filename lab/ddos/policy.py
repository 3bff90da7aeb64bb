"""What a PoP over the threshold does (Moura et al., IMC 2016: sites absorb or withdraw): `withdraw` stops
originating the anycast /32 there (its catchment, good and bad traffic alike, moves to the next PoP BGP
picks, which may then cross the threshold itself: a cascade); `prepend` originates it with the edge's AS
prepended three times, so only networks with no other path of equal length stay. The last announcing PoP
is never withdrawn. Every action is undone at the end (and on an interrupt), in reverse order."""

from __future__ import annotations

from dataclasses import dataclass

from ..runtime.state import RunningLab
from ..runtime.vtysh import vtysh
from ..services import edge

PREPENDS = 3
PREPEND_MAP = "DDOS-PREPEND"


@dataclass(frozen=True)
class Action:
    t: float  # seconds since the attack started
    pop: str
    action: str  # withdraw, prepend, kept (the last PoP announcing), restore
    pps: float  # what the PoP received in the second that triggered it

    def to_json(self) -> dict[str, object]:
        return {"t": round(self.t, 2), "pop": self.pop, "action": self.action, "pps": round(self.pps, 1)}


def _network(lab: RunningLab, pop: str, route_map: str) -> None:
    plan = lab.plan
    vtysh(lab.vty(pop), "configure terminal", f"router bgp {plan.topology.asn}", "address-family ipv4 unicast",
          f"network {plan.topology.anycast.network} route-map {route_map}")


def prepend(lab: RunningLab, pop: str) -> None:
    """Originate the anycast /32 through a route-map that prepends, then applies ORIGINATE's communities."""
    asn = lab.plan.topology.asn
    vtysh(lab.vty(pop), "configure terminal", f"route-map {PREPEND_MAP} permit 10",
          f"set as-path prepend {' '.join([str(asn)] * PREPENDS)}", "call ORIGINATE", "exit")
    _network(lab, pop, PREPEND_MAP)


def unprepend(lab: RunningLab, pop: str) -> None:
    _network(lab, pop, "ORIGINATE")
    vtysh(lab.vty(pop), "configure terminal", f"no route-map {PREPEND_MAP}")


def withdraw(lab: RunningLab, pop: str) -> None:
    edge.set_announcement(lab.plan, lab.vty(pop), False)


def announce(lab: RunningLab, pop: str) -> None:
    edge.set_announcement(lab.plan, lab.vty(pop), True)


@dataclass
class Reactor:
    """Applies the policy once per PoP as samples come in, and remembers what to undo."""

    lab: RunningLab
    policy: str
    threshold: float | None
    actions: list[Action]

    def __post_init__(self) -> None:
        self.acted: list[tuple[str, str]] = []  # (pop, action) to undo, in order
        self.withdrawn: set[str] = set()

    def react(self, t: float, pps: dict[str, float]) -> None:
        if self.policy == "absorb" or self.threshold is None:
            return
        done = {pop for pop, _ in self.acted}
        for pop, rate in sorted(pps.items(), key=lambda kv: -kv[1]):
            if rate <= self.threshold or pop in done:
                continue
            if self.policy == "withdraw":
                if len(self.withdrawn) + 1 >= len(self.lab.plan.pops):
                    if not any(a.pop == pop and a.action == "kept" for a in self.actions):
                        self.actions.append(Action(t, pop, "kept", rate))
                    continue
                withdraw(self.lab, pop)
                self.withdrawn.add(pop)
            else:
                prepend(self.lab, pop)
            self.acted.append((pop, self.policy))
            self.actions.append(Action(t, pop, self.policy, rate))

    def undo(self, t: float) -> list[str]:
        """Undo every action, last first; returns what could not be undone."""
        failed = []
        for pop, action in reversed(self.acted):
            try:
                (announce if action == "withdraw" else unprepend)(self.lab, pop)
                self.actions.append(Action(t, pop, "restore", 0.0))
            except Exception as exc:  # keep restoring the others, then say what failed
                failed.append(f"{pop}: {action} not undone ({exc})")
        self.acted.clear()
        self.withdrawn.clear()
        return failed
