"""The edge proxy's settings, in their own module so the connection and the cache policy both read them
without importing the proxy that wires them together."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from anycastlab.edge.cache import SURROGATE_ID
from anycastlab.edge.tls import SniContexts


@dataclass
class ProxyConfig:
    """Everything one proxy instance needs; the CLI and the lab both build one of these."""

    origin: str
    pop: str = "LAB"
    listen: list[tuple[str, int]] = field(default_factory=list)
    tls_listen: list[tuple[str, int]] = field(default_factory=list)
    tls: SniContexts | None = None
    mgmt_socket: Path | None = None
    cache_bytes: int = 256 << 20
    max_object_bytes: int = 16 << 20
    buffer_bytes: int = 1 << 20  # uncacheable bodies larger than this are streamed, not buffered
    max_header_bytes: int = 16384
    max_url_bytes: int = 8192
    max_headers: int = 100
    max_body_bytes: int = 8 << 20
    max_pipeline: int = 32
    max_connections: int = 8192
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 30.0
    origin_connect_timeout: float = 3.0
    origin_read_timeout: float = 30.0
    lock_timeout: float = 10.0
    max_disconnected_stale: float = 86400.0
    preserve_host: bool = True
    surrogate_id: str = SURROGATE_ID
    reuse_port: bool = False
