"""Entering a node's network namespace with nothing but the C library.

Nodes live in unnamed namespaces held by their Mininet shell, reached through /proc/PID/ns/net. `setns`
moves only the calling thread. Kept free of pyroute2 so light processes (the link-delay releaser, the
service zygote's children) can use it: importing pyroute2 costs a process about 25 MB.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int, nstype: int = CLONE_NEWNET) -> None:
    """Move the calling thread into the namespace open at `fd` (of type `nstype`; 0: whatever type it is)."""
    if _libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def enter(pid: int) -> None:
    """Move the calling thread into `pid`'s network namespace for good (a forked child's first step)."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        setns(fd)
    finally:
        os.close(fd)


@contextmanager
def entered(pid: int) -> Iterator[None]:
    """Run the body with this thread inside the network namespace of `pid`, then come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        enter(pid)
        try:
            yield
        finally:
            setns(home)
    finally:
        os.close(home)
