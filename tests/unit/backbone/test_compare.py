"""compare's parsing of curl's timings, its medians, its table (pinned in tests/golden/backbone/compare.txt;
UPDATE_GOLDEN=1 to accept a change), and how it puts the lab's settings back."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from anycastlab.backbone import control, tiered
from anycastlab.backbone.compare import Comparison, Terminated, Timing, parse_timing, saving, summarize
from anycastlab.cli.compare import render
from anycastlab.errors import LabError

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "backbone"


def test_parse_timing() -> None:
    t = parse_timing("0.010|0.030|0.041|0.0415|200|HIT|sin\n")
    assert t == Timing(10.0, 20.0, 41.0, 41.5, 200, "HIT", "sin")
    plain = parse_timing("0.010|0.000000|0.020|0.021|200||\n")  # no TLS, no edge headers
    assert plain.tls_ms == 0.0 and plain.cache == "" and plain.pop == ""


def test_summary_takes_medians() -> None:
    runs = [Timing(1, 2, ttfb, ttfb + 1, 200, "MISS", "sin") for ttfb in (100.0, 300.0, 110.0)]
    s = summarize(runs)
    assert s["ttfb_ms"] == 110.0 and s["total_ms"] == 111.0 and s["n"] == 3 and s["cache"] == ["MISS"]


def test_saving() -> None:
    assert saving(300.0, 180.0) == 0.4
    assert saving(None, 1.0) is None and saving(0.0, 1.0) is None


def test_render_golden() -> None:
    data = json.loads((GOLDEN / "compare.json").read_text())
    text = render(data) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        (GOLDEN / "compare.txt").write_text(text)
    assert text == (GOLDEN / "compare.txt").read_text()


# -- compare puts the lab's settings back, however it ends ---------------------------------------------

class Settings:
    """The lab's two switches, faked: what compare changes and must put back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, smart: bool, tier: bool) -> None:
        self.smart, self.tier = smart, tier
        self.fail_smart = False
        self.during_smart: Callable[[], None] = lambda: None
        monkeypatch.setattr(control, "smart_mode", lambda lab: self.smart)
        monkeypatch.setattr(control, "set_smart", self.set_smart)
        monkeypatch.setattr(tiered, "enabled", lambda lab: self.tier)
        monkeypatch.setattr(tiered, "uppers", lambda plan: ["iad"])
        monkeypatch.setattr(tiered, "switch", self.switch)

    def set_smart(self, lab: object, on: bool) -> None:
        self.during_smart()
        if self.fail_smart:
            raise LabError("the backbone prober is not running")
        self.smart = on

    def switch(self, lab: object, on: bool) -> None:
        self.tier = on


def comparison(body: Callable[[], dict[str, Any]]) -> Comparison:
    c = Comparison.__new__(Comparison)  # no lab: only run() and restore() are exercised
    c.lab, c.plan = None, None  # type: ignore[assignment]
    c._run = body  # type: ignore[method-assign]
    return c


def test_settings_come_back_after_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Settings(monkeypatch, smart=False, tier=True)

    def body() -> dict[str, Any]:
        lab.smart, lab.tier = True, False  # what compare's cases switch
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        comparison(body).run()
    assert (lab.smart, lab.tier) == (False, True)


def test_settings_come_back_after_sigterm(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Settings(monkeypatch, smart=False, tier=False)

    def body() -> dict[str, Any]:
        lab.smart = lab.tier = True
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises before this ends
        return {}

    with pytest.raises(Terminated):
        comparison(body).run()
    assert (lab.smart, lab.tier) == (False, False)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_one_failed_restore_does_not_skip_the_other(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Settings(monkeypatch, smart=True, tier=False)

    def body() -> dict[str, Any]:
        lab.tier = True
        lab.fail_smart = True
        return {}

    with pytest.raises(LabError, match="could not put the lab's settings back: smart routing on"):
        comparison(body).run()
    assert lab.tier is False


def test_ctrl_c_during_restore_waits_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    lab = Settings(monkeypatch, smart=True, tier=False)
    lab.during_smart = lambda: os.kill(os.getpid(), signal.SIGINT)

    def body() -> dict[str, Any]:
        lab.tier = True
        raise LabError("a request failed")

    with pytest.raises(KeyboardInterrupt):
        comparison(body).run()
    assert (lab.smart, lab.tier) == (True, False)  # both put back before the interrupt took effect


def test_a_negative_fetch_time_is_shown_as_noise() -> None:
    data = json.loads((GOLDEN / "compare.json").read_text())
    data["clients"][0]["origin_fetch_ms"] = {"default": -3.5, "smart": 12.0}
    text = render(data)
    assert "0* > 12" in text and "-3" not in text.split("fetch ms:")[0]
    assert "0*: the miss answered sooner than the median hit" in text
