"""A pre-loaded Python process that forks the lab's Python services (proxies, DNS, the origin) into nodes.

Started the usual way, each service pays for an interpreter and its imports: about 0.3 s of CPU for a
proxy, so 20 PoPs cost 6 s on a 2-core machine while BGP is converging. Forked from one process that
imported them once, each costs a few milliseconds.

One zygote serves every node that runs the same software: on netns the host's interpreter, entering only
each node's network namespace; on docker the interpreter of one image, started in the mount namespace of a
container of that image (so it imports the image's files) but in the host's PID namespace, and each child
enters every namespace of its own container (mount, UTS, IPC, network, PID), as nsenter would. The
supervisor opens the namespaces and passes them over the socket (SCM_RIGHTS): a zygote inside a
container's mount namespace cannot see the host's /proc.

The zygote is the supervisor's child (it dies with it) and each service is the zygote's child (it dies
with the zygote), so a SIGKILLed supervisor still takes everything down. Requests come one per
connection on a Unix socket in the lab's run directory: `{"module", "args", "log", "namespaces"}` with one
namespace descriptor for each name in `namespaces`, in; `{"pid"}` (a host pid) or `{"error"}` out.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import json
import os
import runpy
import signal
import socket
import sys
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import setproctitle

from . import nsenter

PRELOAD = ("anycastlab.cli.main", "anycastlab.cli.proxy", "anycastlab.cli.origin", "anycastlab.edge.proxy",
           "anycastlab.edge.origin", "anycastlab.edge.runner", "anycastlab.services.pop_dns")
PR_SET_PDEATHSIG = 1
START_TIMEOUT = 10.0
# The order a child enters its node's namespaces in, as nsenter does: the mount namespace last, since
# entering it changes the root the others would be looked up under. PID is entered by the zygote itself,
# before the fork (a process's own PID namespace never changes; its children's does).
NAMESPACE_ORDER = ("ipc", "uts", "net", "mnt")
NAMESPACES = frozenset((*NAMESPACE_ORDER, "pid"))
MAX_REQUEST = 1 << 16
_libc = ctypes.CDLL(None, use_errno=True)


class ZygoteError(RuntimeError):
    pass


def start_service(sock_path: Path, module: str, args: list[str], log: Path, node_pid: int,
                  namespaces: Sequence[str]) -> int:
    """Ask the zygote to run `python -m module args...` in `namespaces` of the node whose process is
    `node_pid`; returns the service's host pid."""
    request = {"module": module, "args": args, "log": str(log), "namespaces": list(namespaces)}
    fds = [os.open(f"/proc/{node_pid}/ns/{name}", os.O_RDONLY) for name in namespaces]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(START_TIMEOUT)
            conn.connect(str(sock_path))
            socket.send_fds(conn, [json.dumps(request).encode() + b"\n"], fds)
            reply = json.loads(conn.makefile("rb").readline() or b"{}")
    finally:
        for fd in fds:
            os.close(fd)
    if "pid" not in reply:
        raise ZygoteError(f"could not start {module} {' '.join(args)}: {reply.get('error', 'no answer')}")
    return int(reply["pid"])


def wait_listening(sock_path: Path, alive: Any, timeout: float = START_TIMEOUT) -> None:
    """Until the zygote's socket accepts connections, or it died, or `timeout` passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe, contextlib.suppress(OSError):
            probe.connect(str(sock_path))
            return
        time.sleep(0.02)
    raise ZygoteError(f"the service zygote did not listen on {sock_path} within {timeout:.0f} s")


def _read_request(conn: socket.socket) -> tuple[dict[str, Any], dict[str, int]]:
    """One request and its namespace descriptors by name (closed again on any error)."""
    data, fds, _, _ = socket.recv_fds(conn, MAX_REQUEST, len(NAMESPACES))
    try:
        while not data.endswith(b"\n") and len(data) < MAX_REQUEST:
            more = conn.recv(MAX_REQUEST)
            if not more:
                break
            data += more
        request = json.loads(data)
        names = request["namespaces"]
        if len(names) != len(fds) or not set(names) <= NAMESPACES:
            raise ValueError(f"namespaces {names} do not match the {len(fds)} descriptors sent")
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    return request, dict(zip(names, fds, strict=True))


def _child(request: dict[str, Any], namespaces: dict[str, int], zygote_pid: int) -> None:
    """In the forked child: die with the zygote, enter the node, point stdio at the log, run the module."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    # A child born in a node's PID namespace sees its parent, outside it, as pid 0.
    if os.getppid() != (0 if "pid" in namespaces else zygote_pid):
        os._exit(1)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    try:
        for name in NAMESPACE_ORDER:
            if name in namespaces:
                nsenter.setns(namespaces[name], 0)
    except OSError:
        os._exit(2)
    for fd in namespaces.values():
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(null, 0)
    os.dup2(out, 1)
    os.dup2(out, 2)
    sys.argv = [request["module"], *request["args"]]
    # Look like the `python -m module ...` it stands for, so `ps` and `pgrep -af proxy` find it.
    setproctitle.setproctitle(" ".join([sys.executable, "-m", request["module"], *request["args"]]))
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="runpy")  # "found in sys.modules": preloaded
    code = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # the child's last word goes to its log
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def serve(sock_path: Path) -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps our children; the lab tracks them by pid
    me = os.getpid()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(str(sock_path))
        server.listen(64)
        while True:
            conn, _ = server.accept()
            with conn:
                try:
                    request, namespaces = _read_request(conn)
                except (ValueError, KeyError, OSError) as exc:
                    with contextlib.suppress(OSError):
                        conn.sendall(json.dumps({"error": str(exc)}).encode() + b"\n")
                    continue
                try:
                    if "pid" in namespaces:  # our children's PID namespace; ours stays the host's
                        nsenter.setns(namespaces["pid"], 0)
                    pid = os.fork()
                    if pid == 0:
                        server.close()
                        conn.close()
                        _child(request, namespaces, me)
                    reply: dict[str, Any] = {"pid": pid}
                except OSError as exc:
                    reply = {"error": str(exc)}
                finally:
                    for fd in namespaces.values():
                        os.close(fd)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(reply).encode() + b"\n")


def main() -> None:
    serve(Path(sys.argv[1]))


if __name__ == "__main__":
    main()
