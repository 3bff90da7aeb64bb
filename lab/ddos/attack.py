"""What an attack sends, from where, to where, and how the PoPs react: parsed from the verb's options and
checked against the lab before anything is started, each error naming the option at fault."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..errors import LabError
from ..plan import Node, Plan

Policy = Literal["absorb", "withdraw", "prepend"]
POLICIES: tuple[Policy, ...] = ("absorb", "withdraw", "prepend")
MAX_DURATION_S = 60.0
# The most this 2-core machine was measured to carry on the default topology with every packet counted and
# legitimate requests unharmed (bench/ddos_capacity.py; every delayed packet crosses one userspace releaser).
# A world-sized lab runs out of CPU sooner: see README, "Attacks".
MAX_TOTAL_PPS = 10000
MAX_BOT_PPS = 2000  # hping3's -i u<interval> pacing is accurate up to about this per process
FLOOD_PORT = 9  # UDP discard: nothing in the lab listens there, so the PoPs' counters see only the flood
PAYLOAD_BYTES = 64


@dataclass(frozen=True)
class Attack:
    bots: int
    pps: int  # total, all bots together
    duration_s: float
    spread: tuple[str, ...] | None  # None: even over every ISP; else the ISPs that hold the bots
    target: str | None  # None: the anycast address; else a PoP, at its unicast address
    policy: Policy = "absorb"
    threshold_pps: float | None = None

    @property
    def per_bot_pps(self) -> float:
        return self.pps / self.bots

    @property
    def per_bot_count(self) -> int:
        return max(1, round(self.per_bot_pps * self.duration_s))

    @property
    def sent_planned(self) -> int:
        return self.per_bot_count * self.bots

    def address(self, plan: Plan) -> str:
        return str(plan.topology.anycast.ip if self.target is None else plan.unicast_of(self.target))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["spread"] = "even" if self.spread is None else "concentrated:" + ",".join(self.spread)
        data["target"] = "anycast" if self.target is None else f"pop:{self.target}"
        return data


def parse_spread(text: str) -> tuple[str, ...] | None:
    if text == "even":
        return None
    if text.startswith("concentrated:"):
        isps = tuple(dict.fromkeys(s.strip() for s in text.removeprefix("concentrated:").split(",") if s.strip()))
        if isps:
            return isps
    raise LabError(f"--spread {text!r}: use even or concentrated:ISP[,ISP...]")


def parse_target(text: str) -> str | None:
    if text == "anycast":
        return None
    if text.startswith("pop:") and text.removeprefix("pop:"):
        return text.removeprefix("pop:")
    raise LabError(f"--target {text!r}: use anycast or pop:POP")


def check(attack: Attack, plan: Plan) -> None:
    """Every bound and every name, against this lab: raises one LabError naming the option."""
    if attack.bots < 1:
        raise LabError(f"--bots {attack.bots}: at least one bot")
    if not 0 < attack.duration_s <= MAX_DURATION_S:
        raise LabError(f"--duration {attack.duration_s:g}: between 0 and {MAX_DURATION_S:g} s")
    if not 1 <= attack.pps <= MAX_TOTAL_PPS:
        raise LabError(f"--pps {attack.pps}: between 1 and {MAX_TOTAL_PPS} packets per second in total "
                       "(what this machine carries through the lab's delayed links)")
    if attack.per_bot_pps > MAX_BOT_PPS:
        raise LabError(f"--pps {attack.pps} over {attack.bots} bots is {attack.per_bot_pps:.0f} per bot; at most "
                       f"{MAX_BOT_PPS} per bot (add bots)")
    if attack.per_bot_pps < 0.5:
        raise LabError(f"--pps {attack.pps} over {attack.bots} bots is under one packet every 2 s per bot")
    isps = [e.name for e in plan.eyeballs]
    for isp in attack.spread or ():
        if isp not in isps:
            raise LabError(f"--spread: unknown ISP {isp!r} (ISPs: {', '.join(isps)})")
    pops = [p.name for p in plan.pops]
    if attack.target is not None and attack.target not in pops:
        raise LabError(f"--target: unknown PoP {attack.target!r} (PoPs: {', '.join(pops)})")
    if attack.policy not in POLICIES:
        raise LabError(f"--policy {attack.policy!r}: one of {', '.join(POLICIES)}")
    if attack.policy != "absorb" and attack.threshold_pps is None:
        raise LabError(f"--policy {attack.policy} needs --threshold PPS (a PoP above it reacts)")
    if attack.threshold_pps is not None and attack.threshold_pps <= 0:
        raise LabError(f"--threshold {attack.threshold_pps:g}: a positive rate in packets per second")
    if attack.policy != "absorb" and attack.target is not None:
        raise LabError(f"--policy {attack.policy} acts on the anycast route; with --target pop:{attack.target} "
                       "the unicast address is attacked, which no PoP can shed: use --policy absorb")
    hosts = len(bot_hosts(plan, attack))
    if hosts < attack.bots:
        where = "in " + ", ".join(attack.spread) if attack.spread else "in the lab"
        raise LabError(f"--bots {attack.bots}: only {hosts} client hosts {where} (one bot per host, and every "
                       "ISP keeps one legitimate client)")


def bot_hosts(plan: Plan, attack: Attack) -> list[Node]:
    """The hosts bots may take, in the order they are taken: round-robin over the ISPs (topology order), each
    ISP's last client first; every ISP keeps its first client legitimate when it has more than one."""
    isps = [e.name for e in plan.eyeballs if attack.spread is None or e.name in attack.spread]
    by_isp = {isp: [c for c in plan.clients if c.isp == isp] for isp in isps}
    queues = {isp: list(reversed(cs[1:])) if len(cs) > 1 else [] for isp, cs in by_isp.items()}
    order: list[Node] = []
    while any(queues.values()):
        for isp in isps:
            if queues[isp]:
                order.append(queues[isp].pop(0))
    return order


def choose_bots(plan: Plan, attack: Attack) -> list[Node]:
    return bot_hosts(plan, attack)[:attack.bots]
