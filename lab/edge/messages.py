"""What passes between a client connection and the edge: a parsed request and the response to write.

Plain data, so the connection (lab/edge/connection.py) and the cache policy (lab/edge/policy.py) share it
without importing each other's behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Protocol

from anycastlab.edge.cache import CachePhase
from anycastlab.edge.headers import Headers

NO_BODY_STATUSES = frozenset({204, 304})
# The cache status field as written on every response from the edge.
PHASE_LINES = {p: f"cf-cache-status: {p.cf_status}\r\n".encode() for p in CachePhase}


class Client(Protocol):
    """The client side of a request, as the trace page and X-Forwarded-* report it."""

    client_ip: str
    tls_version: str  # "TLSv1.3", or "off"
    sni: str  # the SNI name, or "off"
    scheme: str  # "http" or "https"


@dataclass(slots=True)
class Request:
    method: str
    target: str
    headers: Headers
    hmap: dict[str, str]
    body: bytes
    http_version: str
    keep_alive: bool
    conn: Client


@dataclass(slots=True)
class Response:
    status: int
    reason: str
    headers: Headers = field(default_factory=list)
    body: bytes = b""
    # A pre-serialised status line and fields, Content-Length included (a stored entry's wire cache);
    # when set, ``headers`` is not sent.
    wire: bytes | None = None
    phase: CachePhase | None = None
    age: int | None = None
    stream: AsyncGenerator[bytes, None] | None = None
    length: int | None = None  # declared Content-Length of a streamed body, None for chunked
    close: bool = False
    ray: str | None = None  # set when the body already quotes the ray id (trace)


_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 414: "URI Too Long",
            431: "Request Header Fields Too Large", 501: "Not Implemented", 502: "Bad Gateway",
            503: "Service Unavailable", 504: "Gateway Timeout"}


def error_response(status: int, close: bool = False) -> Response:
    reason = _REASONS.get(status, "Error")
    return Response(status, reason, [("Content-Type", "text/plain"), ("Cache-Control", "no-store")],
                    f"{status} {reason}\n".encode(), close=close)


def header_fields(raw: list[tuple[bytes, bytes]]) -> tuple[Headers, dict[str, str]]:
    """Decoded fields in order, and a lowercase map with repeated fields joined by ", " (RFC 9110 5.3)."""
    hdrs: Headers = []
    hmap: dict[str, str] = {}
    for n, v in raw:
        name = n.decode("latin-1")
        value = v.decode("latin-1")
        hdrs.append((name, value))
        key = name.lower()
        if key in hmap:
            hmap[key] = hmap[key] + ", " + value
        else:
            hmap[key] = value
    return hdrs, hmap


