"""The http method: a real client (curl) in each client's namespace GETs https://ANYCAST/cdn-cgi/trace and
reads `colo=`, the PoP the edge proxy says it is.

It needs the edge proxy listening on the anycast address. When no PoP serves HTTPS there (every client's
connection is refused or times out), the method is reported as unavailable, with the reason, never
guessed. The TLS certificate is checked against the lab's CA when the lab has one (ca.pem in its run
directory); without one curl runs with --insecure and the result says `tls_verified: false`.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..plan import Node
from ..runtime.state import RunningLab
from .results import MethodResult, MethodUnavailable

TRACE_PATH = "/cdn-cgi/trace"
CURL_CONNECT_FAILED = 7
CURL_TIMEOUT = 28
WRITE_OUT = "\n%{http_code} %{time_connect} %{time_total}"


def lab_ca(lab: RunningLab) -> Path | None:
    for candidate in (lab.directory / "ca" / "ca.pem", *sorted(lab.directory.glob("*/ca.pem"))):
        if candidate.is_file():
            return candidate
    return None


def parse_trace(body: str) -> dict[str, str]:
    """The key=value lines of a /cdn-cgi/trace body."""
    out: dict[str, str] = {}
    for line in body.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def curl_argv(anycast: str, ca: Path | None, timeout_s: float) -> list[str]:
    tls = ["--cacert", str(ca)] if ca else ["--insecure"]
    return ["curl", "--silent", "--show-error", "--noproxy", "*",
            "--connect-timeout", f"{min(timeout_s, 2.0):g}", "--max-time", f"{timeout_s:g}", *tls,
            "--write-out", WRITE_OUT, f"https://{anycast}{TRACE_PATH}"]


def measure(lab: RunningLab, clients: list[Node], timeout_s: float = 5.0, workers: int = 16) -> dict[str, MethodResult]:
    anycast = str(lab.plan.topology.anycast.ip)
    ca = lab_ca(lab)

    def one(client: Node) -> tuple[MethodResult, int]:
        try:
            out = subprocess.run(lab.exec_argv(client.name, curl_argv(anycast, ca, timeout_s)), capture_output=True,
                                 text=True, timeout=timeout_s + 5)
        except subprocess.TimeoutExpired:
            return MethodResult(None, error="curl did not finish"), CURL_TIMEOUT
        body, _, tail = out.stdout.rpartition("\n")
        fields = tail.split()
        if out.returncode != 0 or len(fields) != 3:
            return MethodResult(None, error=f"curl exit {out.returncode}: {out.stderr.strip()[:200]}"), out.returncode
        status, connect, _total = fields
        trace = parse_trace(body)
        colo = trace.get("colo")
        error = None if status == "200" and colo else f"HTTP {status}, no colo= in the trace"
        return MethodResult(colo if error is None else None, rtt_ms=float(connect) * 1000, error=error,
                            detail={"http_status": int(status), "tls_verified": ca is not None}), 0

    with ThreadPoolExecutor(max(1, min(workers, len(clients)))) as pool:
        answers = list(pool.map(one, clients))
    if answers and all(code in (CURL_CONNECT_FAILED, CURL_TIMEOUT) for _, code in answers):
        first = answers[0][0].error or ""
        raise MethodUnavailable(f"no edge proxy serves https://{anycast}/ in this lab ({first})")
    return {c.name: r for c, (r, _) in zip(clients, answers, strict=True)}
