"""Fault injection's bookkeeping, without a lab: every mode has an injector, a half-done one is undone."""

from __future__ import annotations

from typing import get_args

import pytest
from anycastlab.drills import faults
from anycastlab.drills.model import Fault, Mode


def test_every_mode_of_the_drill_file_has_an_injector() -> None:
    assert set(faults._MODES) == set(get_args(Mode))


def test_a_fault_that_fails_half_way_is_undone_and_the_error_goes_on() -> None:
    done: list[str] = []

    def half() -> None:
        done.append("first half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        faults._applied(Fault(mode="origin-down"), half, lambda: done.append("undone"))
    assert done == ["first half", "undone"]


def test_an_injected_fault_matches_the_restores_that_name_it() -> None:
    item = faults.Injected(Fault(mode="link-down", link=("iad", "cogent")), lambda: None)
    assert item.matches(None, None, None) and item.matches("link-down", None, ("iad", "cogent"))
    assert not item.matches("withdraw", None, None) and not item.matches(None, None, ("iad", "ntt"))
