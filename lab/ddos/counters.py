"""Per-PoP counts of what the attack delivers: one iptables rule in each PoP's own namespace (raw table,
PREROUTING: before routing and conntrack) that counts and drops the flood, so nothing answers it and the
PoP's proxy and DNS never see it. Tagged with a comment, so removal takes exactly these rules, and only
ever in the lab's PoP namespaces (never the host's)."""

from __future__ import annotations

import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor

from ..errors import LabError
from ..runtime.state import RunningLab
from .attack import FLOOD_PORT

TAG = "anycastlab-ddos"
CHAIN = ("-t", "raw")


def _iptables(lab: RunningLab, pop: str, *args: str) -> str:
    argv = lab.exec_argv(pop, ["iptables", "-w", "5", *CHAIN, *args])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    if out.returncode != 0:
        raise LabError(f"iptables {' '.join(args)} in {pop} failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def install(lab: RunningLab, pops: list[str], address: str) -> None:
    """Count (and drop) UDP to `address`:FLOOD_PORT arriving at each PoP."""
    for pop in pops:
        _iptables(lab, pop, "-I", "PREROUTING", "-d", f"{address}/32", "-p", "udp", "--dport", str(FLOOD_PORT),
                  "-m", "comment", "--comment", TAG, "-j", "DROP")


def read(lab: RunningLab, pops: list[str]) -> dict[str, int]:
    """Packets each PoP's rule has counted so far (read in parallel: one exec per PoP)."""
    def one(pop: str) -> tuple[str, int]:
        total = 0
        for line in _iptables(lab, pop, "-nvxL", "PREROUTING").splitlines():
            if TAG in line:
                total += int(line.split()[0])
        return pop, total

    with ThreadPoolExecutor(max_workers=min(8, len(pops) or 1)) as pool:
        return dict(pool.map(one, pops))


def tagged(lab: RunningLab, pop: str) -> list[list[str]]:
    return [shlex.split(line)[1:] for line in _iptables(lab, pop, "-S", "PREROUTING").splitlines()
            if line.startswith("-A ") and TAG in line]


def remove(lab: RunningLab, pops: list[str]) -> list[str]:
    """Delete every tagged rule; returns the PoPs where one could not be removed (the lab may be going down)."""
    failed = []
    for pop in pops:
        try:
            for rule in tagged(lab, pop):
                _iptables(lab, pop, "-D", *rule)
            if tagged(lab, pop):
                failed.append(pop)
        except (LabError, OSError, subprocess.TimeoutExpired):
            failed.append(pop)
    return failed
