"""Bots: hping3 (Debian's, a real packet generator: the host's on netns, anycastlab/client's on docker)
inside client hosts of the eyeball ISPs, each sending a fixed count of UDP packets at a fixed interval (`-c`,
`-i u<us>`; never `--flood`) to the target, wrapped in `timeout` so it also stops in time. Each bot is a
recorded process of the lab (ledger), ended by its pid."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabError
from ..runtime import procs
from ..runtime.ledger import Ledger
from ..runtime.paths import ledger_file
from ..runtime.state import RunningLab
from .attack import FLOOD_PORT, PAYLOAD_BYTES, Attack

SENT_RE = re.compile(r"(\d+) packets (?:tramitted|transmitted)")  # hping3 spells it "tramitted"
GRACE_S = 5.0  # beyond the attack's duration before `timeout` stops a bot that fell behind its pace


@dataclass
class Bot:
    host: str
    isp: str
    popen: subprocess.Popen[bytes]
    start: float | None
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def sent(self) -> int | None:
        """What hping3 says it sent (its statistics line at exit), or None if it has not printed them."""
        found = SENT_RE.findall(self.log.read_text(errors="replace")) if self.log.exists() else []
        return int(found[-1]) if found else None


def argv(attack: Attack, address: str) -> list[str]:
    interval_us = max(1, round(1e6 / attack.per_bot_pps))
    return ["timeout", "-s", "INT", f"{attack.duration_s + GRACE_S:g}", "hping3", "--udp", "-p", str(FLOOD_PORT),
            "-d", str(PAYLOAD_BYTES), "-c", str(attack.per_bot_count), "-i", f"u{interval_us}", "-q", "-n", address]


def preflight(lab: RunningLab, hosts: list[str]) -> None:
    """Every bot host has hping3, asked before the attack changes anything."""
    for host in dict.fromkeys(hosts):
        if lab.missing_tools(host, ["hping3"]):
            where = ("apt-get install hping3; `make up` installs it" if lab.runtime == "netns" else
                     "its image has none: anycastlab/client has it (`anycastlab images build`)")
            raise LabError(f"ddos needs hping3 in the bots' client {host} ({where})")


def start(lab: RunningLab, attack: Attack, hosts: list[tuple[str, str]], directory: Path) -> list[Bot]:
    """One hping3 per (host, isp), started as close together as the machine allows."""
    directory.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(ledger_file(lab.directory))
    command = argv(attack, attack.address(lab.plan))
    bots = []
    for host, isp in hosts:
        log = directory / f"{host}.log"
        proc = procs.spawn(command, prefix=lab.handle(host).spawn, log=log)
        start_t = procs.start_time(proc.pid)
        ledger.record("process", f"ddos/{host}", pid=proc.pid, start=start_t)
        bots.append(Bot(host, isp, proc, start_t, log))
    return bots


def running(bots: list[Bot]) -> bool:
    return any(b.popen.poll() is None for b in bots)


def stop(bots: list[Bot]) -> None:
    procs.terminate([(b.pid, b.start) for b in bots], grace=2.0)
