"""The userspace delay line's own logic, without a kernel queue: order under jitter, releases on leaving,
and reads in bounded batches."""

from __future__ import annotations

import errno
import random
import socket

import pytest
from anycastlab.runtime.links.releaser import Batch, Queue, Releaser


class FakePacket:
    def __init__(self, n: int, accepted: list[int]) -> None:
        self.n = n
        self.accepted = accepted

    def accept(self) -> None:
        self.accepted.append(self.n)

    def drop(self) -> None:
        raise AssertionError("no loss configured")


def releaser() -> Releaser:
    r = Releaser.__new__(Releaser)  # no signal wake-up fd, no state file: only the heap logic
    r.heap, r.seq, r.rng = [], 0, random.Random(7)
    return r


def test_jitter_never_reorders_a_link_and_leaving_releases_in_order() -> None:
    r, accepted = releaser(), []
    fast = Queue("ams", "ta", 1, delay_s=0.020, jitter_s=0.010, loss=0.0)
    other = Queue("ta", "ams", 1, delay_s=0.001, jitter_s=0.0, loss=0.0)
    for n in range(200):
        r._arrived(fast, FakePacket(n, accepted))  # type: ignore[arg-type]
    r._arrived(other, FakePacket(-1, accepted))  # type: ignore[arg-type]
    dues = sorted((d, s) for d, s, q, _ in r.heap if q is fast)
    assert [s for _, s in dues] == sorted(s for _, s in dues)  # due order is arrival order
    r.release_now(fast)
    assert accepted == list(range(200))  # the heap's list order would have shuffled them
    assert [item[2] for item in r.heap] == [other]  # the other link keeps its packet
    r.release_now()
    assert accepted[-1] == -1 and not r.heap


def test_batch_stops_after_its_limit() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        for n in range(3):
            a.send(bytes([n]))
        batch = Batch(b, 2)
        assert [batch.recv(16), batch.recv(16)] == [b"\x00", b"\x01"]
        with pytest.raises(BlockingIOError) as info:
            batch.recv(16)
        assert info.value.errno == errno.EAGAIN  # what ends netfilterqueue's run_socket loop
        assert b.recv(16) == b"\x02"  # the rest waits for the next turn
