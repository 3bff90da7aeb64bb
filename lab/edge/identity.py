"""PoP identity on every response: a PoP header, Cloudflare-style ray ids, and /cdn-cgi/trace.

Ray ids are ``<16 hex>-<POP>``: a random 64-bit base plus a counter, so they are unique per process
without paying for a random draw on every request.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

POP_HEADER = "cf-pop"
ALT_POP_HEADER = "x-anycastlab-pop"
RAY_HEADER = "cf-ray"
TRACE_PATH = "/cdn-cgi/trace"


class RayIds:
    MASK = 0xFFFFFFFFFFFFFFFF

    def __init__(self, pop: str) -> None:
        self.pop = pop
        self.value = int.from_bytes(os.urandom(8), "big")  # the proxy's inline hit path bumps this too

    def next(self) -> str:
        self.value = (self.value + 1) & self.MASK
        return "%016x-%s" % (self.value, self.pop)  # noqa: UP031


def static_header_block(pop: str) -> bytes:
    """The identity fields that never change for a PoP, pre-encoded for the hot path."""
    return f"{POP_HEADER}: {pop}\r\n{ALT_POP_HEADER}: {pop}\r\n".encode("latin-1")


@dataclass(slots=True)
class TraceInfo:
    pop: str
    client_ip: str
    host: str
    path: str
    user_agent: str
    http: str  # "http/1.1" or "http/1.0"
    tls: str  # "TLSv1.3", or "off"
    sni: str  # the SNI name, or "off"
    ray: str
    scheme: str


def trace_body(info: TraceInfo, now: float | None = None) -> bytes:
    """The /cdn-cgi/trace body: ``key=value`` lines in Cloudflare's order and spelling."""
    ts = time.time() if now is None else now
    lines = [
        "fl=anycastlab",
        f"h={info.host}",
        f"ip={info.client_ip}",
        f"ts={ts:.3f}",
        f"visit_scheme={info.scheme}",
        f"uag={info.user_agent}",
        f"colo={info.pop}",
        f"http={info.http}",
        "loc=XX",
        f"tls={info.tls}",
        f"sni={info.sni}",
        "warp=off",
        f"ray={info.ray}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8", "replace")


def parse_trace(body: str) -> dict[str, str]:
    """Inverse of ``trace_body`` (for clients and tests)."""
    out: dict[str, str] = {}
    for line in body.splitlines():
        key, eq, value = line.partition("=")
        if eq:
            out[key] = value
    return out
