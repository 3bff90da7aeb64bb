"""Where the edge keeps its entries: variants by key under a byte budget (LRU), a Cache-Tag index for
purges, and the cache lock that makes concurrent misses on one key a single origin fetch.

The rules that decide what may be stored and reused are lab/edge/cache.py's; this module only keeps
entries and finds them (``fresh`` applies those rules for the proxy's inline hit path).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from dataclasses import dataclass, field

from anycastlab.edge.cache import Entry, Fields, vary_values

# --------------------------------------------------------------------------- the store


@dataclass(slots=True)
class StoreStats:
    entries: int = 0
    bytes: int = 0
    evictions: int = 0
    purged: int = 0


class CacheStore:
    """Variants by key, least-recently-used eviction under a byte budget, and a Cache-Tag index."""

    def __init__(self, max_bytes: int = 256 << 20, max_object_bytes: int = 16 << 20, max_variants: int = 16):
        self.max_bytes = max_bytes
        self.max_object_bytes = min(max_object_bytes, max_bytes)
        self.max_variants = max_variants
        self._entries: OrderedDict[str, list[Entry]] = OrderedDict()
        self._tags: dict[str, set[str]] = {}
        self.stats = StoreStats()

    def __len__(self) -> int:
        return self.stats.entries

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        return list(self._entries)

    def lookup(self, key: str, req: Fields) -> Entry | None:
        """The stored variant that matches this request's selecting headers, most recent first."""
        variants = self._entries.get(key)
        if variants is None:
            return None
        self._entries.move_to_end(key)
        return _matching(variants, req)

    def fresh(self, key: str, req: Fields, now: float) -> Entry | None:
        """The variant ``lookup`` picks, if a request without directives may take it as a HIT now.

        One answer for the proxy's inline path and its general path: the same choice as ``lookup`` (LRU
        order touched) and ``reuse(entry, PLAIN_REQUEST, now) is Reuse.FRESH``, spelled out because this runs
        on every inline hit (tests/unit/edge/test_cache.py checks the two agree): a call less and no
        ``max()`` is a tenth of the inline hit's Python time. Stale entries, and entries to revalidate on
        every use, are None: the caller then takes the general path.
        """
        variants = self._entries.get(key)
        if variants is None:
            return None
        self._entries.move_to_end(key)
        entry = variants[0] if len(variants) == 1 and not variants[0].vary else _matching(variants, req)
        if entry is None:
            return None
        # reuse() with no request directives: FRESH iff the response has no no-cache and age < lifetime
        elapsed = now - entry.response_time
        if entry.corrected_initial_age + (elapsed if elapsed > 0.0 else 0.0) >= entry.lifetime \
                or entry.directives.no_cache:
            return None
        return entry

    def put(self, entry: Entry) -> bool:
        """Store ``entry`` (replacing the variant it matches); False if it is too big to keep."""
        if entry.size > self.max_object_bytes:
            return False
        variants = self._entries.get(entry.key)
        if variants is None:
            variants = self._entries[entry.key] = []
        else:
            self._entries.move_to_end(entry.key)
            for old in [v for v in variants if v.vary_key == entry.vary_key and v.vary == entry.vary]:
                variants.remove(old)
                self._account(old, -1)
            while len(variants) >= self.max_variants:
                self._account(variants.pop(), -1)
        variants.insert(0, entry)
        self._account(entry, +1)
        for tag in entry.tags:
            self._tags.setdefault(tag, set()).add(entry.key)
        self._evict()
        return True

    def resize(self, entry: Entry, old_size: int) -> None:
        """Re-account an entry whose headers changed in place (after a 304)."""
        self.stats.bytes += entry.size - old_size
        for tag in entry.tags:
            self._tags.setdefault(tag, set()).add(entry.key)
        self._evict()

    def _account(self, entry: Entry, sign: int) -> None:
        self.stats.entries += sign
        self.stats.bytes += sign * entry.size

    def _evict(self) -> None:
        while self.stats.bytes > self.max_bytes and self._entries:
            key, variants = self._entries.popitem(last=False)
            for entry in variants:
                self._account(entry, -1)
                self.stats.evictions += 1
            self._untag(key)

    def _untag(self, key: str) -> None:
        for tag in [t for t, keys in self._tags.items() if key in keys]:
            keys = self._tags[tag]
            keys.discard(key)
            if not keys:
                del self._tags[tag]

    def remove(self, entry: Entry) -> None:
        variants = self._entries.get(entry.key)
        if variants is not None and entry in variants:
            variants.remove(entry)
            self._account(entry, -1)
            if not variants:
                del self._entries[entry.key]
                self._untag(entry.key)

    def invalidate(self, key: str) -> int:
        """Drop every variant stored under ``key``; the number dropped."""
        variants = self._entries.pop(key, None)
        if not variants:
            return 0
        for entry in variants:
            self._account(entry, -1)
        tags = set().union(*(e.tags for e in variants))
        for tag in tags:
            keys = self._tags.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._tags[tag]
        return len(variants)

    def purge_tag(self, tag: str) -> int:
        keys = self._tags.pop(tag.strip().lower(), set())
        n = sum(self.invalidate(k) for k in keys)
        self.stats.purged += n
        return n

    def purge_key(self, key: str) -> int:
        n = self.invalidate(key)
        self.stats.purged += n
        return n

    def purge_all(self) -> int:
        n = self.stats.entries
        self._entries.clear()
        self._tags.clear()
        self.stats.entries = 0
        self.stats.bytes = 0
        self.stats.purged += n
        return n


# --------------------------------------------------------------------------- coalescing


@dataclass
class CacheLock:
    """A cache lock: the first miss on a key fetches, concurrent misses wait for it (then re-look-up).

    Waiting is bounded by ``timeout`` so a slow origin cannot park the waiters forever; a waiter that
    gives up, or finds nothing stored afterwards, fetches by itself.
    """

    timeout: float = 10.0
    _inflight: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    waits: int = 0

    def lead(self, key: str) -> bool:
        """True if the caller now holds the lock for ``key`` and must fetch, then ``release``."""
        if key in self._inflight:
            return False
        self._inflight[key] = asyncio.get_running_loop().create_future()
        return True

    def locked(self, key: str) -> bool:
        return key in self._inflight

    async def wait(self, key: str) -> None:
        fut = self._inflight.get(key)
        if fut is None:
            return
        self.waits += 1
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(fut), self.timeout)

    def release(self, key: str) -> None:
        fut = self._inflight.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(None)


def _matching(variants: list[Entry], req: Fields) -> Entry | None:
    """The first stored variant (most recent first) whose selecting headers match the request's."""
    for entry in variants:
        if not entry.vary or entry.vary_key == vary_values(entry.vary, req):
            return entry
    return None
