"""FRR's log-line prefix, stripped one way for the dry-run's config errors and the drills' event log."""

from __future__ import annotations

import pytest
from anycastlab.runtime.frr import log_message


@pytest.mark.parametrize(("line", "message"), [
    ("2026/12/01 13:00:00 BGP: [M7Q4P-2CQTJ][EC 33554454] %ADJCHANGE: neighbor 10.0.0.1 in vrf default Down",
     "%ADJCHANGE: neighbor 10.0.0.1 in vrf default Down"),
    ("2026/12/01 13:00:00.123 BGP: [RZMGQ-A03CG] 10.0.0.1 rcvd UPDATE about 198.51.100.10/32 IPv4 unicast -- withdrawn",
     "10.0.0.1 rcvd UPDATE about 198.51.100.10/32 IPv4 unicast -- withdrawn"),
    ("2026/12/01 13:00:00 ZEBRA: [EC 100663302] config line 12: Unknown command", "config line 12: Unknown command"),
    ("2026/12/01 13:00:00 OSPF: no tag here  ", "no tag here"),
    ("not an FRR line", "not an FRR line"),
])
def test_the_prefix_goes_and_the_message_stays_whole(line: str, message: str) -> None:
    assert log_message(line) == message
