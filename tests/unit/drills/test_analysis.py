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
    assert c1.convergence_s == 0.4  # last non-final probe (nrt) at 0.3, plus one interval
    assert c2.convergence_s is None and c2.lost_probes == 0 and c2.flips == 0
    assert timeline.convergence()["n"] == 1


def test_percentiles() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert stats([])["p95"] == 0.0


def test_outage_starts_at_the_last_answer_even_if_probes_just_before_the_fault_were_lost() -> None:
    # Answers from fra at -1.0 .. -0.3, lost at -0.2 .. 0.1, sin from 0.2 on; fault at 0, no restore.
    pops: list[str | None] = ["fra"] * 8 + [None] * 4 + ["sin"] * 10
    (c1,) = analyse(series("c1", pops), ["c1"], 0.0, None, 0.1).clients
    assert c1.outage_s == 0.5  # 0.2 - (-0.3)
    assert c1.outage_window == [-0.3, 0.2]
    assert c1.lost_probes == 2  # only those sent after the fault (0.0 and 0.1)
    assert c1.convergence_s == 0.2  # last lost probe at 0.1, plus one interval
    assert (c1.pop_before, c1.pop_after, c1.pop_end, c1.flips) == ("fra", "sin", "sin", 1)


def test_an_outage_that_never_ends_runs_to_the_last_probe_plus_one_interval() -> None:
    # fra until -0.1, then every probe lost up to 0.4.
    (c1,) = analyse(series("c1", ["fra"] * 10 + [None] * 5), ["c1"], 0.0, None, 0.1).clients
    assert c1.outage_s == 0.6  # (0.4 + 0.1) - (-0.1)
    assert c1.outage_window == [-0.1, None]
    assert (c1.pop_after, c1.lost_probes, c1.flips, c1.convergence_s) == (None, 5, 0, 0.5)


def test_the_longest_outage_counts_and_restore_convergence_is_measured_from_the_restore() -> None:
    # Fault at 0: one probe lost (0.0), sin from 0.1; restore at 1.0: three lost (1.0 .. 1.2), fra from 1.3.
    pops: list[str | None] = ["fra"] * 10 + [None] + ["sin"] * 9 + [None] * 3 + ["fra"] * 7
    (c1,) = analyse(series("c1", pops), ["c1"], 0.0, 1.0, 0.1).clients
    assert c1.outage_s == 0.4 and c1.outage_window == [0.9, 1.3]  # the restore's gap beats the fault's 0.2 s
    assert (c1.lost_probes, c1.flips, c1.transient_pops) == (4, 2, [])
    assert c1.convergence_s == 0.1 and c1.restore_convergence_s == 0.3  # 1.2 + 0.1 - 1.0


def test_a_pop_seen_only_in_passing_is_transient_and_every_change_is_a_flip() -> None:
    pops: list[str | None] = [*["fra"] * 10, "nrt", "sin", "nrt", *["sin"] * 7]
    (c1,) = analyse(series("c1", pops), ["c1"], 0.0, None, 0.1).clients
    assert (c1.pop_after, c1.transient_pops, c1.flips, c1.lost_probes) == ("sin", ["nrt"], 4, 0)
    assert c1.outage_s == 0.0 and c1.outage_window is None
    assert c1.convergence_s == 0.3  # the last nrt answer at 0.2, plus one interval


def test_convergence_statistics_over_affected_clients_only() -> None:
    # Four clients move, converging 0.1, 0.3, 0.5 and 0.9 s after the fault; a fifth is not affected and does not count.
    records = []
    for name, lost in (("a", 1), ("b", 3), ("c", 5), ("d", 9)):
        records += series(name, ["fra"] * 10 + [None] * lost + ["sin"] * 12)
    records += series("e", ["iad"] * 30)
    timeline = analyse(records, ["a", "b", "c", "d", "e"], 0.0, None, 0.1)
    assert [c.convergence_s for c in timeline.clients] == [0.1, 0.3, 0.5, 0.9, None]
    assert timeline.convergence() == {"p50": 0.3, "p95": 0.9, "max": 0.9, "n": 4}
