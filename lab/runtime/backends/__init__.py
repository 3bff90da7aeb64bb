"""The runtimes a lab can run on, by name (see base.py for the interface)."""

from __future__ import annotations

from .base import Runtime

NAMES = ("netns", "docker")
DEFAULT = "netns"


def runtime_class(name: str) -> type[Runtime]:
    """The runtime called `name`; the docker one (and its SDK) is imported only when asked for."""
    if name == "netns":
        from .netns import NetnsRuntime

        return NetnsRuntime
    if name == "docker":
        from .docker import DockerRuntime

        return DockerRuntime
    from ...errors import LabError

    raise LabError(f"unknown runtime {name!r} (known: {', '.join(NAMES)})")
