"""Where the edge is reached inside a lab: its ports, the origin's URL over the backbone, and each PoP
proxy's management socket. One definition, read by the services that start the proxies and by the
backbone's tiered cache that repoints them."""

from __future__ import annotations

from pathlib import Path

from ..plan import Plan
from ..runtime import paths

HTTP_PORT, HTTPS_PORT = 80, 443


def origin_url(plan: Plan) -> str:
    """Where PoPs fetch misses: the origin's loopback, reachable only over the private backbone."""
    return f"http://{plan.nodes[plan.topology.origin.name].loopback}:{HTTP_PORT}"


def proxy_socket(lab: str, pop: str) -> Path:
    return paths.pop_dir(lab, pop) / "proxy.sock"
