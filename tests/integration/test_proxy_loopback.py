"""The real proxy and origin, as users start them (`anycastlab proxy` / `anycastlab origin`), on 127.0.0.1,
driven by real clients: curl, openssl s_client and raw sockets. No root needed."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anycastlab.edge.identity import parse_trace
from anycastlab.edge.mgmt import call
from anycastlab.edge.runner import stop_process

BIN = Path(sys.executable).parent / "anycastlab"
HOST = "www.example.test"

pytestmark = [pytest.mark.rootless,  # loopback only: runs without root too (tests/integration/conftest.py)
              pytest.mark.skipif(shutil.which("curl") is None or shutil.which("openssl") is None,
                                 reason="needs curl and openssl")]


def _start(argv: list[str], count: int, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], list[str]]:
    """Start a server and wait for its `listening` lines (it prints one per bound socket)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, start_new_session=True)
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # a thread, because select() cannot see lines already in the file's buffer
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    urls: list[str] = []
    deadline = time.monotonic() + 20
    while len(urls) < count and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        m = re.search(r"listening (\S+)", line)
        if m:
            urls.append(m.group(1))
    if len(urls) < count:
        _stop(proc)
        raise RuntimeError(f"{argv[1]} did not start: {urls}")
    return proc, urls


def _stop(proc: subprocess.Popen[str]) -> None:
    stop_process(proc)


@dataclass
class Lab:
    tmp: Path
    origin_port: int
    http: str  # http://127.0.0.1:P
    https_port: int
    mgmt: Path
    control: Path
    ca: Path

    def origin_mode(self, mode: str, status: int = 503) -> None:
        code, _ = call(self.control, "POST", "/mode", {"mode": mode, "status": status})
        assert code == 200

    def origin_hits(self, path: str) -> int:
        _, data = call(self.control, "GET", "/stats")
        return int(data["by_path"].get(path, 0))

    def stats(self) -> dict[str, object]:
        _, data = call(self.mgmt, "GET", "/stats")
        assert isinstance(data, dict)
        return data


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("edge")
    control = tmp / "origin.sock"
    origin, ourls = _start([str(BIN), "origin", "--listen", "127.0.0.1:0", "--control-socket", str(control),
                            "--name", "o1"], 1)
    origin_port = int(ourls[0].rsplit(":", 1)[1])
    mgmt = tmp / "proxy.sock"
    try:
        proxy, purls = _start([
            str(BIN), "proxy", "--listen", "127.0.0.1:0", "--tls-listen", "127.0.0.1:0",
            "--origin", f"http://127.0.0.1:{origin_port}", "--pop", "TST", "--mgmt-socket", str(mgmt),
            "--ca-dir", str(tmp / "ca"), "--hostname", HOST, "--header-timeout", "1.5", "--cache-size", "2M",
            "--max-object-size", "256k",
        ], 2)
    except Exception:
        _stop(origin)
        raise
    http = next(u for u in purls if u.startswith("http://"))
    https_port = int(next(u for u in purls if u.startswith("https://")).rsplit(":", 1)[1])
    try:
        yield Lab(tmp, origin_port, http, https_port, mgmt, control, tmp / "ca" / "ca.pem")
    finally:
        _stop(proxy)
        _stop(origin)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


def curl(*args: str) -> Reply:
    out = subprocess.run(["curl", "-sS", "-i", "--max-time", "10", *args], capture_output=True, timeout=20,
                         check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return Reply(status, headers, body)


def tls_curl(lab: Lab, path: str, *args: str) -> Reply:
    return curl("--cacert", str(lab.ca), "--resolve", f"{HOST}:{lab.https_port}:127.0.0.1", *args,
                f"https://{HOST}:{lab.https_port}{path}")


# ---------------------------------------------------------------- identity, cache status, TLS


def test_miss_then_hit_with_pop_identity(lab: Lab) -> None:
    first = curl(f"{lab.http}/static/1k.bin")
    second = curl(f"{lab.http}/static/1k.bin")
    assert first.status == second.status == 200
    assert len(second.body) == 1024 and second.body == first.body
    assert first.headers["cf-cache-status"] == "MISS"
    assert second.headers["cf-cache-status"] == "HIT"
    assert second.headers["cf-pop"] == "TST"
    assert re.fullmatch(r"[0-9a-f]{16}-TST", second.headers["cf-ray"])
    assert first.headers["cf-ray"] != second.headers["cf-ray"]
    assert second.headers["age"].isdigit()
    assert "cache-tag" not in second.headers  # internal to the PoP, as on Cloudflare


def test_head_and_client_conditional_from_cache(lab: Lab) -> None:
    curl(f"{lab.http}/static/app.js")
    head = curl("-I", f"{lab.http}/static/app.js")
    assert head.status == 200 and head.headers["cf-cache-status"] == "HIT" and head.body == b""
    etag = head.headers["etag"]
    cond = curl("-H", f"If-None-Match: {etag}", f"{lab.http}/static/app.js")
    assert cond.status == 304 and cond.headers["cf-cache-status"] == "HIT"
    ranged = curl("-H", "Range: bytes=0-6", f"{lab.http}/static/app.js")
    assert ranged.status == 206 and ranged.body == b"console"


def test_https_trace_reports_colo_tls_and_sni(lab: Lab) -> None:
    reply = tls_curl(lab, "/cdn-cgi/trace", "--tlsv1.3")
    trace = parse_trace(reply.body.decode())
    assert reply.status == 200
    assert trace["colo"] == "TST"
    assert trace["ip"] == "127.0.0.1"
    assert trace["tls"] == "TLSv1.3"
    assert trace["sni"] == HOST
    assert trace["http"] == "http/1.1"
    assert trace["ray"] == reply.headers["cf-ray"]


def test_https_miss_then_hit(lab: Lab) -> None:
    assert tls_curl(lab, "/static/style.css").headers["cf-cache-status"] == "MISS"
    assert tls_curl(lab, "/static/style.css").headers["cf-cache-status"] == "HIT"


def _s_client(lab: Lab, *args: str) -> str:
    request = b"GET /cdn-cgi/trace HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{lab.https_port}", "-CAfile", str(lab.ca), "-ign_eof",
         "-alpn", "http/1.1", *args], input=request, capture_output=True, timeout=20).stdout.decode("latin-1")


@pytest.mark.parametrize("version", ["-tls1_3", "-tls1_2"])
def test_openssl_sni_certificate_alpn_and_resumption(lab: Lab, version: str) -> None:
    sess = lab.tmp / f"sess{version}.pem"
    first = _s_client(lab, version, "-servername", HOST, "-sess_out", str(sess))
    assert "Verify return code: 0 (ok)" in first
    assert re.search(rf"subject=.*CN\s*=\s*{re.escape(HOST)}", first)
    assert "ALPN protocol: http/1.1" in first
    assert ("TLSv1.3" if version == "-tls1_3" else "TLSv1.2") in first
    before = int(lab.stats()["tls_resumptions"])  # type: ignore[call-overload]
    second = _s_client(lab, version, "-servername", HOST, "-sess_in", str(sess))
    assert "Reused," in second
    assert int(lab.stats()["tls_resumptions"]) == before + 1  # type: ignore[call-overload]


def test_certificate_covers_the_address_without_sni(lab: Lab) -> None:
    out = _s_client(lab, "-noservername", "-verify_ip", "127.0.0.1")
    assert "Verify return code: 0 (ok)" in out


# ---------------------------------------------------------------- cache behaviour end to end


def test_dynamic_and_bypass(lab: Lab) -> None:
    a = curl(f"{lab.http}/dynamic/x")
    b = curl(f"{lab.http}/dynamic/x")
    assert a.headers["cf-cache-status"] == "BYPASS" and a.body != b.body
    post = curl("-X", "POST", "--data", "x", f"{lab.http}/echo")
    assert post.headers["cf-cache-status"] == "DYNAMIC"
    assert json.loads(post.body)["body_bytes"] == 1


def test_vary_keeps_variants_apart(lab: Lab) -> None:
    url = f"{lab.http}/cache/vary?max-age=60&vary=Accept-Language"
    en = curl("-H", "Accept-Language: en", url)
    de = curl("-H", "Accept-Language: de", url)
    assert en.headers["cf-cache-status"] == de.headers["cf-cache-status"] == "MISS"
    assert curl("-H", "Accept-Language: en", url).body == en.body
    assert curl("-H", "Accept-Language: de", url).headers["cf-cache-status"] == "HIT"


def test_unsafe_method_invalidates(lab: Lab) -> None:
    url = f"{lab.http}/cache/inv?max-age=600"
    curl(url)
    assert curl(url).headers["cf-cache-status"] == "HIT"
    assert curl("-X", "POST", "--data", "x", url).status == 200
    assert curl(url).headers["cf-cache-status"] == "MISS"


def test_concurrent_misses_make_one_origin_fetch(lab: Lab) -> None:
    path = "/slow/coalesce"
    urls = [f"{lab.http}{path}?ms=1500"] * 20
    before = int(lab.stats()["coalesced"])  # type: ignore[call-overload]
    out = subprocess.run(["curl", "-sS", "--parallel", "--parallel-immediate", "--parallel-max", "20",
                          "-w", "%{http_code}\n", *[a for u in urls for a in ("-o", "/dev/null", u)]],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split() == ["200"] * 20
    assert lab.origin_hits(path) == 1
    assert int(lab.stats()["coalesced"]) - before >= 5  # type: ignore[call-overload]


def test_revalidation_with_304(lab: Lab) -> None:
    # max-age=2, not 1: the origin's Date has whole seconds, so a response can arrive up to 1 s "old".
    url = f"{lab.http}/cache/reval?max-age=2&etag=v1"
    first = curl(url)
    time.sleep(2.1)
    again = curl(url)
    assert again.headers["cf-cache-status"] == "REVALIDATED"
    assert again.body == first.body
    assert curl(url).headers["cf-cache-status"] == "HIT"


def test_stale_while_revalidate_serves_stale_and_refreshes(lab: Lab) -> None:
    url = f"{lab.http}/cache/swr?max-age=2&swr=60"
    first = curl(url)
    time.sleep(2.1)
    stale = curl(url)
    assert stale.headers["cf-cache-status"] == "UPDATING"
    assert stale.body == first.body
    deadline = time.monotonic() + 5  # the refresh runs in the background; give a loaded machine time
    fresh = curl(url)
    while fresh.headers["cf-cache-status"] != "HIT" and time.monotonic() < deadline:
        time.sleep(0.1)
        fresh = curl(url)
    assert fresh.headers["cf-cache-status"] == "HIT"
    assert fresh.body != first.body  # the background refresh stored the origin's new response


def test_stale_if_error_and_origin_down(lab: Lab) -> None:
    sie = f"{lab.http}/cache/sie?max-age=1&sie=60"
    plain = f"{lab.http}/cache/plain?max-age=1"
    curl(sie)
    curl(plain)
    time.sleep(1.2)
    try:
        lab.origin_mode("error", 503)
        assert curl(sie).headers["cf-cache-status"] == "STALE"
        assert curl(plain).status == 503  # a 5xx alone does not license stale without stale-if-error
        lab.origin_mode("down")
        got = curl(plain)
        assert got.status == 200 and got.headers["cf-cache-status"] == "STALE"  # origin unreachable
        assert curl(f"{lab.http}/cache/never-seen").status == 502
    finally:
        lab.origin_mode("ok")
    assert curl(plain).headers["cf-cache-status"] == "EXPIRED"


# ---------------------------------------------------------------- management: purge and stats


def test_purge_by_url_tag_and_all_via_cli(lab: Lab) -> None:
    base = f"{lab.http}/cache"
    for path in ("p1?tag=red", "p2?tag=red,blue", "p3?max-age=60"):
        curl(f"{base}/{path}")

    def purge(*args: str) -> str:
        return subprocess.run([str(BIN), "purge", "--socket", str(lab.mgmt), *args], capture_output=True,
                              text=True, timeout=20, check=True).stdout

    assert "purged 2" in purge("--tag", "red")
    assert curl(f"{base}/p1?tag=red").headers["cf-cache-status"] == "MISS"
    assert curl(f"{base}/p3?max-age=60").headers["cf-cache-status"] == "HIT"
    assert "purged 1" in purge("--url", f"https://{lab.http.split('://')[1]}/cache/p3?max-age=60")
    assert curl(f"{base}/p3?max-age=60").headers["cf-cache-status"] == "MISS"
    purge("--all")
    assert curl(f"{base}/p3?max-age=60").headers["cf-cache-status"] == "MISS"
    bad = subprocess.run([str(BIN), "purge", "--socket", str(lab.mgmt)], capture_output=True, timeout=20)
    assert bad.returncode != 0


def test_purge_a_bare_path_under_every_hostname_and_json(lab: Lab) -> None:
    port = lab.http.rsplit(":", 1)[1]
    for host in (HOST, "other.example"):
        curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/cache/bare?max-age=600")
        assert curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/cache/bare?max-age=600") \
            .headers["cf-cache-status"] == "HIT"

    def purge(*args: str) -> str:
        return subprocess.run([str(BIN), "purge", "--socket", str(lab.mgmt), *args], capture_output=True,
                              text=True, timeout=20, check=True).stdout

    data = json.loads(purge("--url", "/cache/bare?max-age=600", "--json"))
    assert data["purged"] == 2 and data["pops"] == {str(lab.mgmt): 2} and data["failed"] == []
    for host in (HOST, "other.example"):
        assert curl("-H", f"Host: {host}", f"http://127.0.0.1:{port}/cache/bare?max-age=600") \
            .headers["cf-cache-status"] == "MISS"
    curl(f"http://127.0.0.1:{port}/cache/bare2?max-age=600")
    assert "nothing was cached for path /cache/bare2" in purge("--url", "/cache/bare2")
    assert "purged 1" in purge("--url", "/cache/bare2?max-age=600")
    nothing = purge("--url", "http://nothere.example/cache/x")
    assert "nothing was cached for URL http://nothere.example/cache/x" in nothing and "/path alone" in nothing
    no_path = subprocess.run([str(BIN), "purge", "--socket", str(lab.mgmt), "--url", "www.example.com"],
                             capture_output=True, text=True, timeout=20)
    assert no_path.returncode == 2 and "names no path" in no_path.stderr


def test_stats_cli_json_counts(lab: Lab) -> None:
    out = subprocess.run([str(BIN), "stats", "--json", "--socket", str(lab.mgmt)], capture_output=True,
                         text=True, timeout=20, check=True).stdout
    data = json.loads(out)
    assert data["pop"] == "TST"
    assert data["requests"] > 0 and data["origin_fetches"] > 0 and data["bytes_out"] > 0
    assert data["cache_status"]["HIT"] > 0 and data["cache_status"]["MISS"] > 0
    assert data["tls_handshakes"] > 0
    human = subprocess.run([str(BIN), "stats", "--socket", str(lab.mgmt)], capture_output=True, text=True,
                           timeout=20, check=True).stdout
    assert "HIT=" in human and "pop TST" in human


def test_health_on_management_socket(lab: Lab) -> None:
    from anycastlab.edge.mgmt import health

    assert health(lab.mgmt)
    assert not health(lab.tmp / "nope.sock")


def test_memory_bound_eviction(lab: Lab) -> None:
    for i in range(24):
        curl(f"{lab.http}/cache/big{i}?max-age=600&size=200000")
    cache = lab.stats()["cache"]
    assert isinstance(cache, dict)
    assert cache["bytes"] <= cache["max_bytes"] == 2 * 1024 * 1024
    assert cache["evictions"] > 0
    too_big = curl(f"{lab.http}/cache/huge?max-age=600&size=600000")
    assert len(too_big.body) == 600000  # streamed through, not stored
    assert curl(f"{lab.http}/cache/huge?max-age=600&size=600000").headers["cf-cache-status"] == "MISS"


# ---------------------------------------------------------------- bad input


def _raw(lab: Lab, payload: bytes, wait: float = 5.0) -> bytes:
    port = int(lab.http.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        s.sendall(payload)
        chunks = []
        try:
            while True:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        except TimeoutError:
            pass
    return b"".join(chunks)


def test_malformed_request_gets_400(lab: Lab) -> None:
    assert _raw(lab, b"GARBAGE\x00\x01 / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert _raw(lab, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n").startswith(b"HTTP/1.1 400 ")


def test_oversized_headers_get_431(lab: Lab) -> None:
    big = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n"
    assert _raw(lab, big).startswith(b"HTTP/1.1 431 ")
    many = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(300)) + b"\r\n"
    assert _raw(lab, many).startswith(b"HTTP/1.1 431 ")


def test_overlong_url_gets_414(lab: Lab) -> None:
    assert _raw(lab, b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 414 ")


def test_slow_client_times_out(lab: Lab) -> None:
    start = time.monotonic()
    reply = _raw(lab, b"GET /static/1k.bin HTTP/1.1\r\nHost: x\r\n", wait=10)
    elapsed = time.monotonic() - start
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert elapsed < 5


def test_pipelined_requests_answer_in_order(lab: Lab) -> None:
    req = b"GET /static/1k.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /dynamic/p HTTP/1.1\r\nHost: x\r\n\r\n" \
          b"GET /cdn-cgi/trace HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = _raw(lab, req)
    statuses = re.findall(rb"cf-cache-status: (\w+)", out)
    assert out.count(b"HTTP/1.1 200 OK") == 3
    assert statuses[1] == b"BYPASS"
    assert out.rstrip().endswith(b"ray=" + re.findall(rb"cf-ray: (\S+)", out)[-1])


def test_host_field_rules_of_rfc9112(lab: Lab) -> None:
    """Two Host fields, an HTTP/1.1 request without one, or an invalid one: 400, never forwarded."""
    curl(f"{lab.http}/static/10k.bin")  # cached: the fast path must refuse these too
    echoes = lab.origin_hits("/echo")
    for bad in (b"GET /static/10k.bin HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
                b"GET /static/10k.bin HTTP/1.1\r\nHost: x\r\nhost: x\r\n\r\n",
                b"GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
                b"GET /echo HTTP/1.1\r\nAccept: */*\r\n\r\n",
                b"GET /static/10k.bin HTTP/1.1\r\n\r\n",
                b"GET http://a.example/echo HTTP/1.1\r\n\r\n",
                b"GET /echo HTTP/1.1\r\nHost: a b\r\n\r\n",
                b"GET /echo HTTP/1.1\r\nHost: a.example/evil\r\n\r\n",
                b"GET /echo HTTP/1.1\r\nHost: user@a.example\r\n\r\n"):
        assert _raw(lab, bad).startswith(b"HTTP/1.1 400 "), bad
    assert lab.origin_hits("/echo") == echoes  # nothing of those reached the origin
    assert _raw(lab, b"GET /echo HTTP/1.0\r\n\r\n").startswith(b"HTTP/1.1 200 ")  # 1.0 needs no Host
    ok = [b"Host: www.example.com:443", b"Host: 127.0.0.1:8080", b"Host: [::1]:80", b"Host: "]
    for host in ok:
        reply = _raw(lab, b"GET /echo HTTP/1.1\r\n" + host + b"\r\nConnection: close\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 "), host
    assert curl(f"{lab.http}/static/1k.bin").status == 200  # and it keeps serving


def test_origin_index_is_cacheable_and_links_the_paths(lab: Lab) -> None:
    first = curl(f"{lab.http}/")
    assert first.status == 200 and first.headers["content-type"].startswith("text/html")
    for path in (b"/static/", b"/cache/", b"/dynamic", b"/slow", b"/status/", b"/echo", b"/cdn-cgi/trace"):
        assert b'href="' + path in first.body, path
    assert curl(f"{lab.http}/").headers["cf-cache-status"] == "HIT"


def test_keeps_serving_after_bad_input(lab: Lab) -> None:
    for _ in range(20):
        _raw(lab, b"\x16\x03\x01 not http\r\n\r\n")
    assert curl(f"{lab.http}/static/1k.bin").status == 200


def test_broken_origin_response_gets_502(tmp_path: Path) -> None:
    """An origin that speaks garbage: the proxy answers 502 and keeps serving."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    stop = threading.Event()

    def garbage_origin() -> None:
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)
                conn.sendall(b"SPDY/9 banana\r\n\x00\x00\r\n\r\n")

    thread = threading.Thread(target=garbage_origin, daemon=True)
    thread.start()
    proxy, urls = _start([str(BIN), "proxy", "--listen", "127.0.0.1:0", "--origin", f"http://127.0.0.1:{port}",
                          "--pop", "BRK"], 1, env={**os.environ})
    try:
        for _ in range(3):
            reply = curl(f"{urls[0]}/anything")
            assert reply.status == 502
            assert reply.headers["cf-pop"] == "BRK"
    finally:
        _stop(proxy)
        stop.set()
        thread.join(timeout=5)
        srv.close()


# ---------------------------------------------------------------- inline hit path vs general path

# The only fields allowed to differ between two HITs for the same request: the ray id is unique per
# response, and Age is computed per response (two consecutive HITs may straddle a second). Everything else
# (status line, every field and its order, the framing, the body) must be the same bytes.
_PER_RESPONSE = re.compile(rb"^(cf-ray|Age): ([^\r]*)\r$", re.M)


def _read_response(sock: socket.socket, buf: bytearray, head_only: bool) -> bytes:
    """One response off a keep-alive connection, framed by its Content-Length."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        assert data, f"connection closed mid-head: {bytes(buf)!r}"
        buf += data
    end = buf.index(b"\r\n\r\n") + 4
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", bytes(buf[:end]), re.I)
    total = end + (0 if head_only or m is None else int(m.group(1)))
    while len(buf) < total:
        data = sock.recv(65536)
        assert data, "connection closed mid-body"
        buf += data
    out = bytes(buf[:total])
    del buf[:total]
    return out


def _exchange(lab: Lab, payload: bytes, heads_only: list[bool]) -> list[bytes]:
    port = int(lab.http.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        buf = bytearray()
        return [_read_response(s, buf, head_only) for head_only in heads_only]


def _fast_hits(lab: Lab) -> int:
    value = lab.stats()["fast_hits"]
    assert isinstance(value, int)
    return value


def _per_response_fields(reply: bytes) -> tuple[bytes, dict[bytes, bytes]]:
    fields = {m.group(1): m.group(2) for m in _PER_RESPONSE.finditer(reply)}
    return _PER_RESPONSE.sub(rb"\1: -\r", reply), fields


@pytest.mark.parametrize(("method", "version", "extra"), [
    ("GET", "1.1", ""),
    ("GET", "1.1", "Connection: close\r\n"),
    ("HEAD", "1.1", ""),
    ("GET", "1.0", "Connection: keep-alive\r\n"),
    ("GET", "1.0", ""),
    ("GET", "1.1", "Accept-Encoding: gzip\r\n"),  # an entry with Vary: Accept-Encoding
])
def test_inline_and_general_path_hits_are_byte_identical(lab: Lab, method: str, version: str, extra: str) -> None:
    """The same request for the same fresh entry, answered by the inline path (a connection with nothing
    in flight) and by the general path (pipelined behind an origin fetch, so it is queued and dispatched):
    the same bytes apart from the ray id and Age."""
    vary = "&vary=Accept-Encoding" if "Accept-Encoding" in extra else ""
    path = f"/cache/inline-{method}-{version}-{len(extra)}?max-age=600{vary}"
    request = f"{method} {path} HTTP/{version}\r\nHost: {HOST}\r\n{extra}\r\n".encode()
    head_only = method == "HEAD"
    assert b"MISS" in _exchange(lab, request.replace(b"HEAD ", b"GET "), [False])[0]

    before = _fast_hits(lab)
    inline = _exchange(lab, request, [head_only])[0]
    middle = _fast_hits(lab)
    busy = f"GET /dynamic/inline-{method} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    fetched, general = _exchange(lab, busy + request, [False, head_only])
    after = _fast_hits(lab)
    assert (middle - before, after - middle) == (1, 0), "each path must have answered one of the two"
    assert b"cf-cache-status: BYPASS" in fetched

    assert b"cf-cache-status: HIT\r\n" in inline
    inline_bytes, inline_fields = _per_response_fields(inline)
    general_bytes, general_fields = _per_response_fields(general)
    assert inline_bytes == general_bytes
    assert set(inline_fields) == set(general_fields) == {b"cf-ray", b"Age"}
    assert inline_fields[b"cf-ray"] != general_fields[b"cf-ray"]
    assert abs(int(inline_fields[b"Age"]) - int(general_fields[b"Age"])) <= 1
