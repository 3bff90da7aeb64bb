"""The backbone prober as a lab service (runtime.service): what the supervisor starts from this package."""

from __future__ import annotations

import sys

from ..plan import Plan
from ..runtime.ledger import Ledger
from ..runtime.service import Command, Service
from .prober import backbone_interfaces, mode_file, state_dir


class Prober(Service):
    """The RTT prober, in the origin's network namespace only (it opens one socket in each backbone router's
    namespace, so it runs the host's interpreter). No check of its own: alive is healthy."""

    name = "backbone/prober"

    def __init__(self, plan: Plan, lab: str) -> None:
        self.plan, self.lab = plan, lab
        self.node = plan.topology.origin.name

    def command(self) -> Command:
        return Command([sys.executable, "-m", "anycastlab.backbone.prober", "--lab", self.lab],
                       state_dir(self.lab) / "prober.log", netns_only=True)

    def prepare(self, ledger: Ledger) -> None:
        """Its state directory, and smart routing's initial mode from the topology (a restart keeps the mode
        `backbone smart` set since)."""
        del ledger  # inside the run directory, which `down` removes
        state_dir(self.lab).mkdir(exist_ok=True)
        if not mode_file(self.lab).exists():
            mode_file(self.lab).write_text("on\n" if self.plan.topology.smart_routing else "off\n")


def services(plan: Plan, lab: str) -> list[Prober]:
    """The prober, where the lab has a backbone to probe."""
    return [Prober(plan, lab)] if backbone_interfaces(plan) else []
