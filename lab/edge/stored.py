"""Serving a stored entry: the cache key, the entry's pre-serialised head, and single byte ranges.

Kept apart from the policy (lab/edge/policy.py) because both the inline hit path and the general path
build their bytes from here, and the purge API builds keys the same way.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from anycastlab.edge.cache import INTERNAL_FIELDS, Entry
from anycastlab.edge.messages import NO_BODY_STATUSES, Response

# Framing is recomputed per response; internal fields (Surrogate-Control, Cache-Tag) stay in the PoP.
NOT_FROM_ENTRY = INTERNAL_FIELDS | {"content-length", "transfer-encoding"}


def entry_wire(entry: Entry) -> bytes:
    """The entry's status line, stored fields and Content-Length, cached on the entry (a 304 resets it)."""
    parts = [f"HTTP/1.1 {entry.status} {entry.reason}\r\n"]
    parts.extend(f"{k}: {v}\r\n" for k, v in entry.headers if k.lower() not in NOT_FROM_ENTRY)
    if entry.status not in NO_BODY_STATUSES:
        parts.append(f"Content-Length: {len(entry.body)}\r\n")
    wire = "".join(parts).encode("latin-1", "replace")
    entry.wire = wire
    return wire


def host_key(host: str) -> str:
    """The host part of a cache key: lowercased, default ports dropped (http and https share entries)."""
    host = host.strip().lower()
    if host.endswith(":80"):
        return host[:-3]
    if host.endswith(":443"):
        return host[:-4]
    return host


def url_key(url: str) -> str:
    """The cache key for a purge URL (``http://host/path?q``, ``https://...`` or ``host/path``)."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    return host_key(parts.netloc) + (parts.path or "/") + ("?" + parts.query if parts.query else "")


def range_response(entry: Entry, hmap: dict[str, str]) -> Response | None:
    """Serve a single byte range from a stored full response (RFC 9110 14); None = send it all."""
    if_range = hmap.get("if-range")
    if if_range is not None:
        etag = entry.etag
        if if_range.startswith('"') or if_range.startswith("W/"):
            if etag is None or etag.startswith("W/") or etag != if_range:
                return None
        elif if_range != entry.last_modified:
            return None
    spec = hmap["range"].strip()
    if not spec.lower().startswith("bytes=") or "," in spec:
        return None
    first, dash, last = spec[6:].strip().partition("-")
    size = len(entry.body)
    if not dash:
        return None
    try:
        if first == "":
            n = int(last)
            start, end = max(0, size - n), size - 1
            if n == 0:
                start = size
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
            if end < start:
                return None
    except ValueError:
        return None
    hdrs = [(k, v) for k, v in entry.headers if k.lower() not in NOT_FROM_ENTRY | {"content-range"}]
    if start >= size:
        return Response(416, "Range Not Satisfiable", [*hdrs, ("Content-Range", f"bytes */{size}")])
    return Response(206, "Partial Content", [*hdrs, ("Content-Range", f"bytes {start}-{end}/{size}")],
                    entry.body[start:end + 1])
