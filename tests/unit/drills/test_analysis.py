"""The timeline analysis on synthetic probe records: outages, flips, transient PoPs, convergence."""

from __future__ import annotations

from dataclasses import dataclass

from anycastlab.drills.analysis import analyse, percentile, stats


@dataclass(frozen=True)
class Rec:
    t: float
    client: str
    seq: int
    pop: str | None
    rtt_ms: float | None = 1.0


def series(client: str, pops: list[str | None], interval: float = 0.1, start: float = -1.0) -> list[Rec]:
    return [Rec(start + i * interval, client, i, p) for i, p in enumerate(pops)]


def test_moved_client_with_loss_and_transient_pop() -> None:
    # 10 probes on fra before the fault at t=0, 3 lost, one answer from nrt, then sin until restore at 2.0.
    pops: list[str | None] = ["fra"] * 10 + [None] * 3 + ["nrt"] + ["sin"] * 16 + ["fra"] * 10
    timeline = analyse(series("c1", pops) + series("c2", ["iad"] * 40), ["c1", "c2"], 0.0, 2.0, 0.1)
    c1, c2 = timeline.clients
    assert (c1.pop_before, c1.pop_after, c1.pop_end) == ("fra", "sin", "fra")
    assert c1.lost_probes == 3
    assert c1.transient_pops == ["nrt"]
    assert c1.flips == 3  # fra -> nrt -> sin -> fra
    assert abs(c1.outage_s - 0.4) < 1e-6  # last answer at -0.1, first answer after at 0.3
    assert abs(c1.convergence_s - 0.4) < 1e-6  # last non-final probe (nrt) at 0.3, plus one interval
    assert c2.convergence_s is None and c2.lost_probes == 0 and c2.flips == 0
    assert timeline.convergence()["n"] == 1


def test_percentiles() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert stats([])["p95"] == 0.0
