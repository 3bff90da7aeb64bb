"""Running the runner image privileged: `--privileged`, or where this host's capability bounding set makes
Docker refuse it ("unable to apply caps"), the same spelled out without the capabilities the host lacks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ..errors import LabError

# Linux capability numbers Docker knows by name (capability(7)), in bit order.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ",
)


def docker(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The docker CLI against the daemon at `url`, as a user would type it."""
    return subprocess.run(["docker", *args], env={**os.environ, "DOCKER_HOST": url}, capture_output=True,
                          text=True, timeout=timeout, check=False)


def privileged_flags(url: str, image: str, labels: dict[str, str] | None = None) -> list[str]:
    """`--privileged` if Docker starts `image` so, else the same spelled out; the trial container (with
    `labels`) is removed by its id."""
    tags = [f for key, value in (labels or {}).items() for f in ("--label", f"{key}={value}")]
    created = docker(url, "create", "--privileged", "--network", "none", *tags, image, "--version")
    if created.returncode != 0:
        raise LabError(f"docker create failed: {created.stderr.strip()}")
    cid = created.stdout.strip()
    try:  # `run --rm` can leave a container that failed to start behind: remove it by its id
        done = docker(url, "start", "-a", cid)
    finally:
        docker(url, "rm", "-f", cid)
    if done.returncode == 0:
        return ["--privileged"]
    if "caps" not in done.stderr:  # "unable to apply caps: operation not permitted" is the one we handle
        raise LabError(f"docker refused --privileged: {done.stderr.strip()}")
    bounding = int(next(line.split()[1] for line in Path("/proc/self/status").read_text().splitlines()
                        if line.startswith("CapBnd:")), 16)
    missing = [name for bit, name in enumerate(CAPABILITIES) if not bounding >> bit & 1]
    return ["--cap-add", "ALL", *(f for name in missing for f in ("--cap-drop", name)),
            "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
            "--security-opt", "systempaths=unconfined"]
