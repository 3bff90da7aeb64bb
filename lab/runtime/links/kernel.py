"""The kernel side of link shaping, always inside a node (its handle's exec prefix), never the host's.

Which mechanism: netem where the kernel has it (delay, jitter, loss; a TBF child for rate); otherwise an
iptables NFQUEUE rule on the link's egress plus the userspace releaser (lab/runtime/links/releaser.py), with TBF
for rate. Detection tries the real thing on `lo` of one lab node, so it sees exactly what this kernel
(and its module autoloading) allows. ANYCASTLAB_LINK_MECHANISM=netem|nfqueue|none forces a choice.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from ...errors import LabError
from ...shaping import Shaping

DelayKind = Literal["netem", "nfqueue", "none"]
FORCE_ENV = "ANYCASTLAB_LINK_MECHANISM"
TBF_LATENCY_MS = 100  # how long a packet may wait in the rate limiter before it is dropped
NETEM_LIMIT = 100_000  # packets netem may hold: 40 ms at over 1 Mpps


@dataclass(frozen=True)
class Mechanism:
    delay: DelayKind  # what adds delay, jitter and loss
    rate: bool  # TBF present for rate limits
    reason: str  # why this one, for status

    @property
    def name(self) -> str:
        return f"{self.delay}+tbf" if self.rate and self.delay != "none" else self.delay

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "name": self.name}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mechanism:
        return cls(data["delay"], data["rate"], data["reason"])


InNode = Sequence[str]  # a node's exec prefix (NodeHandle.exec): tc and iptables are the node's own


def run_in(node: InNode, argv: Sequence[str], stdin: str | None = None, check: bool = True) -> str:
    """Run a command inside the node; a failure raises LabError with its stderr."""
    out = subprocess.run([*node, *argv], input=stdin, capture_output=True, text=True, timeout=20)
    if check and out.returncode != 0:
        raise LabError(f"{argv[0]} failed in node ({' '.join(node[:4])}): {(out.stderr or out.stdout).strip()}")
    return out.stdout


def _tries(node: InNode, argv: list[str]) -> bool:
    return subprocess.run([*node, *argv], capture_output=True, timeout=20).returncode == 0


def detect(pid: int, node: InNode) -> Mechanism:
    """The best mechanism this kernel offers, tried on `lo` inside the node (`pid` holds its namespace;
    `node` runs its tools), then undone."""
    rate = _tries(node, ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "tbf", "rate", "1gbit",
                        "burst", "64kb", "latency", "10ms"])
    if rate:
        _tries(node, ["tc", "qdisc", "del", "dev", "lo", "root"])
    forced = os.environ.get(FORCE_ENV)
    if forced in ("netem", "nfqueue", "none"):
        return Mechanism(forced, rate, f"forced by {FORCE_ENV}")  # type: ignore[arg-type]
    if _tries(node, ["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:", "netem", "delay", "1ms"]):
        _tries(node, ["tc", "qdisc", "del", "dev", "lo", "root"])
        return Mechanism("netem", rate, "the kernel has sch_netem")
    if not Path(f"/proc/{pid}/net/netfilter/nfnetlink_queue").exists():
        return Mechanism("none", rate, "no sch_netem and no NFQUEUE in this kernel: links are not delayed")
    if not _tries(node, ["iptables", "--version"]):
        return Mechanism("none", rate, "no sch_netem, and iptables is not installed: links are not delayed")
    return Mechanism("nfqueue", rate, "no sch_netem in this kernel: NFQUEUE and a userspace releaser")


def _tbf(bps: int) -> str:
    burst = max(3200, bps // 8 // 100)  # 10 ms worth of bytes, at least two full frames
    return f"tbf rate {bps}bit burst {burst} latency {TBF_LATENCY_MS}ms"


def qdisc_commands(interface: str, shaping: Shaping, mechanism: Mechanism) -> list[str]:
    """`tc -batch` lines that put `shaping` on the interface's egress (after deleting whatever was there)."""
    lines = [f"qdisc del dev {interface} root"]  # -force keeps going when there was none
    rate = shaping.rate_bps if mechanism.rate else None
    if mechanism.delay == "netem" and (shaping.needs_delay or rate):
        netem = f"netem limit {NETEM_LIMIT} delay {shaping.delay_ms}ms"
        if shaping.jitter_ms:
            netem += f" {shaping.jitter_ms}ms"
        if shaping.loss_pct:
            netem += f" loss {shaping.loss_pct}%"
        lines.append(f"qdisc add dev {interface} root handle 1: {netem}")
        if rate:
            lines.append(f"qdisc add dev {interface} parent 1:1 handle 10: {_tbf(rate)}")
    elif rate:
        lines.append(f"qdisc add dev {interface} root handle 1: {_tbf(rate)}")
    return lines


def apply_qdiscs(node: InNode, lines: list[str]) -> None:
    if lines:
        run_in(node, ["tc", "-force", "-batch", "-"], stdin="\n".join(lines) + "\n", check=False)
        # `del` of a missing root qdisc fails harmlessly; check that every `add` took.
        added = [line for line in lines if " add " in f" {line} "]
        if added:
            shown = run_in(node, ["tc", "qdisc", "show"])
            for line in added:
                interface = line.split()[3]
                kind = "netem" if "netem" in line else "tbf"
                if not any(f"qdisc {kind}" in s and f"dev {interface} " in s for s in shown.splitlines()):
                    raise LabError(f"tc could not add {kind} on {interface} ({' '.join(node[:4])})")


def nfqueue_rule(interface: str, queue: int) -> list[str]:
    """Every packet leaving by `interface` goes to `queue`; with no releaser bound it passes untouched."""
    return ["POSTROUTING", "-o", interface, "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass"]


def set_nfqueue_rules(node: InNode, wanted: dict[str, int], present: dict[str, int]) -> None:
    """Make the node's mangle POSTROUTING hold exactly `wanted` (interface -> queue) of our rules."""
    lines = [" ".join(["-D", *nfqueue_rule(i, q)]) for i, q in present.items() if wanted.get(i) != q]
    lines += [" ".join(["-A", *nfqueue_rule(i, q)]) for i, q in wanted.items() if present.get(i) != q]
    if lines:
        run_in(node, ["iptables-restore", "-w", "5", "--noflush"], stdin="*mangle\n" + "\n".join(lines) + "\nCOMMIT\n")
