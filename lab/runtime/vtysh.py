"""Asking a router's FRR for JSON through vtysh, its stable interface (FRR has no Python bindings)."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import LabError


@dataclass(frozen=True)
class Vty:
    """Where one router's FRR answers: its socket directory, and how to reach vtysh there (the node
    handle's `vtysh` prefix: nothing on the netns runtime, nsenter into the container on docker)."""

    directory: Path
    prefix: tuple[str, ...] = ()


def vtysh_argv(vty: Vty, *commands: str, own_history: bool = False) -> list[str]:
    """vtysh on the router, its prompt the router's name (vtysh.conf in its directory). With `own_history`
    (the lab's own calls) vtysh keeps its history in the router's directory, not the user's ~/.history_frr."""
    history = ["env", f"VTYSH_HISTFILE={vty.directory / 'vtysh_history'}"] if own_history else []
    argv = [*vty.prefix, *history, "vtysh", "--vty_socket", str(vty.directory), "--config_dir", str(vty.directory)]
    for command in commands:
        argv += ["-c", command]
    return argv


def vtysh(vty: Vty, *commands: str, timeout: float = 10.0) -> str:
    try:
        out = subprocess.run(vtysh_argv(vty, *commands, own_history=True), capture_output=True, text=True,
                             timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"vtysh in {vty.directory} did not answer within {timeout:.0f} s") from exc
    if out.returncode != 0:
        raise LabError(f"vtysh in {vty.directory} failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def vtysh_json(vty: Vty, command: str, timeout: float = 10.0) -> Any:
    text = vtysh(vty, command, timeout=timeout)
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise LabError(f"vtysh {command!r} in {vty.directory} did not return JSON: {text[:200]!r}") from exc
