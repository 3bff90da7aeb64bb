"""The userspace delay line: one process per lab holds each queued packet for its link's delay, then accepts it.

Kernels without sch_netem still have NFQUEUE: an iptables rule in a node's namespace hands every packet
leaving a shaped interface to a numbered queue, and this process gives the verdict. NFQUEUE sockets
belong to the namespace they were opened in, so the one process enters each node's namespace (setns),
opens that node's queues there, and comes back: one poll loop serves every shaped link of the lab, which
costs one Python process instead of one per node.

A packet is dropped with the link's loss probability, otherwise released `delay + uniform(-jitter,
+jitter)` after it arrived, never before the packet ahead of it on the same link (no reordering). Verdicts
are given after the callback returns (netfilterqueue allows that); only metadata is copied to userspace.

Jitter and order: a packet due before the one ahead of it waits for it, so when packets come closer
together than 2 x jitter the spread narrows and the mean delay rises a little (netem reorders instead).

The rules carry --queue-bypass: if this process dies, later packets pass undelayed rather than the lab
going dark, and `anycastlab status` reports the releaser as not running; the packets it held at that
moment (a delay's worth) are dropped by the kernel when its queue sockets close. On SIGTERM it lets them
go first. The supervisor can start it again (control.ensure_releaser). It re-reads links.json on SIGHUP
and reports the generation it applied in releaser.json, which `anycastlab link set` waits for; once
links.json is gone (the run directory removed) it exits by itself within a second.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import errno
import heapq
import json
import os
import random
import select
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from netfilterqueue import COPY_META, NetfilterQueue, Packet

from ...shaping import Shaping
from .. import paths
from ..nsenter import entered

PR_SET_TIMERSLACK = 29
QUEUE_MAXLEN = 20_000  # packets held at once per link: 40 ms at 500,000 packets per second
SOCKET_BUFFER = 1 << 20
MAX_WAIT_S = 0.5  # the loop wakes at least this often to notice signals
BATCH = 32  # packets read from one queue before due releases get their turn again
STATS_EVERY_S = 1.0
RT_PRIORITY = 1
# The detour itself (kernel to this process and back, and the wake-up) takes about this long per packet on
# this 2-core VM (bench/link_delay.py: +0.15..0.2 ms per direction without it); holding each packet that much
# less keeps the added delay centred on the target. Delays shorter than this are served as fast as possible.
DETOUR_S = 0.00015
_libc = ctypes.CDLL(None, use_errno=True)  # prctl(PR_SET_TIMERSLACK)


@dataclass
class Queue:
    """One direction of one link: the node it leaves, its interface, its queue number and its shaping."""

    node: str
    interface: str
    number: int
    delay_s: float
    jitter_s: float
    loss: float
    nfq: NetfilterQueue | None = None
    sock: socket.socket | None = None  # a duplicate of the queue's fd, for reads in bounded batches
    last_release: float = 0.0
    packets: int = 0
    dropped: int = 0
    late_max_us: float = 0.0
    late_sum_us: float = 0.0
    released: int = 0


class Releaser:
    def __init__(self, state_path: Path, report_path: Path) -> None:
        self.state_path = state_path
        self.report_path = report_path
        self.queues: dict[tuple[str, int], Queue] = {}
        self.by_fd: dict[int, Queue] = {}
        self.heap: list[tuple[float, int, Queue, Packet]] = []
        self.seq = 0
        self.generation = 0
        self.reload_requested = True
        self.stop_requested = False
        self.rng = random.Random()
        self.wake_r, wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(wake_w, False)
        signal.set_wakeup_fd(wake_w)  # a signal wakes the poll at once (SIGHUP: reload now)

    # -- configuration ----------------------------------------------------------------------------------

    def reload(self) -> None:
        state = json.loads(self.state_path.read_text())
        pids: dict[str, int] = state["pids"]
        wanted: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}
        for link in state["links"]:
            if not _needs_delay(link):
                continue
            for end in ("a", "b"):
                wanted[(link[end], link[f"{end}_queue"])] = (link[f"{end}_interface"], link)
        for key in [k for k in self.queues if k not in wanted]:
            self._close(self.queues.pop(key))
        for key, (interface, link) in wanted.items():
            queue = self.queues.get(key)
            if queue is None:
                queue = Queue(key[0], interface, key[1], 0.0, 0.0, 0.0)
                try:
                    self._open(queue, pids[key[0]])
                except OSError as exc:  # the node is gone (teardown under way): its link cannot carry packets
                    print(f"cannot open queue {key[1]} in {key[0]}: {exc}", file=sys.stderr, flush=True)
                    continue
                self.queues[key] = queue
            queue.delay_s = link["delay_ms"] / 1000.0
            queue.jitter_s = link["jitter_ms"] / 1000.0
            queue.loss = link["loss_pct"] / 100.0
        self.generation = int(state["generation"])
        self.report()

    def _open(self, queue: Queue, pid: int) -> None:
        def arrived(packet: Packet, queue: Queue = queue) -> None:
            self._arrived(queue, packet)

        with entered(pid):
            nfq = NetfilterQueue()
            nfq.bind(queue.number, arrived, max_len=QUEUE_MAXLEN, mode=COPY_META, sock_len=SOCKET_BUFFER)
        queue.nfq = nfq
        fd = nfq.get_fd()
        os.set_blocking(fd, False)
        queue.sock = socket.socket(fileno=os.dup(fd))
        self.by_fd[fd] = queue

    def _close(self, queue: Queue) -> None:
        """Release what the queue still holds, then unbind: later packets bypass it."""
        self.release_now(queue)
        if queue.nfq is not None:
            self.by_fd.pop(queue.nfq.get_fd(), None)
            queue.nfq.unbind()
            queue.nfq = None
        if queue.sock is not None:
            queue.sock.close()
            queue.sock = None

    # -- packets ----------------------------------------------------------------------------------------

    def _arrived(self, queue: Queue, packet: Packet) -> None:
        queue.packets += 1
        if queue.loss and self.rng.random() < queue.loss:
            queue.dropped += 1
            _verdict(packet.drop)
            return
        now = time.monotonic()
        delay = queue.delay_s - DETOUR_S
        if queue.jitter_s:
            delay = max(0.0, delay + self.rng.uniform(-queue.jitter_s, queue.jitter_s))
        due = max(now + delay, queue.last_release)
        queue.last_release = due
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, queue, packet))

    def release_now(self, queue: Queue | None = None) -> None:
        """Accept at once what `queue` (None: every queue) holds, in due order: the heap's list is not."""
        held = sorted((item for item in self.heap if queue is None or item[2] is queue),
                      key=lambda item: (item[0], item[1]))
        for item in held:
            _verdict(item[3].accept)
        self.heap = [item for item in self.heap if queue is not None and item[2] is not queue]
        heapq.heapify(self.heap)

    def release_due(self) -> None:
        now = time.monotonic()
        while self.heap and self.heap[0][0] <= now:
            due, _, queue, packet = heapq.heappop(self.heap)
            _verdict(packet.accept)
            late_us = (now - due) * 1e6
            queue.released += 1
            queue.late_sum_us += late_us
            queue.late_max_us = max(queue.late_max_us, late_us)
            now = time.monotonic()

    def run(self) -> None:
        last_report = time.monotonic()
        while not self.stop_requested:
            if self.reload_requested:
                self.reload_requested = False
                self.reload()
            self.release_due()
            wait = MAX_WAIT_S
            if self.heap:
                wait = min(wait, max(0.0, self.heap[0][0] - time.monotonic()))
            try:
                ready, _, _ = select.select([self.wake_r, *self.by_fd], [], [], wait)
            except InterruptedError:
                continue
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 512)
            for fd in ready:
                queue = self.by_fd.get(fd)
                if queue is not None and queue.nfq is not None and queue.sock is not None:
                    # nfq.run(block=False) reads until the socket is empty: a steady stream would hold
                    # every due release back. A bounded batch, then the loop releases what is due.
                    queue.nfq.run_socket(Batch(queue.sock, BATCH))  # type: ignore[arg-type]  # recv only
                    self.release_due()
            if time.monotonic() - last_report >= STATS_EVERY_S:
                if not self.state_path.exists():  # the lab's run directory is gone: nothing left to serve
                    break
                self.report()
                last_report = time.monotonic()
        self.release_now()  # leaving: let what we hold go rather than have the kernel drop it
        for queue in self.queues.values():
            self._close(queue)

    def report(self) -> None:
        queues = [{"node": q.node, "interface": q.interface, "queue": q.number, "packets": q.packets,
                   "dropped": q.dropped, "released": q.released,
                   "late_mean_us": round(q.late_sum_us / q.released, 1) if q.released else 0.0,
                   "late_max_us": round(q.late_max_us, 1)} for q in self.queues.values()]
        data = {"pid": os.getpid(), "generation": self.generation, "held": len(self.heap), "queues": queues}
        paths.replace_file(self.report_path, json.dumps(data))


class Batch:
    """A view of a queue socket that gives `limit` reads, then says EAGAIN, which ends nfq.run_socket."""

    def __init__(self, sock: socket.socket, limit: int) -> None:
        self.sock = sock
        self.left = limit

    def recv(self, size: int) -> bytes:
        if self.left <= 0:
            raise BlockingIOError(errno.EAGAIN, "batch done")
        self.left -= 1
        return self.sock.recv(size)


def _needs_delay(link: dict[str, Any]) -> bool:
    return Shaping.from_json(link).needs_delay


def _verdict(give: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the queue was unbound meanwhile: the kernel has the packet
        give()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="anycastlab link delay releaser (started by the supervisor)")
    parser.add_argument("--state", type=Path, required=True, help="the lab's links.json")
    parser.add_argument("--report", type=Path, required=True, help="where to write releaser.json")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", RuntimeWarning)  # netfilterqueue's note that rcvbuf was rounded
    _libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)  # wake within microseconds of a packet's due time
    # A delay line is only as good as its wake-ups: on a loaded machine an ordinary process is woken
    # milliseconds late. The lowest real-time priority puts it ahead of batch work; the kernel's RT
    # throttle still caps it below a full core, and it sleeps whenever no packet is due.
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(RT_PRIORITY))
    releaser = Releaser(args.state, args.report)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        releaser.stop_requested = True

    def reload(_signum: int, _frame: FrameType | None) -> None:
        releaser.reload_requested = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload)
    releaser.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
