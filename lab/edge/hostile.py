"""Hostile input against the real proxy on loopback (`make fuzz`; a bounded run is a unit test).

    python -m anycastlab.edge.hostile --requests 100000 --slowloris 2000 [--json]

Starts `anycastlab origin` and `anycastlab proxy` on 127.0.0.1 (nothing else is ever addressed), then sends,
from a few threads, seeded mutated and hostile HTTP/1.1 requests:

- smuggling shapes (CL.TE, TE.CL, two Content-Lengths, obfuscated Transfer-Encoding, TE in HTTP/1.0), each to
  its own `/echo/smuggle-N` path: every one must get 400 and none may reach the origin;
- oversized request lines, header values and header counts; bad chunk sizes; requests closed half-way;
- byte-level mutations of valid requests (flips, insertions, deletions, truncations);
- TLS garbage on the TLS port;

while a slowloris of `--slowloris` connections trickles header bytes. Throughout, once a second: the
management socket's health, a normal GET's latency and the proxy's RSS. Every answer from `/echo` shows the
request as the origin received it, and none may carry ambiguous framing (Transfer-Encoding with
Content-Length, or two Content-Lengths). The verdict: 0 crashes, health always ok, RSS bounded, nothing
ambiguous at the origin, every smuggling shape refused, the normal GET still answering.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import queue
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..runtime import procs
from .mgmt import call, health_state
from .runner import stop_process

HOST = "www.example.test"
VALID = (b"GET /static/1k.bin HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
         b"POST /echo/p HTTP/1.1\r\nHost: www.example.test\r\nContent-Length: 5\r\n\r\nhello",
         b"POST /echo/c HTTP/1.1\r\nHost: www.example.test\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"5\r\nhello\r\n0\r\n\r\n",
         b"GET /cache/f?max-age=60 HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n")
SMUGGLE_TE = (b"Transfer-Encoding: chunked", b"Transfer-Encoding : chunked", b"Transfer-Encoding: xchunked",
              b"Transfer-Encoding:\tchunked", b"Transfer-Encoding: chunked, identity", b"Transfer-Encoding: identity",
              b"Transfer-encoding: cHuNkEd", b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
              b"Transfer-Encoding:\x0bchunked", b" Transfer-Encoding: chunked")


@dataclass
class Report:
    requests: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    smuggle_not_refused: list[str] = field(default_factory=list)
    ambiguous_at_origin: int = 0
    health_checks: int = 0
    health_failures: list[str] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    get_failures: int = 0
    get_ms_before: list[float] = field(default_factory=list)
    get_ms_after: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    slowloris_opened: int = 0
    slowloris_closed_by_proxy: int = 0
    proxy_alive: bool = True
    origin_alive: bool = True
    seconds: float = 0.0

    def verdict(self) -> list[str]:
        problems = []
        if not self.proxy_alive:
            problems.append("the proxy died")
        if self.health_failures:
            problems.append(f"{len(self.health_failures)} failed health checks: {self.health_failures[:3]}")
        if self.ambiguous_at_origin:
            problems.append(f"{self.ambiguous_at_origin} requests with ambiguous framing reached the origin")
        if self.smuggle_not_refused:
            problems.append(f"{len(self.smuggle_not_refused)} smuggling shapes not refused: "
                            f"{self.smuggle_not_refused[:3]}")
        if self.rss_mb and max(self.rss_mb) > self.rss_mb[0] + 256:
            problems.append(f"RSS grew from {self.rss_mb[0]:.0f} MB to {max(self.rss_mb):.0f} MB")
        if not self.get_ms_after:
            problems.append("a normal GET no longer answers")
        return problems

    def to_json(self) -> dict[str, Any]:
        def ms(values: list[float]) -> dict[str, float | None]:
            if not values:
                return {"p50": None, "p99": None, "n": 0}
            ordered = sorted(values)
            return {"p50": round(statistics.median(ordered), 2),
                    "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2), "n": len(ordered)}

        return {
            "requests": self.requests, "seconds": round(self.seconds, 1), "by_kind": dict(self.by_kind),
            "statuses": dict(self.statuses.most_common()), "smuggle_not_refused": self.smuggle_not_refused[:20],
            "ambiguous_at_origin": self.ambiguous_at_origin, "health_checks": self.health_checks,
            "health_failures": self.health_failures[:20],
            "normal_get_ms": {"before": ms(self.get_ms_before), "during": ms(self.get_ms),
                              "after": ms(self.get_ms_after), "failures_during": self.get_failures},
            "rss_mb": {"start": self.rss_mb[0] if self.rss_mb else None, "max": max(self.rss_mb, default=None),
                       "end": self.rss_mb[-1] if self.rss_mb else None},
            "slowloris": {"opened": self.slowloris_opened, "closed_by_proxy": self.slowloris_closed_by_proxy},
            "proxy_alive": self.proxy_alive, "problems": self.verdict(), "passed": not self.verdict(),
        }


# -- the requests -------------------------------------------------------------------------------------------

def _smuggle(rng: random.Random, n: int) -> tuple[str, bytes]:
    path = f"/echo/smuggle-{n}".encode()
    te = rng.choice(SMUGGLE_TE)
    shape = rng.choice(["cl.te", "te.cl", "cl.cl", "te.obfuscated", "te.http10"])
    head = b"POST " + path + b" HTTP/1.1\r\nHost: www.example.test\r\n"
    if shape == "cl.te":
        return shape, head + b"Content-Length: 6\r\n" + te + b"\r\n\r\n0\r\n\r\nG"
    if shape == "te.cl":
        return shape, head + te + b"\r\nContent-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n"
    if shape == "cl.cl":
        a, b = rng.choice([(5, 6), (0, 5), (5, 5), (10, 3)])
        return shape, head + b"Content-Length: %d\r\nContent-Length: %d\r\n\r\nhelloX" % (a, b)
    if shape == "te.http10":
        return shape, head.replace(b"HTTP/1.1", b"HTTP/1.0") + \
            b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"
    obfuscated = rng.choice([t for t in SMUGGLE_TE if t != b"Transfer-Encoding: chunked"])
    return shape, head + obfuscated + b"\r\nContent-Length: 5\r\n\r\nhello"


def _oversized(rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(["line", "value", "count"])
    if kind == "line":
        return "oversized.line", b"GET /" + b"a" * rng.randint(9_000, 120_000) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    if kind == "value":
        return "oversized.value", b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * rng.randint(20_000, 200_000) + \
            b"\r\n\r\n"
    return "oversized.count", b"GET / HTTP/1.1\r\nHost: x\r\n" + \
        b"".join(b"X-%d: 1\r\n" % i for i in range(rng.randint(200, 3000))) + b"\r\n"


def _bad_chunks(rng: random.Random) -> tuple[str, bytes]:
    size = rng.choice([b"zz", b"-1", b"ffffffffffffffffffff", b"5;" + b"e" * 5000, b"", b"0x5", b"5 5", b"\x00"])
    body = size + b"\r\nhello\r\n0\r\n\r\n" if rng.random() < 0.7 else b"5\r\nhelloXX0\r\n\r\n"
    return "bad_chunks", b"POST /echo/chunks HTTP/1.1\r\nHost: www.example.test\r\nTransfer-Encoding: chunked\r\n\r\n" \
        + body


def _mutate(rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(rng.choice(VALID))
    for _ in range(rng.randint(1, 8)):
        op, at = rng.randrange(4), rng.randrange(len(data) or 1)
        if op == 0 and data:
            data[at] = rng.randrange(256)
        elif op == 1:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 2 and data:
            del data[at:at + rng.randint(1, 8)]
        else:
            data[at:at] = rng.choice([b"\r\n", b"\n", b":", b" ", b"\r\n\r\n", b"Content-Length: 99\r\n",
                                      b"Transfer-Encoding: chunked\r\n", b"Host: a\r\n"])
    return "mutated", bytes(data)


def request_for(rng: random.Random, n: int) -> tuple[str, bytes, bool]:
    """(kind, bytes, close early): one hostile request, chosen by the seeded generator."""
    roll = rng.random()
    if roll < 0.25:
        kind, data = _smuggle(rng, n)
        return "smuggle." + kind, data, False
    if roll < 0.35:
        kind, data = _oversized(rng)
        return kind, data, False
    if roll < 0.45:
        kind, data = _bad_chunks(rng)
        return kind, data, False
    if roll < 0.55:
        data = rng.choice(VALID)
        return "early_close", data[:rng.randint(1, len(data) - 1)], True
    if roll < 0.6:
        return "valid", rng.choice(VALID), False
    kind, data = _mutate(rng)
    return kind, data, False


# -- sending ---------------------------------------------------------------------------------------------

_STATUS = re.compile(rb"^HTTP/1\.[01] (\d{3})")


def exchange(port: int, data: bytes, early_close: bool, timeout: float = 1.0) -> tuple[str, bytes]:
    """Send `data` on a new connection; (status or what happened, what came back)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            return "reset while sending", b""
        if early_close:
            return "closed early", b""
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
                if b"\r\n\r\n" in got and _complete(got):
                    break
        except TimeoutError:
            pass
        except OSError:
            return "reset", got
    match = _STATUS.match(got)
    return (match.group(1).decode() if match else ("no answer" if not got else "garbage answer")), got


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return m is None or len(body) >= int(m.group(1))


def _ambiguous(answer: bytes) -> bool:
    """Whether an /echo answer shows the origin received ambiguous framing."""
    _, _, body = answer.partition(b"\r\n\r\n")
    try:
        echoed = json.loads(body)
    except ValueError:
        return False
    names = [str(k).lower() for k, _ in echoed.get("headers", [])] if isinstance(echoed, dict) else []
    return names.count("content-length") > 1 or ("content-length" in names and "transfer-encoding" in names)


def _tls_garbage(rng: random.Random, port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        payload = rng.choice([bytes(rng.randrange(256) for _ in range(rng.randint(1, 600))),
                              b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc" + bytes(rng.randrange(256) for _ in range(80)),
                              b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"])
        with contextlib.suppress(OSError):
            s.sendall(payload)
            s.recv(4096)
    return "tls_garbage"


# -- servers ---------------------------------------------------------------------------------------------

def _start(argv: list[str], count: int) -> tuple[subprocess.Popen[str], list[str]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    urls: list[str] = []
    deadline = time.monotonic() + 30
    while len(urls) < count and time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(queue.Empty):
            m = re.search(r"listening (\S+)", lines.get(timeout=0.5))
            if m:
                urls.append(m.group(1))
    if len(urls) < count:
        stop_process(proc)
        raise RuntimeError(f"{argv[1]} did not start")
    return proc, urls


def _rss_mb(pid: int) -> float | None:
    used = procs.usage(pid)
    return used.rss_kb / 1024 if used else None


@contextlib.contextmanager
def servers(tmp: Path, header_timeout: float) -> Iterator[tuple[subprocess.Popen[str], int, int, Path, Path]]:
    binary = str(Path(sys.executable).parent / "anycastlab")
    control, mgmt = tmp / "origin.sock", tmp / "proxy.sock"
    origin, ourls = _start([binary, "origin", "--listen", "127.0.0.1:0", "--control-socket", str(control)], 1)
    try:
        proxy, purls = _start([binary, "proxy", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0", "--origin",
                               ourls[0], "--pop", "FUZ", "--mgmt-socket", str(mgmt), "--ca-dir", str(tmp / "ca"),
                               "--hostname", HOST, "--header-timeout", str(header_timeout)], 2)
        try:
            http = int(next(u for u in purls if u.startswith("http://")).rsplit(":", 1)[1])
            https = int(next(u for u in purls if u.startswith("https://")).rsplit(":", 1)[1])
            yield proxy, http, https, mgmt, control
        finally:
            stop_process(proxy)
    finally:
        stop_process(origin)


# -- the run -------------------------------------------------------------------------------------------------

def _normal_get_ms(port: int) -> float | None:
    t = time.perf_counter()
    try:
        status, _ = exchange(port, VALID[0], False, timeout=2.0)
    except OSError:
        return None
    return (time.perf_counter() - t) * 1000 if status == "200" else None


class _Attack:
    """One fuzz run's moving parts: the monitor, the slowloris and the request workers share its report."""

    def __init__(self, report: Report, port: int, tls_port: int, mgmt: Path, proxy_pid: int, seed: int,
                 slowloris: int, progress: Callable[[str], None] | None) -> None:
        self.report, self.port, self.tls_port, self.mgmt, self.proxy_pid = report, port, tls_port, mgmt, proxy_pid
        self.seed, self.slowloris, self.progress = seed, slowloris, progress
        self.started = time.monotonic()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.loris: list[socket.socket] = []

    def monitor(self) -> None:
        report = self.report
        while not self.stop.wait(1.0):
            report.health_checks += 1
            state = health_state(self.mgmt, timeout=2.0)
            if state != "ok":
                report.health_failures.append(f"{time.monotonic() - self.started:.1f}s: {state}")
            ms = _normal_get_ms(self.port)
            if ms is None:
                report.get_failures += 1
            else:
                report.get_ms.append(ms)
            rss = _rss_mb(self.proxy_pid)
            if rss is not None:
                report.rss_mb.append(rss)

    def open_one(self) -> bool:
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=2.0)
            s.sendall(b"GET /static/1k.bin HTTP/1.1\r\nHost: x\r\nX-a: ")
            s.setblocking(False)
        except OSError:
            return False
        self.loris.append(s)
        self.report.slowloris_opened += 1
        return True

    def slow(self) -> None:
        """Keep `slowloris` connections open, each trickling one header byte every 2 s; one the proxy
        closes (its header timeout) is replaced, so the attack lasts the whole run."""
        for _ in range(self.slowloris):
            if self.stop.is_set() or not self.open_one():
                break
        while not self.stop.wait(2.0):
            for s in list(self.loris):
                if self._trickle(s):
                    continue
                self.loris.remove(s)
                self.report.slowloris_closed_by_proxy += 1
                s.close()
                if not self.stop.is_set():
                    self.open_one()

    @staticmethod
    def _trickle(s: socket.socket) -> bool:
        """One more header byte; False once the proxy answered (its 408) or closed the connection."""
        try:
            s.recv(4096)  # any bytes (the 408), or b"" (the close)
            return False
        except BlockingIOError:
            pass  # nothing yet: the connection is still held open
        except OSError:
            return False
        try:
            s.send(b"a")
        except BlockingIOError:
            return True  # the send buffer is full: still open
        except OSError:
            return False
        return True

    def one(self, n: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + n)
        if rng.random() < 0.03:
            kind, status = _tls_garbage(rng, self.tls_port), "sent"
            answer = b""
        else:
            kind, data, early = request_for(rng, n)
            try:
                status, answer = exchange(self.port, data, early)
            except OSError as exc:
                status, answer = f"connect failed ({exc.__class__.__name__})", b""
        ambiguous = _ambiguous(answer) if b'"origin"' in answer else False
        report = self.report
        with self.lock:
            report.requests += 1
            report.by_kind[kind] += 1
            report.statuses[status] += 1
            if kind.startswith("smuggle.") and status not in ("400", "closed early", "reset", "no answer"):
                report.smuggle_not_refused.append(f"{kind}: {status}")
            report.ambiguous_at_origin += ambiguous
            if self.progress is not None and report.requests % 10_000 == 0:
                self.progress(f"{report.requests} requests, {len(report.health_failures)} health failures")


def _normal_gets(port: int, into: list[float], count: int = 20) -> None:
    for _ in range(count):
        ms = _normal_get_ms(port)
        if ms is not None:
            into.append(ms)


def run(requests: int = 100_000, slowloris: int = 2000, seed: int = 1, threads: int = 8, header_timeout: float = 5.0,
        progress: Callable[[str], None] | None = None) -> Report:
    report = Report()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="anycastlab-fuzz-") as tmp_name, \
            servers(Path(tmp_name), header_timeout) as (proxy, port, tls_port, mgmt, control):
        report.rss_mb.append(_rss_mb(proxy.pid) or 0.0)
        _normal_gets(port, report.get_ms_before)
        attack = _Attack(report, port, tls_port, mgmt, proxy.pid, seed, slowloris, progress)
        watchers = [threading.Thread(target=attack.monitor, daemon=True),
                    threading.Thread(target=attack.slow, daemon=True)]
        for w in watchers:
            w.start()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(attack.one, range(requests)))
        report.proxy_alive = proxy.poll() is None
        _normal_gets(port, report.get_ms_after)
        attack.stop.set()
        for w in watchers:
            w.join(timeout=10)
        for s in attack.loris:
            s.close()
        _, stats = call(control, "GET", "/stats")
        smuggled = sum(n for path, n in stats.get("by_path", {}).items() if path.startswith("/echo/smuggle"))
        if smuggled:
            report.smuggle_not_refused.append(f"{smuggled} smuggling requests reached the origin")
        report.proxy_alive = report.proxy_alive and proxy.poll() is None
        report.seconds = time.monotonic() - started
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--slowloris", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    report = run(args.requests, args.slowloris, args.seed, args.threads,
                 progress=lambda m: print(m, file=sys.stderr, flush=True))
    data = report.to_json()
    print(json.dumps(data, indent=1) if args.json else _text(data))
    sys.exit(0 if data["passed"] else 1)


def _text(data: dict[str, Any]) -> str:
    get, rss = data["normal_get_ms"], data["rss_mb"]
    lines = [f"{data['requests']} hostile requests in {data['seconds']} s: " + ", ".join(
                 f"{k} {v}" for k, v in sorted(data["by_kind"].items())),
             "answers: " + ", ".join(f"{k} {v}" for k, v in data["statuses"].items()),
             f"slowloris: {data['slowloris']['opened']} connections opened (kept at --slowloris), "
             f"{data['slowloris']['closed_by_proxy']} closed by the proxy's header timeout",
             f"health: {data['health_checks']} checks, {len(data['health_failures'])} failed; normal GET p50/p99 ms: "
             f"before {get['before']['p50']}/{get['before']['p99']}, during {get['during']['p50']}/"
             f"{get['during']['p99']} ({get['failures_during']} failed), after {get['after']['p50']}/"
             f"{get['after']['p99']}",
             f"proxy RSS MB: start {rss['start']:.1f}, max {rss['max']:.1f}, end {rss['end']:.1f}; ambiguous "
             f"framing at the origin: {data['ambiguous_at_origin']}; smuggling shapes not refused: "
             f"{len(data['smuggle_not_refused'])}",
             "PASS" if data["passed"] else "FAIL: " + "; ".join(data["problems"])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

