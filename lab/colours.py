"""One colour per PoP, shared by every picture the lab draws (graph, drill timelines, the web view), so a
PoP has the same colour everywhere.

Colours go by the PoP's position in the topology (plan order), not by which PoPs happen to appear in one
picture: fra is the same orange in a drill that never saw iad as in the full catchment map.
"""

from __future__ import annotations

from collections.abc import Sequence

# Distinct, colour-blind-friendly fills (Okabe-Ito first, then Tableau).
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
           "#8C564B", "#17BECF", "#BCBD22", "#7F7F7F", "#AEC7E8"]
UNKNOWN = "#DDDDDD"


def pop_colours(pops: Sequence[str]) -> dict[str, str]:
    """PoP name -> colour, for the PoPs in topology order."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(pops)}
