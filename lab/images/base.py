"""The Debian base every image starts FROM: present, pulled, or built offline from Debian's packages.

No image registry is reachable on some machines (this lab's CI among them) while Debian's mirror is. Then
mmdebstrap builds a minbase bookworm root filesystem as a tarball, and the daemon imports it under the
name the Dockerfiles use (`debian:bookworm-slim`), so they keep a normal FROM for users who can pull.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anycastlab.errors import LabError

from .catalog import BASE_IMAGE, find_image

if TYPE_CHECKING:
    import docker

PULL_TIMEOUT = 30.0  # seconds; an unreachable registry fails at once or hangs, either way this bounds it
MMDEBSTRAP_TIMEOUT = 900.0
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
SUITE = "bookworm"
# The three suites an official bookworm image lists, so apt inside a build gets security updates too.
SOURCES = (f"deb {MIRROR} {SUITE} main", f"deb {MIRROR} {SUITE}-updates main",
           f"deb {SECURITY_MIRROR} {SUITE}-security main")
# Slim like the official -slim image: no manuals, docs (but copyrights) or translations.
DPKG_OPTS = ("path-exclude=/usr/share/man/*", "path-exclude=/usr/share/doc/*",
             "path-include=/usr/share/doc/*/copyright", "path-exclude=/usr/share/info/*",
             "path-exclude=/usr/share/locale/*", "path-include=/usr/share/locale/locale.alias")
# Nothing of the host stays in the image: mmdebstrap copies the host's resolv.conf and hostname in for
# the install (Docker provides both at run time), and apt's downloaded lists and caches go too.
CUSTOMIZE_HOOKS = ('rm -f "$1/etc/resolv.conf" "$1/etc/hostname"',
                   'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/cache/apt/archives/*.deb',
                   'rm -f "$1"/var/log/dpkg.log "$1"/var/log/apt/*.log "$1"/var/log/alternatives.log')
BASE_LABEL = "anycastlab.base"


@dataclass(frozen=True)
class BaseResult:
    """How the base came to be there: "present", "pulled" or "mmdebstrap", and how long that took."""

    name: str
    source: str
    seconds: float
    image_id: str

    def message(self) -> str:
        if self.source == "mmdebstrap":
            return (f"no registry reachable: built {self.name} from Debian packages with mmdebstrap "
                    f"({self.seconds:.0f} s)")
        if self.source == "pulled":
            return f"pulled {self.name} ({self.seconds:.0f} s)"
        return f"{self.name} present"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "seconds": round(self.seconds, 2), "id": self.image_id}


def try_pull(client: docker.DockerClient, ref: str, timeout: float = PULL_TIMEOUT) -> str | None:
    """Pull `ref`, giving up after `timeout`; the error (None on success).

    docker-py's pull has no timeout of its own, so it runs in a daemon thread that is abandoned if late.
    """
    repository, _, tag = ref.partition(":")
    outcome: list[str | None] = []

    def pull() -> None:
        try:
            for chunk in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
                if isinstance(chunk, dict) and chunk.get("error"):
                    outcome.append(str(chunk["error"]))
                    return
            outcome.append(None)
        except Exception as exc:  # any failure means "not pulled"; the caller builds offline
            outcome.append(f"{type(exc).__name__}: {exc}")

    thread = threading.Thread(target=pull, name=f"pull {ref}", daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome:
        return f"no answer from the registry within {timeout:.0f} s"
    return outcome[0]


def build_offline(client: docker.DockerClient, progress: Callable[[str], None]) -> str:
    """mmdebstrap a minbase bookworm into a tarball and import it as BASE_IMAGE; the new image's id."""
    tool = shutil.which("mmdebstrap")
    if tool is None:
        raise LabError(f"{BASE_IMAGE} is missing and cannot be pulled, and mmdebstrap (which builds it from "
                       "Debian's packages) is not installed: apt-get install mmdebstrap, or run `make docker`")
    repository, _, tag = BASE_IMAGE.partition(":")
    with tempfile.TemporaryDirectory(prefix="anycastlab-base-", dir="/var/tmp") as tmp:
        tarball = Path(tmp) / "rootfs.tar"
        cmd = [tool, "--variant=minbase", "--mode=root", "--format=tar", "--quiet",
               *(f"--dpkgopt={o}" for o in DPKG_OPTS), *(f"--customize-hook={h}" for h in CUSTOMIZE_HOOKS),
               SUITE, str(tarball), *SOURCES]
        progress(f"[base] mmdebstrap --variant=minbase {SUITE} (from {MIRROR})")
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=MMDEBSTRAP_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            raise LabError(f"mmdebstrap did not finish within {MMDEBSTRAP_TIMEOUT:.0f} s") from None
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
            raise LabError(f"mmdebstrap failed (exit {done.returncode}) building {BASE_IMAGE}", tail)
        progress(f"[base] docker import ({tarball.stat().st_size / 1e6:.0f} MB) as {BASE_IMAGE}")
        changes = ['CMD ["bash"]', f'LABEL {BASE_LABEL}="mmdebstrap {SUITE} minbase"']
        client.api.import_image(src=str(tarball), repository=repository, tag=tag, changes=changes)
    image = find_image(client, BASE_IMAGE)
    if image is None:
        raise LabError(f"docker import did not produce {BASE_IMAGE}")
    return str(image.id)


def ensure_base(client: docker.DockerClient, progress: Callable[[str], None]) -> BaseResult:
    """BASE_IMAGE on the daemon: as it is, else pulled, else built from Debian's packages (and said so)."""
    started = time.monotonic()
    image = find_image(client, BASE_IMAGE)
    if image is not None:
        return BaseResult(BASE_IMAGE, "present", 0.0, str(image.id))
    progress(f"[base] {BASE_IMAGE} is missing: pulling it")
    error = try_pull(client, BASE_IMAGE)
    image = find_image(client, BASE_IMAGE) if error is None else None
    if image is not None:
        return BaseResult(BASE_IMAGE, "pulled", time.monotonic() - started, str(image.id))
    progress(f"[base] pull failed ({error}); building it from Debian's packages")
    started = time.monotonic()
    image_id = build_offline(client, progress)
    result = BaseResult(BASE_IMAGE, "mmdebstrap", time.monotonic() - started, image_id)
    progress(result.message())
    return result
