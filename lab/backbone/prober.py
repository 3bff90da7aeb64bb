"""The backbone prober: one lab child process that measures every backbone link's RTT and, with smart
routing on, turns the measurements into OSPF interface costs.

Every backbone router (each PoP and the origin) pings each of its backbone neighbours over the direct
link, PROBE_HZ times a second, from a raw ICMP socket opened inside that router's namespace (one process
serves them all: a socket stays in the namespace it was created in). Echo replies come from the
neighbour's kernel, so nothing needs to run on the far side. Once a second, each link's median RTT (both
ends' probes) goes through costs.LinkEstimate's hysteresis, and the link's cost is set with vtysh (`ip ospf
cost`) on both ends, so both directions of a path agree. An end whose vtysh failed is tried again the
next second.

An ospfd that restarts (a drill) comes back with frr.conf's default costs: its pid file is checked every
second, and a new pid has its costs set again at once; every RESYNC_INTERVAL the costs ospfd reports are
compared with ours as well. The mode file (`backbone/smart`, "on" or "off") is re-read every second; `off`
puts OSPF's default costs back (fewest hops). What the prober sees is written to `backbone/state.json` for
`anycastlab backbone show`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import select
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from ..errors import LabError
from ..model import BACKBONE_POOL
from ..plan import Plan
from ..runtime import handles, nsenter, paths, planfile, procs
from ..runtime.handles import NodeHandle
from ..runtime.vtysh import Vty, vtysh, vtysh_json
from .costs import LinkEstimate

PROBE_HZ = 4.0  # probes per second per link direction: 4 x 2 x links, a few hundred bytes/s in all
PROBE_TIMEOUT = 2.0  # a reply later than this counts as lost
EVAL_INTERVAL = 1.0
RESYNC_INTERVAL = 15.0  # how often the costs in force are checked against ours (an ospfd restarted by a drill)
MAX_CHANGES_KEPT = 50
ICMP_ECHO, ICMP_ECHO_REPLY = 8, 0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def state_dir(lab: str) -> Path:
    return paths.lab_dir(lab) / "backbone"


def mode_file(lab: str) -> Path:
    return state_dir(lab) / "smart"


def state_file(lab: str) -> Path:
    return state_dir(lab) / "state.json"


def backbone_interfaces(plan: Plan) -> list[tuple[str, str, str, str]]:
    """(router, interface, neighbour, neighbour address) for every backbone link end, in plan order."""
    out = []
    for node in plan.routers:
        if not node.ospf:
            continue
        for intf in node.interfaces:
            if intf.address.network.subnet_of(BACKBONE_POOL):
                out.append((node.name, intf.name, intf.peer, str(intf.peer_address)))
    return out


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def echo_request(ident: int, seq: int) -> bytes:
    payload = b"anycastlab-backbone"
    header = struct.pack("!BBHHH", ICMP_ECHO, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ICMP_ECHO, 0, checksum(header + payload), ident, seq) + payload


def received_at(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The kernel's receive time (SO_TIMESTAMPNS) of a packet, or now if the kernel gave none."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("@qq", data[:16])
            return float(sec) + float(nsec) / 1e9
    return time.time()


def parse_reply(packet: bytes) -> tuple[int, int] | None:
    """(ident, seq) of an ICMP echo reply in a raw IPv4 packet, or None for anything else."""
    if len(packet) < 20:
        return None
    ihl = (packet[0] & 0x0F) * 4
    if len(packet) < ihl + 8 or packet[ihl] != ICMP_ECHO_REPLY:
        return None
    ident, seq = struct.unpack("!HH", packet[ihl + 4:ihl + 8])
    return ident, seq


@dataclass
class Target:
    """One end of a backbone link: the router that probes it, and the cost its ospfd has from us."""

    router: str
    interface: str
    peer: str
    address: str
    ident: int
    estimate: LinkEstimate = field(default_factory=LinkEstimate)  # shared with the other end
    in_force: int | None = None  # the cost this end's ospfd has (as far as we know); None: OSPF's default
    seq: int = 0
    changes: int = 0


def pending_updates(targets: list[Target], smart: bool) -> dict[str, list[tuple[Target, int | None]]]:
    """Decide each link's cost (hysteresis; OSPF's default when smart routing is off), then per router the
    ends whose ospfd does not have it yet."""
    for estimate in {id(t.estimate): t.estimate for t in targets}.values():
        if not smart:
            estimate.applied, estimate.pending = None, 0
            continue
        cost = estimate.decide()
        if cost is not None:
            estimate.applied = cost
    updates: dict[str, list[tuple[Target, int | None]]] = {}
    for target in targets:
        if target.in_force != target.estimate.applied:
            updates.setdefault(target.router, []).append((target, target.estimate.applied))
    return updates


class Prober:
    def __init__(self, lab: str, plan: Plan, nodes: dict[str, NodeHandle]) -> None:
        self.lab = lab
        self.plan = plan
        self.vtys = {name: Vty(paths.node_dir(lab, name), tuple(h.vtysh)) for name, h in nodes.items()}
        self.sockets: dict[str, socket.socket] = {}
        self.targets: list[Target] = []
        base = os.getpid() & 0x7FFF
        estimates: dict[frozenset[str], LinkEstimate] = {}
        for i, (router, intf, peer, address) in enumerate(backbone_interfaces(plan)):
            estimate = estimates.setdefault(frozenset((router, peer)), LinkEstimate())
            self.targets.append(Target(router, intf, peer, address, (base + i * 7) & 0xFFFF, estimate))
            if router not in self.sockets:
                with nsenter.entered(nodes[router].pid):
                    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
                # Kernel receive timestamps: a reply's RTT does not include the time this loop was busy.
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                sock.setblocking(False)
                self.sockets[router] = sock
        self.by_ident = {t.ident: t for t in self.targets}
        self.in_flight: dict[tuple[int, int], float] = {}  # (ident, seq) -> send time (time.time())
        self.smart = False
        self.changes: list[dict[str, Any]] = []
        self.ospfd_pids: dict[str, int | None] = {r: self.ospfd_pid(r) for r in self.sockets}
        self.start = procs.start_time(os.getpid())  # with the pid, so a reused pid is not taken for us
        self.stop = False

    # -- probing ----------------------------------------------------------------------------------------

    def send_round(self) -> None:
        for target in self.targets:
            target.seq = (target.seq + 1) & 0xFFFF
            self.in_flight[(target.ident, target.seq)] = time.time()
            with contextlib.suppress(OSError):  # a link that is down: the probe is simply lost
                self.sockets[target.router].sendto(echo_request(target.ident, target.seq), (target.address, 0))

    def receive(self, until: float) -> None:
        """Read replies until the monotonic time `until` (bounded: returns by then whatever arrives)."""
        socks = list(self.sockets.values())
        while not self.stop:
            left = until - time.monotonic()
            if left <= 0:
                return
            readable, _, _ = select.select(socks, [], [], left)
            for sock in readable:
                for _ in range(256):  # drain, but never forever
                    try:
                        packet, ancillary, _, _ = sock.recvmsg(2048, 64)
                    except BlockingIOError:
                        break
                    reply = parse_reply(packet)
                    if reply is None:
                        continue
                    sent = self.in_flight.pop(reply, None)
                    target = self.by_ident.get(reply[0])
                    if sent is not None and target is not None:
                        target.estimate.record((received_at(ancillary) - sent) * 1000.0)

    def expire(self) -> None:
        now = time.time()
        for key, sent in list(self.in_flight.items()):
            if now - sent > PROBE_TIMEOUT:
                del self.in_flight[key]
                target = self.by_ident.get(key[0])
                if target is not None:
                    target.estimate.record(None)

    # -- costs ------------------------------------------------------------------------------------------

    def read_mode(self) -> bool:
        try:
            return mode_file(self.lab).read_text().strip() == "on"
        except FileNotFoundError:
            return self.smart

    def evaluate(self) -> None:
        self.smart = self.read_mode()
        self.notice_restarts()
        for router, items in pending_updates(self.targets, self.smart).items():
            self.apply(router, items)

    def ospfd_pid(self, router: str) -> int | None:
        try:
            return int((paths.node_dir(self.lab, router) / "ospfd.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def notice_restarts(self) -> None:
        """A router whose ospfd has a new pid lost our costs: set them again now, not at the next resync."""
        for router, known in self.ospfd_pids.items():
            now = self.ospfd_pid(router)
            if now == known:
                continue
            self.ospfd_pids[router] = now
            print(f"backbone: {router}: ospfd pid {known} -> {now}: its costs are set again", flush=True)
            for target in self.targets:
                if target.router == router:
                    target.in_force = None

    def apply(self, router: str, items: list[tuple[Target, int | None]]) -> None:
        commands = ["configure terminal"]
        for target, cost in items:
            commands += [f"interface {target.interface}",
                         f"ip ospf cost {cost}" if cost is not None else "no ip ospf cost", "exit"]
        try:
            vtysh(self.vtys[router], *commands, timeout=5.0)
        except LabError as exc:
            print(f"backbone: {router}: could not set costs: {exc}", file=sys.stderr, flush=True)
            return
        for target, cost in items:
            change = {"t": round(time.time(), 3), "router": router, "interface": target.interface,
                      "from": target.in_force, "to": cost, "rtt_ms": _round(target.estimate.rtt_ms)}
            target.in_force = cost
            target.changes += 1
            self.changes = [*self.changes, change][-MAX_CHANGES_KEPT:]
            print(f"backbone: {router} {target.interface}: cost {change['from']} -> {cost} "
                  f"(rtt {change['rtt_ms']} ms)", flush=True)

    def resync(self) -> None:
        """Forget costs an ospfd no longer has (it restarted from its frr.conf), so they are set again."""
        for router in {t.router for t in self.targets if t.in_force is not None}:
            try:
                data = vtysh_json(self.vtys[router], "show ip ospf interface json", timeout=5.0)
            except LabError:
                continue  # ospfd is down right now: try again next time
            interfaces = data.get("interfaces", {})
            for target in self.targets:
                if target.router == router and target.in_force is not None:
                    cost = interfaces.get(target.interface, {}).get("cost")
                    if cost != target.in_force:
                        print(f"backbone: {router} {target.interface}: ospfd has cost {cost}, not "
                              f"{target.in_force}: setting it again", flush=True)
                        target.in_force = None

    def write_state(self) -> None:
        links = [{
            "router": t.router, "interface": t.interface, "peer": t.peer, "address": t.address,
            "rtt_ms": _round(t.estimate.rtt_ms), "samples": len(t.estimate.samples),
            "loss": round(t.estimate.loss, 3), "cost": t.in_force, "changes": t.changes,
        } for t in self.targets]
        data = {"lab": self.lab, "pid": os.getpid(), "start": self.start, "updated": round(time.time(), 3),
                "smart": self.smart,
                "probe_hz": PROBE_HZ, "links": links, "changes": self.changes}
        path = state_file(self.lab)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, path)

    # -- the loop ---------------------------------------------------------------------------------------

    def run(self) -> None:
        """Until SIGTERM (or the lab's run directory is gone): probe, evaluate, write state."""
        period = 1.0 / PROBE_HZ
        next_send = next_eval = time.monotonic()
        next_resync = next_send + RESYNC_INTERVAL
        while not self.stop and state_dir(self.lab).is_dir():
            now = time.monotonic()
            if now >= next_send:
                self.send_round()
                next_send = max(next_send + period, now)
            if now >= next_resync and self.smart:
                self.resync()
                next_resync = now + RESYNC_INTERVAL
            if now >= next_eval:
                self.expire()
                self.evaluate()
                self.write_state()
                next_eval = max(next_eval + EVAL_INTERVAL, now)
            self.receive(min(next_send, next_eval))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="anycastlab backbone prober (started by the lab supervisor)")
    parser.add_argument("--lab", required=True)
    args = parser.parse_args(argv)
    plan = planfile.load(paths.lab_dir(args.lab))
    _, nodes = handles.load(paths.lab_dir(args.lab))  # every node's pid and vtysh, whatever the runtime
    prober = Prober(args.lab, plan, nodes)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        prober.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    prober.run()


if __name__ == "__main__":
    main()

