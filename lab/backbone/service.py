"""Starting the backbone prober as a lab child (the supervisor's one call into this package)."""

from __future__ import annotations

import sys
from collections.abc import Callable

from ..runtime import procs
from ..runtime.state import RunningLab
from .prober import backbone_interfaces, mode_file, state_dir


def prober_argv(lab: RunningLab) -> list[str]:
    return [sys.executable, "-m", "anycastlab.backbone.prober", "--lab", lab.name]


def start(lab: RunningLab, record_child: Callable[[str, int], None]) -> None:
    """Write the initial smart-routing mode from the topology and start the prober in the origin's
    namespace (it opens one socket in each backbone router's namespace). `record_child` puts the pid in
    the ledger, so down and clean end it."""
    if not backbone_interfaces(lab.plan):
        return
    directory = state_dir(lab.name)
    directory.mkdir(exist_ok=True)
    mode_file(lab.name).write_text("on\n" if lab.plan.topology.smart_routing else "off\n")
    origin = lab.plan.topology.origin.name
    proc = procs.spawn(prober_argv(lab), prefix=lab.handle(origin).netns, log=directory / "prober.log")
    record_child("backbone/prober", proc.pid)
