"""`status`'s summary line: sessions counted once (as `up` counts them), and a dead supervisor said out loud."""

from __future__ import annotations

import os

from anycastlab.cli.status import _sessions, _supervisor_running


def test_a_session_is_counted_once_and_is_up_only_when_both_ends_say_so() -> None:
    routers = [
        {"name": "fra", "sessions": [{"peer": "telia", "state": "Established"}, {"peer": "dtag", "state": "Active"}]},
        {"name": "telia", "sessions": [{"peer": "fra", "state": "Established"}]},
        {"name": "dtag", "sessions": [{"peer": "fra", "state": "Established"}]},
    ]
    assert _sessions(routers) == (1, 2)


def test_supervisor_check_wants_the_supervisor_of_that_lab() -> None:
    assert not _supervisor_running("x", None)
    assert not _supervisor_running("x", os.getpid())  # alive, but not a supervisor
    assert not _supervisor_running("x", 2**22 + 7)    # no such process
