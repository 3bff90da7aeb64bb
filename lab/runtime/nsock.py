"""Sockets that live in a lab node's network namespace, and the map from lab addresses to nodes.

A socket belongs to the namespace it was created in, whatever thread uses it later: so each socket is
opened while the calling thread is briefly inside the node's namespace (setns), and all probe I/O then
runs from one ordinary thread. Nothing here opens a socket in the host's namespace.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..plan import Plan
from . import nsenter

SOL_RAW = 255
ICMP_FILTER = 1
IP_RECVTTL = 12  # ask for each datagram's TTL ...
IP_TTL = 2  # ... which arrives as an IP_TTL control message
SO_TIMESTAMPNS = 35  # the kernel's receive time (CLOCK_REALTIME) of each datagram, as SCM_TIMESTAMPNS
ANCILLARY_SPACE = socket.CMSG_SPACE(4) + socket.CMSG_SPACE(16)


def open_in(pid: int, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A non-blocking socket created inside the network namespace held by `pid`."""
    with nsenter.entered(pid):
        sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    return sock


def udp_in(pid: int) -> socket.socket:
    """A UDP socket whose datagrams come with their TTL and kernel receive time (see `received`)."""
    sock = open_in(pid, socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def icmp_listener_in(pid: int, types: tuple[int, ...]) -> socket.socket:
    """A raw ICMP socket that the kernel hands only the given ICMP types (ICMP_FILTER)."""
    sock = open_in(pid, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    blocked = 0xFFFFFFFF
    for t in types:
        blocked &= ~(1 << t)
    sock.setsockopt(SOL_RAW, ICMP_FILTER, struct.pack("I", blocked))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    return sock


def received_ttl(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    for level, kind, data in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_TTL and len(data) >= 4:
            return int(struct.unpack("i", data[:4])[0])
    return None


def received_at(ancillary: list[tuple[int, int, bytes]]) -> float | None:
    """The kernel's receive time (Unix seconds): RTTs then exclude the time the probe loop took to read."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return float(sec + nsec / 1e9)
    return None


def wait_for_replies(sel: selectors.BaseSelector, timeout_s: float, done: Callable[[], bool],
                     handle: Callable[[selectors.SelectorKey], None]) -> None:
    """Hand each readable socket to `handle` until `done()` or `timeout_s` has passed (bounded)."""
    deadline = time.perf_counter() + timeout_s
    while not done():
        left = deadline - time.perf_counter()
        if left <= 0:
            return
        for key, _ in sel.select(left):
            handle(key)


@dataclass(frozen=True)
class AddressMap:
    """Which node owns a lab address, and, for a link address, which node is at the link's far end."""

    owner: dict[str, str]
    far_end: dict[str, str]

    @classmethod
    def of(cls, plan: Plan) -> AddressMap:
        owner: dict[str, str] = {}
        far_end: dict[str, str] = {}
        for node in plan.nodes.values():
            if node.loopback is not None:
                owner[str(node.loopback)] = node.name
            for intf in node.interfaces:
                owner[str(intf.address.ip)] = node.name
                far_end[str(intf.address.ip)] = intf.peer
        return cls(owner, far_end)
