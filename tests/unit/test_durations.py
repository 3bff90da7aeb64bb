"""The lab's one duration grammar (lab/durations.py), and that links, drills and `link set` all use it."""

from __future__ import annotations

from pathlib import Path

import pytest
from anycastlab import durations, units
from anycastlab.drills.model import DrillFileError, load_drill, parse_duration
from anycastlab.errors import TopologyError
from anycastlab.model import load_topology


@pytest.mark.parametrize(("text", "s"), [("500us", 0.0005), ("500µs", 0.0005), ("5ms", 0.005), ("1.5s", 1.5),
                                         ("2m", 120.0), ("1h", 3600.0), (".5s", 0.5), ("200 ms", 0.2), ("0", 0.0),
                                         (0, 0.0), ("0s", 0.0)])
def test_the_grammar(text: object, s: float) -> None:
    assert durations.seconds(text) == pytest.approx(s, abs=1e-12)
    assert durations.milliseconds(text) == pytest.approx(s * 1000, abs=1e-9)


@pytest.mark.parametrize("bare", [5, 1.5, "5", "1.5"])
def test_a_bare_number_is_refused_naming_the_units(bare: object) -> None:
    with pytest.raises(ValueError, match=r"has no unit: write it with one of us, ms, s, m or h"):
        durations.seconds(bare, "timeout")


@pytest.mark.parametrize("bad", ["soon", "5 sec", "-1s", "1e3ms", "5mss", "", True, None])
def test_nonsense_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match=r"us, ms, s, m or h"):
        durations.seconds(bad)


def test_links_and_drills_read_the_same_text_the_same_way() -> None:
    for text in ("500us", "5ms", "1.5s"):
        assert units.duration_ms(text) == pytest.approx(parse_duration(text) * 1000)
    assert parse_duration("2m") == 120 and parse_duration("500us") == pytest.approx(0.0005)  # failed before
    for bare in ("5", 5):
        with pytest.raises(ValueError):
            units.duration_ms(bare)  # was 5 ms
        with pytest.raises(ValueError):
            parse_duration(bare)  # was 5 s


def test_show_speaks_the_grammar() -> None:
    shown = [durations.show(s) for s in (0, 0.0005, 0.25, 1.5, 120, 90)]
    assert shown == ["0s", "500us", "250ms", "1.5s", "2m", "90s"]
    assert all(durations.seconds(x) == pytest.approx(s) for x, s in zip(shown, (0, 0.0005, 0.25, 1.5, 120, 90),
                                                                          strict=True))


def test_file_errors_keep_file_line_field(tmp_path: Path) -> None:
    drill = tmp_path / "d.yaml"
    drill.write_text("name: d\nsteps:\n  - fail: {pop: a, mode: crash}\n  - wait: 5\n")
    with pytest.raises(DrillFileError) as info:
        load_drill(drill)
    assert str(info.value).startswith(f"{drill}:4: steps[1].wait")
    assert "has no unit: write it with one of us, ms, s, m or h" in str(info.value)
    topo = tmp_path / "t.yaml"
    topo.write_text("""name: t
transits: [{name: ta, asn: 64510}]
pops: [{name: ams, upstreams: [ta]}]
eyeballs: [{name: ispa, asn: 64520, upstreams: [ta]}]
origin: {upstreams: [ta], pops: [ams]}
links:
  - {between: [ams, ta], delay: 40}
""")
    with pytest.raises(TopologyError) as err:
        load_topology(topo)
    assert str(err.value).startswith(f"{topo}:7: links[0].delay: delay 40 has no unit")
