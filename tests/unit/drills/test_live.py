"""The drills' live stream (lab/drills/live.py): what the runner writes is what another process reads, in
pieces as it grows; a new drill starts the reader over; a drill whose process is gone is not running."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from anycastlab.drills.live import LiveLog, LiveReader
from anycastlab.probes.watch import ProbeRecord


def test_a_reader_follows_a_drill_as_it_is_written(tmp_path: Path) -> None:
    log, reader = LiveLog(tmp_path), LiveReader(tmp_path)
    assert reader.poll() == (False, [])  # nothing written yet
    log.start("withdraw", "fra withdraws", ["c1", "c2"], ["fra", "sin"], 20.0)
    began, records = reader.poll()
    assert began and records == []
    assert reader.drill is not None and reader.drill.running  # this process is the drill's
    log.probe(ProbeRecord(100.0, "c1", 0, "fra", 1.5))
    log.probe(ProbeRecord(100.05, "c2", 0, None, None))
    log.step("fail", "fail withdraw fra", True, 101.0)
    began, records = reader.poll()
    assert not began
    assert records == [[100.0, "c1", 0, "fra", 1.5], [100.05, "c2", 0, None, None]]
    assert [s["label"] for s in reader.drill.steps] == ["fail withdraw fra"] and reader.drill.steps[0]["t"] == 101.0
    log.probe(ProbeRecord(101.2, "c1", 1, "sin", 9.0))
    log.end(True, True, None, {"p95": 0.4})
    began, records = reader.poll()
    assert records == [[101.2, "c1", 1, "sin", 9.0]]
    assert reader.drill.end is not None and reader.drill.end["passed"] is True
    assert not reader.drill.running


def test_a_half_written_line_waits_for_its_end(tmp_path: Path) -> None:
    log, reader = LiveLog(tmp_path), LiveReader(tmp_path)
    log.start("d", "", ["c1"], ["p"], 10.0)
    reader.poll()
    with open(log.path, "ab") as f:
        f.write(b'{"kind": "step", "t": 1, "step": "fail", "lab')
    assert reader.poll() == (False, [])
    with open(log.path, "ab") as f:
        f.write(b'el": "x", "ok": true}\n')
    reader.poll()
    assert reader.drill is not None and [s["label"] for s in reader.drill.steps] == ["x"]


def test_the_next_drill_starts_the_reader_over(tmp_path: Path) -> None:
    log, reader = LiveLog(tmp_path), LiveReader(tmp_path)
    log.start("first", "", ["c1"], ["p"], 10.0)
    log.step("fail", "one")
    log.end(True, True, None, {})
    reader.poll()
    LiveLog(tmp_path).start("second", "", ["c1"], ["p"], 10.0)  # truncates
    began, _ = reader.poll()
    assert began and reader.drill is not None and reader.drill.start["drill"] == "second"
    assert reader.drill.steps == [] and reader.drill.end is None


def test_a_drill_whose_process_died_is_not_running(tmp_path: Path) -> None:
    child = subprocess.run(["python3", "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    log = LiveLog(tmp_path)
    log.start("d", "", ["c1"], ["p"], 10.0)
    text = log.path.read_text().replace(f'"pid":{os.getpid()}', f'"pid":{int(child.stdout)}')
    log.path.write_text(text)
    reader = LiveReader(tmp_path)
    reader.poll()
    assert reader.drill is not None and reader.drill.end is None and not reader.drill.running


def test_an_unwritable_stream_never_fails_the_drill(tmp_path: Path) -> None:
    log = LiveLog(tmp_path / "gone")  # no such directory
    log.start("d", "", ["c1"], ["p"], 10.0)
    log.probe(ProbeRecord(1.0, "c1", 0, "p", 1.0))
    log.end(False, False, "x", {})
    assert not (tmp_path / "gone").exists()
