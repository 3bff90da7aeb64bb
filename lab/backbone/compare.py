"""`anycastlab compare`: what the edge is worth, measured with curl inside client namespaces.

For each chosen client: (1) direct to the origin over transit (HTTPS to its public address, no edge);
(2) through its PoP on a cache hit; (3) through its PoP on a miss over the default backbone path (smart
routing off); (4) the same with smart routing; (5) the same with the tiered cache, the object already at the
upper tier. Every miss is a real miss: each request names a URL no cache has seen (a per-run id), the PoP
must answer MISS, and the origin's own counters must show each default and smart miss reached it once and
each tiered miss not at all (the upper tier answered). Also the TLS handshake to the PoP vs the origin, and
the share of origin requests the tiered cache saves when every PoP asks for the same working set. The lab's
smart-routing and tiered-cache settings are put back afterwards, also on an error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import functools
import json
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .. import interrupts
from ..edge import mgmt
from ..errors import LabError
from ..runtime import paths
from ..runtime.state import RunningLab
from . import control, tiered

HOST = "www.example.com"
CURL_TIMEOUT = 20.0
SETTLE_TIMEOUT = 15.0  # for the routers' FIBs to follow a switch's new costs
WORKING_SET = 8
_FORMAT = "%{time_connect}|%{time_appconnect}|%{time_starttransfer}|%{time_total}|%{http_code}|" \
          "%header{cf-cache-status}|%header{cf-pop}\\n"
CASES = ("direct", "hit", "miss_default", "miss_smart", "miss_tiered")


@dataclass(frozen=True)
class Timing:
    """One request, as curl timed it (milliseconds from the start of the request)."""

    connect_ms: float
    tls_ms: float  # the TLS handshake alone: appconnect - connect
    ttfb_ms: float
    total_ms: float
    status: int
    cache: str
    pop: str


def curl_argv(ca: str, address: str, path: str, scheme: str = "https") -> list[str]:
    port = 443 if scheme == "https" else 80
    return ["curl", "-s", "-o", "/dev/null", "--max-time", str(CURL_TIMEOUT), "--cacert", ca,
            "--resolve", f"{HOST}:{port}:{address}", "-w", _FORMAT, f"{scheme}://{HOST}{path}"]


def parse_timing(line: str) -> Timing:
    connect, appconnect, ttfb, total, code, cache, pop = line.strip().split("|")
    c, a = float(connect), float(appconnect)
    return Timing(round(c * 1000, 2), round(max(0.0, a - c) * 1000, 2) if a else 0.0, round(float(ttfb) * 1000, 2),
                  round(float(total) * 1000, 2), int(code), cache, pop)


def summarize(timings: Sequence[Timing]) -> dict[str, Any]:
    """Medians of a case's repeats (the median resists one slow run on a shared machine)."""
    def med(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    return {"n": len(timings), "ttfb_ms": med([t.ttfb_ms for t in timings]),
            "total_ms": med([t.total_ms for t in timings]), "tls_ms": med([t.tls_ms for t in timings]),
            "connect_ms": med([t.connect_ms for t in timings]),
            "cache": sorted({t.cache for t in timings}), "pop": sorted({t.pop for t in timings})}


def saving(before: float | None, after: float | None) -> float | None:
    if before is None or after is None or before <= 0:
        return None
    return round(1.0 - after / before, 3)


class Comparison:
    def __init__(self, lab: RunningLab, clients: list[str], repeats: int,
                 progress: Callable[[str], None] | None = None) -> None:
        self.lab = lab
        self.plan = lab.plan
        self.clients = clients
        self.repeats = repeats
        self.run_id = uuid.uuid4().hex[:10]
        self.ca = str(paths.ca_dir(lab.name) / "ca.pem")
        self.anycast = str(self.plan.topology.anycast.ip)
        origin = self.plan.nodes[self.plan.topology.origin.name]
        self.origin_public = str(origin.lo_addresses[0].ip)
        self.progress = progress or (lambda _message: None)
        self.counter = 0

    # -- requests ---------------------------------------------------------------------------------------

    def url(self, case: str, client: str) -> str:
        self.counter += 1
        return f"/cache/compare/{self.run_id}/{case}/{client}/{self.counter}?max-age=600"

    def exec(self, node: str, argv: list[str]) -> str:
        try:
            out = subprocess.run(self.lab.exec_argv(node, argv), capture_output=True, text=True,
                                 timeout=CURL_TIMEOUT + 5)
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{node}: {argv[0]} did not finish within {CURL_TIMEOUT + 5:.0f} s") from exc
        if out.returncode != 0:
            raise LabError(f"{node}: {' '.join(argv[:2])}... failed ({out.returncode}): {out.stderr.strip()[:200]}")
        return out.stdout

    def fetch(self, client: str, address: str, path: str) -> Timing:
        timing = parse_timing(self.exec(client, curl_argv(self.ca, address, path)).strip().splitlines()[-1])
        if timing.status != 200:
            raise LabError(f"{client}: https://{HOST}{path} via {address} answered {timing.status}")
        return timing

    def case(self, client: str, case: str, address: str, path: Callable[[], str],
             expect: str | None) -> list[Timing]:
        out = []
        for _ in range(self.repeats):
            timing = self.fetch(client, address, path())
            if expect is not None and timing.cache != expect:
                raise LabError(f"{client}: expected a {expect} in case {case}, the PoP answered {timing.cache!r}")
            out.append(timing)
        return out

    def warm_upper(self, upper: str, path: str) -> None:
        """Put an object in the upper tier's cache by asking it directly on its backbone loopback."""
        address = str(self.plan.nodes[upper].loopback)
        code = self.exec(upper, ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time",
                                 str(CURL_TIMEOUT), "-H", f"Host: {HOST}", f"http://{address}{path}"]).strip()
        if code != "200":
            raise LabError(f"{upper}: warming {path} at the upper tier answered {code}")

    # -- lab settings -----------------------------------------------------------------------------------

    def settle(self) -> dict[str, list[str]]:
        """Wait until every PoP's path to the origin, read from the FIBs, is a lowest-cost path under the
        OSPF costs in force (SPF has run everywhere after a switch); returns the paths."""
        pops = [p.name for p in self.plan.pops]
        origin = self.plan.topology.origin.name
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while True:
            paths = control.paths_to(self.lab, origin, pops)
            if control.converged(paths, control.ospf_costs(self.lab), origin):
                return paths
            if time.monotonic() >= deadline:
                raise LabError(f"the backbone paths did not settle within {SETTLE_TIMEOUT:.0f} s: {paths}")
            time.sleep(0.3)

    def set_modes(self, smart: bool, tier: bool) -> dict[str, list[str]]:
        control.set_smart(self.lab, smart)
        if tiered.uppers(self.plan):
            tiered.switch(self.lab, tier)
        return self.settle()

    def check_origin(self, case: str, client: str, expected: int, meaning: str) -> None:
        """The origin saw exactly `expected` requests for a case's URLs from one client."""
        seen = self.origin_requests(f"/cache/compare/{self.run_id}/{case}/{client}/")
        if seen != expected:
            raise LabError(f"{client}: the origin saw {seen} requests for case {case}, not {expected} ({meaning})")

    def origin_requests(self, prefix: str) -> int:
        sock = paths.lab_dir(self.lab.name) / "origin" / "control.sock"
        try:
            status, data = mgmt.call(sock, "GET", "/stats")
        except mgmt.MgmtError as exc:
            raise LabError(f"the origin's control socket: {exc}") from exc
        if status != 200:
            raise LabError(f"the origin's control socket answered {status}")
        return sum(n for path, n in data.get("by_path", {}).items() if path.startswith(prefix))

    # -- the measurement --------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """The measurement, with the lab's settings put back however it ends."""
        was_smart, was_tiered = control.smart_mode(self.lab), tiered.enabled(self.lab)
        try:
            with interrupts.sigterm_raises(lambda: Terminated("compare was terminated (SIGTERM)")):
                return self._run()
        finally:
            self.restore(was_smart, was_tiered)

    def restore(self, smart: bool, tier: bool) -> None:
        """Put both settings back, each even if the other fails; a second Ctrl-C waits until this is done."""
        failed = []
        with interrupts.held():
            try:
                control.set_smart(self.lab, smart)
            except LabError as exc:
                failed.append(f"smart routing {'on' if smart else 'off'}: {exc}")
            if tiered.uppers(self.plan):
                try:
                    tiered.switch(self.lab, tier)
                except LabError as exc:
                    failed.append(f"tiered cache {'on' if tier else 'off'}: {exc}")
        if failed:
            raise LabError("compare could not put the lab's settings back: " + "; ".join(failed))

    def _run(self) -> dict[str, Any]:
        results: dict[str, dict[str, Any]] = {c: {"client": c, "cases": {}} for c in self.clients}
        raw: dict[str, dict[str, list[Timing]]] = {c: {} for c in self.clients}
        self.progress("direct to the origin, and PoP hits")
        for client in self.clients:
            raw[client]["direct"] = self.case(client, "direct", self.origin_public,
                                              functools.partial(self.url, "direct", client), None)
            warm = self.url("hit", client)
            first = self.fetch(client, self.anycast, warm)
            results[client]["pop"] = first.pop
            raw[client]["hit"] = self.case(client, "hit", self.anycast, functools.partial(str, warm), "HIT")

        self.progress("misses over the default backbone path (smart routing off, tiered cache off)")
        default_paths = self.set_modes(smart=False, tier=False)
        self._misses(raw, "miss_default")
        self.progress("misses with smart routing")
        smart_paths = self.set_modes(smart=True, tier=False)
        self._misses(raw, "miss_smart")
        tiers = tiered.uppers(self.plan)
        if tiers:
            self.progress("misses at the PoP that hit at the upper tier (smart routing on)")
            self.set_modes(smart=True, tier=True)
            for client in self.clients:
                upper = tiered.upper_for(self.plan, results[client]["pop"])
                if upper is None:
                    continue

                def path(c: str = client, u: str = upper) -> str:
                    p = self.url("tiered", c)
                    self.warm_upper(u, p)
                    return p

                self.fetch(client, self.anycast, path())  # a pooled connection to the upper tier, as for misses
                raw[client]["miss_tiered"] = self.case(client, "miss_tiered", self.anycast, path, "MISS")
                self.check_origin("tiered", client, self.repeats + 1, "only the upper tier's own fetches")

        for client in self.clients:
            row = results[client]
            pop = row["pop"]
            row["default_path"], row["smart_path"] = default_paths.get(pop), smart_paths.get(pop)
            row["detour"] = default_paths.get(pop) != smart_paths.get(pop)
            row["cases"] = {case: summarize(t) for case, t in raw[client].items()}
            cases = row["cases"]
            hit = cases["hit"]["ttfb_ms"]
            fetch = {k.removeprefix("miss_"): round(cases[k]["ttfb_ms"] - hit, 2)
                     for k in cases if k.startswith("miss_")}
            row["origin_fetch_ms"] = fetch
            row["smart_saving"] = saving(fetch.get("default"), fetch.get("smart"))
            row["tls_pop_ms"], row["tls_origin_ms"] = cases["hit"]["tls_ms"], cases["direct"]["tls_ms"]
            row["tls_ratio"] = round(cases["hit"]["tls_ms"] / cases["direct"]["tls_ms"], 3) \
                if cases["direct"]["tls_ms"] else None
            row["raw"] = {case: [asdict(t) for t in ts] for case, ts in raw[client].items()}
        out: dict[str, Any] = {"lab": self.lab.name, "run": self.run_id, "repeats": self.repeats,
                               "clients": list(results.values())}
        if tiers:
            self.progress("origin requests for a shared working set, tiered cache off and on")
            out["tiered"] = self.origin_savings()
        rows = out["clients"]
        out["summary"] = {  # the figures issue 6's targets are about
            "smart_saving_where_detour": {r["client"]: r["smart_saving"] for r in rows if r["detour"]},
            "tls_pop_over_origin": {r["client"]: r["tls_ratio"] for r in rows},
            "tiered_origin_requests_saved": out.get("tiered", {}).get("saved"),
        }
        return out

    def _misses(self, raw: dict[str, dict[str, list[Timing]]], case: str) -> None:
        for client in self.clients:
            self.fetch(client, self.anycast, self.url(case + "-warmup", client))  # a fresh pooled connection
            raw[client][case] = self.case(client, case, self.anycast, functools.partial(self.url, case, client),
                                          "MISS")
            self.check_origin(case, client, self.repeats, "each miss fetched from the origin once")

    def origin_savings(self) -> dict[str, Any]:
        """Every PoP's clients ask for the same working set at once: count the origin's requests for it with
        the tiered cache off, then (a new set) on."""
        landing = self.landing_clients()
        counts = {}
        for on in (False, True):
            self.set_modes(smart=True, tier=on)
            prefix = f"/cache/compare/{self.run_id}/working-set-{'on' if on else 'off'}/"
            urls = [f"https://{HOST}{prefix}{k}?max-age=600" for k in range(WORKING_SET)]
            procs = [subprocess.Popen(self.lab.exec_argv(c, ["curl", "-s", "-o", "/dev/null",
                                                             "--max-time", str(CURL_TIMEOUT), "--cacert", self.ca,
                                                             "--resolve", f"{HOST}:443:{self.anycast}", *urls]),
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                     for c in landing.values()]
            for proc in procs:
                try:
                    proc.wait(timeout=CURL_TIMEOUT * 2)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
            counts[on] = self.origin_requests(prefix.split("?")[0])
        return {"working_set": WORKING_SET, "pops": sorted(landing), "clients": sorted(landing.values()),
                "origin_requests_without": counts[False], "origin_requests_with": counts[True],
                "saved": saving(counts[False], counts[True])}

    def landing_clients(self) -> dict[str, str]:
        """One client per PoP that any client lands on (measured: the cf-pop of a trace request)."""
        out: dict[str, str] = {}
        for client in self.plan.clients:
            line = self.exec(client.name, curl_argv(self.ca, self.anycast, "/cdn-cgi/trace")).strip().splitlines()[-1]
            out.setdefault(parse_timing(line).pop, client.name)
        return out


class Terminated(LabError):
    """SIGTERM arrived during compare: unwind, so the lab's settings are put back."""


def default_clients(lab: RunningLab) -> list[str]:
    """The first client of each eyeball ISP: every catchment, near and far from the origin."""
    seen: dict[str, str] = {}
    for client in lab.plan.clients:
        assert client.isp is not None
        seen.setdefault(client.isp, client.name)
    return list(seen.values())


def compare(lab: RunningLab, clients: list[str] | None = None, repeats: int = 3,
            progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    chosen = clients or default_clients(lab)
    for client in chosen:
        node = lab.plan.nodes.get(client)
        if node is None or node.role != "client":
            known = ", ".join(c.name for c in lab.plan.clients)
            raise LabError(f"unknown client {client!r} (known: {known})")
    return Comparison(lab, chosen, repeats, progress).run()


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2)
