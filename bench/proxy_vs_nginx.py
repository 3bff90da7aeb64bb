"""Edge proxy vs Debian nginx ``proxy_cache`` on loopback: same origin, content, certificate and cache state.

Each server runs as one process pinned to core 0 (``taskset``); wrk runs pinned to core 1. Cases:

- ``http-hit``: a 1 KiB cache hit over keep-alive HTTP;
- ``https-hit``: the same over keep-alive HTTPS;
- ``tls-handshakes``: a new connection (full TLS handshake, no resumption) per request.

Every process is started here, on 127.0.0.1 high ports, and ended by pid. Each case runs for a bounded
time (``--duration`` / BENCH_DURATION, default 5 s, ``--rounds`` / BENCH_ROUNDS alternating rounds,
default 3, best kept). Prints ratios ours/nginx and writes ``reports/bench-proxy.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from anycastlab.edge.runner import stop_process
from anycastlab.edge.tls import ensure_ca, issue_leaf

ROOT = Path(__file__).resolve().parent.parent
PATH = "/static/1k.bin"
SERVER_CORE = "0"
LOAD_CORE = "1"

NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    proxy_cache_path {tmp}/cache keys_zone=edge:10m max_size=256m;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    upstream origin {{ server 127.0.0.1:{origin_port}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{http_port};
        listen 127.0.0.1:{https_port} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets on;
        location / {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_cache edge;
            add_header X-Cache-Status $upstream_cache_status;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


@contextlib.contextmanager
def process(argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Start a process we own and end it by pid, whatever happens."""
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop_process(proc)


@dataclass
class WrkResult:
    rps: float
    errors: int
    requests: int


def wrk(url: str, duration: int, connections: int, close: bool = False) -> WrkResult:
    argv = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=duration + 30, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sock_err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if sock_err and not close:
        errors += sum(int(g) for g in sock_err.groups())
    if rps is None or total is None:
        raise RuntimeError(f"could not parse wrk output:\n{out}")
    return WrkResult(float(rps.group(1)), errors, int(total.group(1)))


def fetch_headers(url: str, cafile: Path) -> dict[str, str]:
    import ssl

    ctx = ssl.create_default_context(cafile=str(cafile))
    with urllib.request.urlopen(url, context=ctx, timeout=5) as resp:
        resp.read()
        return {k.lower(): v for k, v in resp.headers.items()}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench proxy", description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=int(os.environ.get("BENCH_DURATION", "5")),
                    help="seconds per run (bounded load)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")),
                    help="alternating rounds per case (best is kept)")
    args, _ = ap.parse_known_args(sys.argv[2:] if len(sys.argv) > 1 and sys.argv[1] == "proxy" else sys.argv[1:])
    for tool in ("nginx", "wrk", "taskset"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            raise SystemExit(f"bench: {tool} is not installed (make deps installs nginx-light and wrk)")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    venv_bin = Path(sys.executable).parent
    anycastlab = str(venv_bin / "anycastlab")

    with tempfile.TemporaryDirectory(prefix="anycastlab-bench-") as tmpdir:
        tmp = Path(tmpdir)
        ca = ensure_ca(tmp / "ca")
        leaf = issue_leaf(ca, ["localhost", "127.0.0.1"])
        ports = {name: free_port() for name in ("origin", "ours_http", "ours_https", "nginx_http", "nginx_https")}
        (tmp / "nginx.conf").write_text(NGINX_CONF.format(
            tmp=tmp, origin_port=ports["origin"], http_port=ports["nginx_http"], https_port=ports["nginx_https"],
            cert=leaf.cert_path, key=leaf.key_path))
        env_ca = {**os.environ, "ANYCASTLAB_CA_DIR": str(tmp / "ca")}
        origin_argv = ["taskset", "-c", LOAD_CORE, anycastlab, "origin", "--listen", f"127.0.0.1:{ports['origin']}"]
        ours_argv = ["taskset", "-c", SERVER_CORE, anycastlab, "proxy",
                     "--listen", f"127.0.0.1:{ports['ours_http']}", "--tls-listen", f"127.0.0.1:{ports['ours_https']}",
                     "--origin", f"http://127.0.0.1:{ports['origin']}", "--pop", "BENCH", "--hostname", "localhost"]
        nginx_argv = ["taskset", "-c", SERVER_CORE, nginx, "-c", str(tmp / "nginx.conf"), "-p", str(tmp)]
        results: dict[str, dict[str, float]] = {}
        os.environ["ANYCASTLAB_CA_DIR"] = env_ca["ANYCASTLAB_CA_DIR"]
        with process(origin_argv, tmp / "origin.log"), process(ours_argv, tmp / "ours.log"), \
                process(nginx_argv, tmp / "nginx.log"):
            for port in ports.values():
                wait_port(port)
            urls = {
                ("ours", "http"): f"http://127.0.0.1:{ports['ours_http']}{PATH}",
                ("ours", "https"): f"https://localhost:{ports['ours_https']}{PATH}",
                ("nginx", "http"): f"http://127.0.0.1:{ports['nginx_http']}{PATH}",
                ("nginx", "https"): f"https://localhost:{ports['nginx_https']}{PATH}",
            }
            # Same cache state: warm each listener's key, then check the next answer is a hit.
            for (who, _), url in urls.items():
                fetch_headers(url, ca.cert_path)
                hdrs = fetch_headers(url, ca.cert_path)
                status = hdrs.get("cf-cache-status") if who == "ours" else hdrs.get("x-cache-status")
                if status != "HIT":
                    raise SystemExit(f"bench: {url} is not a cache hit after warm-up ({status})")
            cases = [
                ("http-hit", "http", False, args.connections),
                ("https-hit", "https", False, args.connections),
                ("tls-handshakes", "https", True, 16),
            ]
            only = os.environ.get("BENCH_CASES")
            if only:
                cases = [c for c in cases if c[0] in only.split(",")]
            for case, scheme, close, conns in cases:
                row: dict[str, float] = {"nginx": 0.0, "ours": 0.0}
                # Alternate the two servers for --rounds rounds and keep each one's best: this machine is
                # shared, and interleaving keeps background noise from favouring whoever ran second.
                for _ in range(args.rounds):
                    for who in ("nginx", "ours"):
                        wrk(urls[(who, scheme)], 1, conns, close)  # short warm-up: fills buffers and pools
                        res = wrk(urls[(who, scheme)], args.duration, conns, close)
                        if res.errors:
                            print(f"bench: {case} {who}: {res.errors} errors in {res.requests} requests",
                                  file=sys.stderr)
                        row[who] = max(row[who], res.rps)
                row["ratio"] = row["ours"] / row["nginx"] if row["nginx"] else 0.0
                results[case] = row
                print(f"{case:<15} ours {row['ours']:>10.0f} req/s   nginx {row['nginx']:>10.0f} req/s"
                      f"   ours/nginx {row['ratio']:.2f}x", flush=True)
    targets = {"http-hit": 1.0, "https-hit": 0.9}
    for case, target in targets.items():
        if case not in results:
            continue
        verdict = "meets" if results[case]["ratio"] >= target else "MISSES"
        print(f"target {case}: >= {target:.1f}x nginx -> {verdict} ({results[case]['ratio']:.2f}x)")
    if "tls-handshakes" in results:
        print(f"tls-handshakes: {results['tls-handshakes']['ratio']:.2f}x nginx (no target; reported as measured)")
    (ROOT / "reports").mkdir(exist_ok=True)
    (ROOT / "reports" / "bench-proxy.json").write_text(json.dumps(
        {"duration_s": args.duration, "rounds": args.rounds, "connections": args.connections,
         "results": results}, indent=2))


if __name__ == "__main__":
    main()
