"""Cache rules (RFC 9111 / RFC 5861) on the pure layer: no sockets, time passed in."""

from __future__ import annotations

import asyncio

import pytest
from anycastlab.edge import cache as c
from anycastlab.edge.headers import Headers, http_date
from anycastlab.edge.store import CacheLock, CacheStore
from hypothesis import given, settings
from hypothesis import strategies as st

T0 = 1_800_000_000.0


def entry(hdrs: Headers, *, now: float = T0, req: dict[str, str] | None = None, status: int = 200,
          body: bytes = b"body", key: str = "example.test/x") -> c.Entry:
    req = req or {}
    verdict = c.storability("GET", status, req, hdrs, now)
    assert verdict.store, verdict
    return c.make_entry(key, status, "OK", hdrs, body, req, now, now, verdict.lifetime)


def lifetime(hdrs: Headers, status: int = 200) -> float | None:
    return c.freshness_lifetime(status, hdrs, c.ResponseDirectives.parse(hdrs), T0)


# ---------------------------------------------------------------- freshness


def test_freshness_precedence_s_maxage_over_max_age_over_expires() -> None:
    date = ("Date", http_date(T0))
    expires = ("Expires", http_date(T0 + 50))
    assert lifetime([date, expires]) == 50
    assert lifetime([date, expires, ("Cache-Control", "max-age=20")]) == 20
    assert lifetime([date, expires, ("Cache-Control", "max-age=20, s-maxage=7")]) == 7


def test_surrogate_control_aimed_at_us_beats_cache_control() -> None:
    hdrs = [("Cache-Control", "max-age=3600"), ("Surrogate-Control", "max-age=5")]
    assert lifetime(hdrs) == 5
    other = [("Cache-Control", "max-age=3600"), ("Surrogate-Control", "max-age=5;someone-else")]
    assert lifetime(other) == 3600
    targeted = [("Cache-Control", "no-store"), ("Surrogate-Control", "max-age=60;anycastlab")]
    assert c.storability("GET", 200, {}, targeted, T0).store


def test_invalid_expires_means_already_expired() -> None:
    assert lifetime([("Expires", "0")]) == 0
    assert lifetime([("Expires", "tomorrow")]) == 0


def test_heuristic_freshness_needs_last_modified_and_a_heuristic_status() -> None:
    hdrs = [("Date", http_date(T0)), ("Last-Modified", http_date(T0 - 1000))]
    assert lifetime(hdrs) == pytest.approx(100)
    assert lifetime(hdrs, status=299) is None
    assert lifetime([("Date", http_date(T0))]) is None


def test_incoming_age_counts_against_freshness() -> None:
    e = entry([("Cache-Control", "max-age=100"), ("Age", "60"), ("Date", http_date(T0))])
    assert e.age(T0) == 60
    assert e.is_fresh(T0 + 39)
    assert not e.is_fresh(T0 + 41)


def test_apparent_age_from_an_old_date() -> None:
    e = entry([("Cache-Control", "max-age=100"), ("Date", http_date(T0 - 30))])
    assert e.age(T0) == pytest.approx(30)


@pytest.mark.parametrize("age", ["abc", "-5", "1.0", "5;x=y", "0, 0"])
def test_untrustworthy_age_makes_the_response_stale(age: str) -> None:
    e = entry([("Cache-Control", "max-age=3600"), ("Age", age)])
    assert not e.is_fresh(T0)


def test_current_age_grows_with_resident_time() -> None:
    e = entry([("Cache-Control", "max-age=100")], now=T0)
    assert e.age(T0 + 10) == pytest.approx(10)


# ---------------------------------------------------------------- storability


@pytest.mark.parametrize(
    ("hdrs", "req", "phase"),
    [
        ([("Cache-Control", "no-store, max-age=60")], {}, c.CachePhase.BYPASS),
        ([("Cache-Control", "private, max-age=60")], {}, c.CachePhase.BYPASS),
        ([("Cache-Control", "max-age=60")], {"cache-control": "no-store"}, c.CachePhase.BYPASS),
        ([("Cache-Control", "max-age=60")], {"authorization": "Basic eA=="}, c.CachePhase.BYPASS),
        ([("Cache-Control", "max-age=60"), ("Vary", "*")], {}, c.CachePhase.BYPASS),
        ([("Content-Type", "text/plain")], {}, c.CachePhase.DYNAMIC),
    ],
)
def test_not_stored(hdrs: Headers, req: dict[str, str], phase: c.CachePhase) -> None:
    verdict = c.storability("GET", 200, req, hdrs, T0)
    assert not verdict.store
    assert verdict.phase is phase


def test_authorization_allowed_with_public_or_s_maxage() -> None:
    auth = {"authorization": "Basic eA=="}
    assert c.storability("GET", 200, auth, [("Cache-Control", "public, max-age=60")], T0).store
    assert c.storability("GET", 200, auth, [("Cache-Control", "s-maxage=60")], T0).store


def test_unsafe_and_partial_responses_are_not_stored() -> None:
    hdrs: Headers = [("Cache-Control", "max-age=60")]
    assert not c.storability("POST", 200, {}, hdrs, T0).store
    assert not c.storability("GET", 206, {}, hdrs, T0).store


def test_must_understand_only_for_known_statuses() -> None:
    hdrs: Headers = [("Cache-Control", "max-age=60, must-understand, no-store")]
    assert c.storability("GET", 200, {}, hdrs, T0).store
    assert not c.storability("GET", 599, {}, hdrs, T0).store


def test_no_cache_response_is_stored_but_always_validated() -> None:
    e = entry([("Cache-Control", "no-cache"), ("ETag", '"v1"')])
    assert c.reuse(e, c.RequestDirectives(), T0) is c.Reuse.VALIDATE


def test_qualified_private_fields_are_not_kept() -> None:
    e = entry([("Cache-Control", 'max-age=60, private="Set-Cookie"'), ("Set-Cookie", "a=b"), ("X-Keep", "1")])
    names = {k.lower() for k, _ in e.headers}
    assert "set-cookie" not in names and "x-keep" in names


def test_hop_by_hop_fields_are_not_stored() -> None:
    e = entry([("Cache-Control", "max-age=60"), ("Connection", "X-Conn"), ("X-Conn", "1"),
               ("Keep-Alive", "timeout=5"), ("Age", "3")])
    names = {k.lower() for k, _ in e.headers}
    assert not names & {"connection", "x-conn", "keep-alive", "age"}


# ---------------------------------------------------------------- reuse decisions


def test_reuse_fresh_then_stale_must_validate() -> None:
    e = entry([("Cache-Control", "max-age=10")])
    none = c.RequestDirectives()
    assert c.reuse(e, none, T0 + 5) is c.Reuse.FRESH
    assert c.reuse(e, none, T0 + 11) is c.Reuse.VALIDATE


def test_stale_while_revalidate_window() -> None:
    e = entry([("Cache-Control", "max-age=10, stale-while-revalidate=20")])
    none = c.RequestDirectives()
    assert c.reuse(e, none, T0 + 15) is c.Reuse.SWR
    assert c.reuse(e, none, T0 + 31) is c.Reuse.VALIDATE


@pytest.mark.parametrize("cc", ["must-revalidate", "proxy-revalidate", "s-maxage=10"])
def test_revalidate_directives_forbid_stale(cc: str) -> None:
    e = entry([("Cache-Control", f"max-age=10, {cc}, stale-while-revalidate=60, stale-if-error=60")])
    assert c.reuse(e, c.RequestDirectives(), T0 + 20) is c.Reuse.VALIDATE
    assert not c.may_serve_stale_on_error(e, c.RequestDirectives(), T0 + 20, True, 86400)


def test_stale_if_error_window_and_disconnected_stale() -> None:
    e = entry([("Cache-Control", "max-age=10, stale-if-error=30")])
    none = c.RequestDirectives()
    assert c.may_serve_stale_on_error(e, none, T0 + 35, False, 0)
    assert not c.may_serve_stale_on_error(e, none, T0 + 45, False, 0)
    plain = entry([("Cache-Control", "max-age=10")])
    assert not c.may_serve_stale_on_error(plain, none, T0 + 20, False, 86400)  # a 5xx needs stale-if-error
    assert c.may_serve_stale_on_error(plain, none, T0 + 20, True, 86400)  # a dead origin does not


def test_request_directives() -> None:
    e = entry([("Cache-Control", "max-age=100")])
    assert c.reuse(e, c.RequestDirectives.parse({"cache-control": "max-age=5"}), T0 + 10) is c.Reuse.VALIDATE
    assert c.reuse(e, c.RequestDirectives.parse({"cache-control": "min-fresh=95"}), T0 + 10) is c.Reuse.VALIDATE
    assert c.reuse(e, c.RequestDirectives.parse({"cache-control": "no-cache"}), T0) is c.Reuse.VALIDATE
    assert c.reuse(e, c.RequestDirectives.parse({"pragma": "no-cache"}), T0) is c.Reuse.VALIDATE
    stale = c.RequestDirectives.parse({"cache-control": "max-stale=50"})
    assert c.reuse(e, stale, T0 + 140) is c.Reuse.STALE_OK
    assert c.reuse(e, stale, T0 + 160) is c.Reuse.VALIDATE


# ---------------------------------------------------------------- revalidation


def test_validators_and_304_merge() -> None:
    e = entry([("Cache-Control", "max-age=10"), ("ETag", '"v1"'), ("Last-Modified", http_date(T0 - 99)),
               ("X-Old", "a"), ("Content-Length", "4")])
    assert c.validators(e) == [("If-None-Match", '"v1"'), ("If-Modified-Since", http_date(T0 - 99))]
    later = T0 + 50
    c.merge_304(e, [("Cache-Control", "max-age=100"), ("X-Old", "b"), ("ETag", '"v2"'),
                    ("Content-Length", "0")], later, later)
    hdrs = dict(e.headers)
    assert hdrs["X-Old"] == "b" and hdrs["Cache-Control"] == "max-age=100"
    assert hdrs["ETag"] == '"v1"' and hdrs["Content-Length"] == "4"  # never relabelled by a 304
    assert e.lifetime == 100
    assert e.is_fresh(later + 1)
    assert e.body == b"body"


def test_client_conditionals() -> None:
    hdrs: Headers = [("ETag", 'W/"v1"'), ("Last-Modified", http_date(T0 - 100))]
    assert c.client_not_modified(hdrs, {"if-none-match": '"v1"'})
    assert c.client_not_modified(hdrs, {"if-none-match": "*"})
    assert not c.client_not_modified(hdrs, {"if-none-match": '"v2"'})
    assert c.client_not_modified(hdrs, {"if-modified-since": http_date(T0)})
    assert not c.client_not_modified(hdrs, {"if-modified-since": http_date(T0 - 200)})
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.1.3)
    assert not c.client_not_modified(hdrs, {"if-none-match": '"v2"', "if-modified-since": http_date(T0)})


# ---------------------------------------------------------------- Vary and the store


def test_vary_selects_variants() -> None:
    store = CacheStore()
    hdrs: Headers = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Language")]
    en = entry(hdrs, req={"accept-language": "en"}, body=b"en")
    de = entry(hdrs, req={"accept-language": "de"}, body=b"de")
    store.put(en)
    store.put(de)
    assert store.lookup("example.test/x", {"accept-language": "de"}) is de
    assert store.lookup("example.test/x", {"accept-language": "en"}) is en
    assert store.lookup("example.test/x", {"accept-language": "fr"}) is None
    assert store.lookup("example.test/x", {}) is None
    # list whitespace is normalised
    sp = entry([("Cache-Control", "max-age=60"), ("Vary", "Accept")], req={"accept": "a,b"}, key="k2")
    store.put(sp)
    assert store.lookup("k2", {"accept": "a, b"}) is sp


def test_same_variant_is_replaced_not_duplicated() -> None:
    store = CacheStore()
    store.put(entry([("Cache-Control", "max-age=60")], body=b"1"))
    second = entry([("Cache-Control", "max-age=60")], body=b"2")
    store.put(second)
    assert len(store) == 1
    assert store.lookup("example.test/x", {}) is second


def test_purge_by_key_tag_and_all() -> None:
    store = CacheStore()
    store.put(entry([("Cache-Control", "max-age=60"), ("Cache-Tag", "a, b")], key="h/1"))
    store.put(entry([("Cache-Control", "max-age=60"), ("Cache-Tag", "b")], key="h/2"))
    store.put(entry([("Cache-Control", "max-age=60")], key="h/3"))
    assert store.purge_tag("A") == 1
    assert store.lookup("h/1", {}) is None
    assert store.purge_key("h/3") == 1
    assert store.purge_tag("b") == 1
    assert len(store) == 0 and store.stats.bytes == 0
    store.put(entry([("Cache-Control", "max-age=60")], key="h/4"))
    assert store.purge_all() == 1 and store.stats.bytes == 0


def test_lru_eviction_keeps_recently_used() -> None:
    store = CacheStore(max_bytes=3 * 1400, max_object_bytes=2000)
    for i in range(3):
        store.put(entry([("Cache-Control", "max-age=60")], key=f"h/{i}", body=b"x" * 1000))
    assert store.lookup("h/0", {}) is not None  # touch 0: 1 is now least recently used
    store.put(entry([("Cache-Control", "max-age=60")], key="h/3", body=b"x" * 1000))
    assert store.lookup("h/1", {}) is None
    assert store.lookup("h/0", {}) is not None
    assert store.stats.evictions >= 1
    assert not store.put(entry([("Cache-Control", "max-age=60")], key="big", body=b"x" * 5000))


def test_fresh_is_the_plain_hit_of_the_general_rules() -> None:
    """``fresh`` (the proxy's inline path) answers exactly when lookup + reuse would say FRESH."""
    store = CacheStore()
    cases = {
        "h/fresh": [("Cache-Control", "max-age=10")],
        "h/swr": [("Cache-Control", "max-age=10, stale-while-revalidate=60")],
        "h/no-cache": [("Cache-Control", "no-cache"), ("ETag", '"v"')],
        "h/aged": [("Cache-Control", "max-age=10"), ("Age", "8")],
    }
    for key, hdrs in cases.items():
        store.put(entry(hdrs, key=key))
    for now in (T0, T0 + 1, T0 + 5, T0 + 9.99, T0 + 10, T0 + 30):
        for key in [*cases, "h/absent"]:
            general = store.lookup(key, {})
            want = general if general is not None and c.reuse(general, c.PLAIN_REQUEST, now) is c.Reuse.FRESH \
                else None
            assert store.fresh(key, {}, now) is want, (key, now)
    assert store.fresh("h/fresh", {}, T0 + 9) is not None and store.fresh("h/fresh", {}, T0 + 10) is None


@given(st.integers(0, 10**5), st.integers(0, 10**5), st.floats(-10.0, 2 * 10**5), st.booleans())
def test_fresh_agrees_with_reuse_property(max_age: int, incoming_age: int, elapsed: float, no_cache: bool) -> None:
    """``fresh`` spells reuse()'s FRESH out for speed: the two must never disagree."""
    cc = f"max-age={max_age}" + (", no-cache" if no_cache else "")
    e = entry([("Cache-Control", cc), ("Age", str(incoming_age)), ("ETag", '"v"')])
    store = CacheStore()
    store.put(e)
    now = T0 + elapsed
    want = e if c.reuse(e, c.PLAIN_REQUEST, now) is c.Reuse.FRESH else None
    assert store.fresh(e.key, {}, now) is want


def test_fresh_selects_the_variant_and_touches_lru_order() -> None:
    store = CacheStore(max_bytes=3 * 1400, max_object_bytes=2000)
    hdrs: Headers = [("Cache-Control", "max-age=60"), ("Vary", "Accept-Encoding")]
    gz = entry(hdrs, req={"accept-encoding": "gzip"}, key="h/0", body=b"x" * 900)
    store.put(gz)
    assert store.fresh("h/0", {"accept-encoding": "gzip"}, T0) is gz
    assert store.fresh("h/0", {"accept-encoding": "br"}, T0) is None
    assert store.fresh("h/0", {}, T0) is None
    for i in (1, 2):
        store.put(entry([("Cache-Control", "max-age=60")], key=f"h/{i}", body=b"x" * 1000))
    assert store.fresh("h/0", {"accept-encoding": "gzip"}, T0) is gz  # touch 0: 1 is now least recently used
    store.put(entry([("Cache-Control", "max-age=60")], key="h/3", body=b"x" * 1000))
    assert store.lookup("h/1", {}) is None and store.lookup("h/0", {"accept-encoding": "gzip"}) is gz


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 3000), st.sampled_from(["", "t1", "t2"])),
                max_size=80))
def test_store_accounting_never_exceeds_budget(ops: list[tuple[int, int, str]]) -> None:
    store = CacheStore(max_bytes=20_000, max_object_bytes=8_000)
    for key, size, tag in ops:
        hdrs: Headers = [("Cache-Control", "max-age=60")] + ([("Cache-Tag", tag)] if tag else [])
        store.put(entry(hdrs, key=f"h/{key}", body=b"x" * size))
        if key % 7 == 0:
            store.purge_tag("t1")
        assert store.stats.bytes <= store.max_bytes
        live = sum(e.size for variants in store._entries.values() for e in variants)
        assert live == store.stats.bytes
        assert store.stats.entries == sum(len(v) for v in store._entries.values())


@given(st.integers(0, 10**6), st.integers(0, 10**5), st.floats(0, 10**5))
def test_max_age_freshness_property(max_age: int, incoming_age: int, elapsed: float) -> None:
    e = entry([("Cache-Control", f"max-age={max_age}"), ("Age", str(incoming_age)), ("ETag", '"v"')])
    assert e.is_fresh(T0 + elapsed) == (incoming_age + elapsed < max_age)


# ---------------------------------------------------------------- coalescing


def test_cache_lock_lets_one_leader_fetch() -> None:
    async def scenario() -> tuple[int, int]:
        lock = CacheLock(timeout=2)
        fetches = 0
        served_from_leader = 0
        stored: dict[str, bytes] = {}

        async def request() -> None:
            nonlocal fetches, served_from_leader
            if lock.lead("k"):
                try:
                    fetches += 1
                    await asyncio.sleep(0.05)
                    stored["k"] = b"v"
                finally:
                    lock.release("k")
            else:
                await lock.wait("k")
                if "k" in stored:
                    served_from_leader += 1

        await asyncio.gather(*(request() for _ in range(25)))
        return fetches, served_from_leader

    fetches, followers = asyncio.run(scenario())
    assert fetches == 1
    assert followers == 24


def test_cache_lock_wait_is_bounded() -> None:
    async def scenario() -> float:
        lock = CacheLock(timeout=0.1)
        assert lock.lead("k")
        loop = asyncio.get_running_loop()
        start = loop.time()
        await lock.wait("k")  # leader never releases
        return loop.time() - start

    assert asyncio.run(scenario()) < 1.0
