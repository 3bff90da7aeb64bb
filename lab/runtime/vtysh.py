"""Asking a router's FRR for JSON through vtysh, its stable interface (FRR has no Python bindings)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ..errors import LabError


def vtysh_argv(directory: Path, *commands: str) -> list[str]:
    argv = ["vtysh", "--vty_socket", str(directory)]
    for command in commands:
        argv += ["-c", command]
    return argv


def vtysh(directory: Path, *commands: str, timeout: float = 10.0) -> str:
    try:
        out = subprocess.run(vtysh_argv(directory, *commands), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"vtysh in {directory} did not answer within {timeout:.0f} s") from exc
    if out.returncode != 0:
        raise LabError(f"vtysh in {directory} failed: {(out.stderr or out.stdout).strip()}")
    return out.stdout


def vtysh_json(directory: Path, command: str, timeout: float = 10.0) -> Any:
    text = vtysh(directory, command, timeout=timeout)
    try:
        return json.loads(text) if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise LabError(f"vtysh {command!r} in {directory} did not return JSON: {text[:200]!r}") from exc
