"""The link delay releaser as a lab service (runtime.service): what link shaping starts, and starts again."""

from __future__ import annotations

import sys
from pathlib import Path

from .. import paths
from ..service import Command, Service


class Releaser(Service):
    """The releaser, in one node's network namespace only (never the host's): it runs the host's interpreter
    and enters every node's namespace for its queues. No check of its own: alive is healthy (control.py
    starts it again when it dies)."""

    name = "links/releaser"

    def __init__(self, directory: Path, node: str, report: Path, log: Path) -> None:
        self.directory, self.node, self.report, self.log = directory, node, report, log

    def command(self) -> Command:
        return Command([sys.executable, "-m", "anycastlab.runtime.links.releaser", "--state",
                        str(paths.links_file(self.directory)), "--report", str(self.report)], self.log,
                       netns_only=True)
