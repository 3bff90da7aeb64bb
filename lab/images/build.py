"""Building the node images through the docker SDK, each only when its input-hash tag is missing.

A build assembles a context in a temporary directory (the image's directory under images/, plus for the
images that carry anycastlab the wheels built here on the host), runs the legacy builder with host
networking (apt inside the build needs Debian's mirror; containers never get that network), tags the
result `anycastlab/<name>:<hash12>` and `:latest`, and labels it with its name and inputs hash.
Wheels are built on the host because pip inside a build would need the host's CA bundle; the
dependencies' wheels are cached per set of pinned versions, so an edit to the project rebuilds only the
anycastlab wheel and the image's last layer.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anycastlab.errors import LabError

from . import catalog
from .base import BaseResult, ensure_base

if TYPE_CHECKING:
    import docker

Progress = Callable[[str], None]

BUILD_TIMEOUT = 1800.0  # seconds of silence from the daemon before a build is abandoned
WHEEL_TIMEOUT = 900.0
LOCK_PATH = Path("/run/lock/anycastlab-images.lock")
ERROR_TAIL = 25  # build output lines shown when a step fails


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class BuildResult:
    """One image after `build`: "built" or "cached" (its hash tag already existed, nothing was run)."""

    name: str
    tag: str
    status: str
    seconds: float
    image_id: str
    size: int

    def line(self) -> str:
        return f"{self.name:<7} {self.tag:<32} {self.status:<6} {self.seconds:6.1f} s"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tag": self.tag, "status": self.status, "seconds": round(self.seconds, 2),
                "id": self.image_id, "size": self.size}


@dataclass(frozen=True)
class BuildReport:
    base: BaseResult
    images: list[BuildResult]

    def as_dict(self) -> dict[str, Any]:
        return {"base": self.base.as_dict(), "images": [r.as_dict() for r in self.images]}


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One build at a time on this machine: two `up`s or test runs building the same tag would both work."""
    path = LOCK_PATH if LOCK_PATH.parent.is_dir() and os.access(LOCK_PATH.parent, os.W_OK) \
        else Path(tempfile.gettempdir()) / LOCK_PATH.name
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ---- wheels ---------------------------------------------------------------------------------------------


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "anycastlab" / "wheels"


def _pip(args: list[str], what: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=WHEEL_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise LabError(f"pip did not finish {what} within {WHEEL_TIMEOUT:.0f} s") from None
    if done.returncode != 0:
        raise LabError(f"pip failed {what} (exit {done.returncode})", (done.stderr or done.stdout).splitlines()[-15:])


def dependency_wheels(progress: Progress, root: Path, pins: list[str] | None = None) -> Path:
    """A directory of wheels for exactly the pinned dependency versions (`pins`, default the run-time
    closure), built once per set of pins."""
    pins = catalog.dependency_pins(root) if pins is None else pins
    key = hashlib.sha256("\n".join([f"{sys.version_info[:2]}", *pins]).encode()).hexdigest()[:16]
    target = _cache_dir() / key
    if (target / ".complete").exists():
        return target
    progress(f"[wheels] building {len(pins)} dependency wheels (pinned to this venv's versions)")
    target.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"{key}.", dir=target.parent) as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text("\n".join(pins) + "\n")
        out = Path(tmp) / "wheels"
        # --no-deps: the pins are already the whole closure, so pip resolves nothing and takes exactly these.
        _pip(["wheel", "--no-deps", "--wheel-dir", str(out), "-r", str(requirements)], "building dependency wheels")
        (out / ".complete").write_text("\n".join(pins) + "\n")
        shutil.rmtree(target, ignore_errors=True)
        out.rename(target)
    progress(f"[wheels] {len(pins)} dependency wheels in {time.monotonic() - started:.1f} s ({target})")
    return target


def project_wheel(progress: Progress, root: Path, into: Path) -> Path:
    """anycastlab's wheel, built from the snapshot `root` (a copy: no stale build/ directory gets in)."""
    started = time.monotonic()
    _pip(["wheel", "--no-deps", "--wheel-dir", str(into), str(root)], "building the anycastlab wheel")
    wheels = sorted(into.glob("anycastlab-*.whl"))
    if len(wheels) != 1:
        raise LabError(f"expected one anycastlab wheel in {into}, found {len(wheels)}")
    progress(f"[wheels] {wheels[0].name} in {time.monotonic() - started:.1f} s")
    return wheels[0]


def _context(name: str, root: Path, tmp: Path, progress: Progress) -> Path:
    ctx = tmp / "context"
    directory = catalog.image_dir(name, root)
    for path in catalog.context_files(name, root):
        dest = ctx / path.relative_to(directory)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    if catalog.spec(name).wheels:
        deps = ctx / "wheels" / "deps"
        deps.mkdir(parents=True)
        wheel_dirs = [dependency_wheels(progress, root)]
        extras = catalog.spec(name).extras
        if extras:  # the extra groups' own wheels, cached apart so the run-time set is built only once
            base = set(catalog.dependency_pins(root))
            more = [pin for pin in catalog.dependency_pins(root, extras) if pin not in base]
            if more:
                wheel_dirs.append(dependency_wheels(progress, root, more))
        for wheel_dir in wheel_dirs:
            for wheel in wheel_dir.glob("*.whl"):
                if (deps / wheel.name).exists():
                    continue
                if _same_fs(wheel, deps):
                    os.link(wheel, deps / wheel.name)  # the cache is on the same disk: no 100 MB copy
                else:
                    shutil.copy2(wheel, deps / wheel.name)
        project_wheel(progress, root, ctx / "wheels" / "project")
    return ctx


def _same_fs(a: Path, b: Path) -> bool:
    return a.stat().st_dev == b.stat().st_dev


# ---- building -------------------------------------------------------------------------------------------


def _short(line: str, width: int = 110) -> str:
    line = " ".join(line.split())
    return line if len(line) <= width else line[: width - 3] + "..."


def _run_build(client: docker.DockerClient, name: str, tag: str, digest: str, parent_ref: str, ctx: Path,
               no_cache: bool, progress: Progress, verbose: bool) -> str:
    """Run the legacy builder on `ctx`; the new image's id. Step lines go to `progress`."""
    buildargs = {"BASE": parent_ref, **catalog.spec(name).buildargs()}
    labels = {catalog.LABEL_IMAGE: name, catalog.LABEL_INPUTS: digest}
    tail: deque[str] = deque(maxlen=ERROR_TAIL)
    image_id: str | None = None
    saved_timeout = client.api.timeout
    client.api.timeout = BUILD_TIMEOUT
    try:
        stream = client.api.build(path=str(ctx), tag=tag, buildargs=buildargs, labels=labels, rm=True,
                                  forcerm=True, nocache=no_cache, pull=False, network_mode="host", decode=True)
        for chunk in stream:
            if "error" in chunk:
                detail = str(chunk.get("error", "")).strip()
                raise LabError(f"building {tag} failed: {_short(detail, 300)}", list(tail))
            if "aux" in chunk and isinstance(chunk["aux"], dict) and "ID" in chunk["aux"]:
                image_id = str(chunk["aux"]["ID"])
            text = chunk.get("stream")
            if not isinstance(text, str):
                continue
            for line in text.splitlines():
                if not line.strip():
                    continue
                tail.append(line)
                if verbose or line.startswith("Step ") or line.strip() == "---> Using cache":
                    progress(f"[{name}] {_short(line.strip())}")
    finally:
        client.api.timeout = saved_timeout
    if image_id is None:
        image = catalog.find_image(client, tag)
        if image is None:
            raise LabError(f"building {tag} produced no image", list(tail))
        image_id = str(image.id)
    return image_id


def build(names: Iterable[str] | None = None, *, no_cache: bool = False, progress: Progress | None = None,
          verbose: bool = False, client: docker.DockerClient | None = None) -> BuildReport:
    """Build `names` (the node images when None; the runner only when named) and the images they are
    built FROM, skipping current ones.

    An image whose hash tag exists is "cached": no build call is made. `no_cache` rebuilds the named
    images (all when none are named) without the builder's layer cache; their parents stay cached.
    """
    from .daemon import docker_client

    progress = progress or _quiet
    wanted = None if names is None else [catalog.spec(n).name for n in names]
    order = catalog.build_order(wanted)
    forced = set(order if wanted is None else wanted) if no_cache else set()
    client = client or docker_client()
    with build_lock(), tempfile.TemporaryDirectory(prefix="anycastlab-inputs-") as snapshot:
        root = catalog.snapshot_source(Path(snapshot) / "src")
        base = ensure_base(client, progress)
        digests: dict[str, str] = {}
        results: list[BuildResult] = []
        for name in order:
            started = time.monotonic()
            parent = catalog.spec(name).parent
            digest = catalog.inputs_hash(name, base.image_id, root, digests[parent] if parent else None)
            digests[name] = digest
            tag = catalog.tag_for(name, digest)
            repository = catalog.spec(name).repository
            existing = catalog.find_image(client, tag)
            if existing is not None and name not in forced:
                if f"{repository}:latest" not in existing.tags:
                    existing.tag(repository, "latest")
                results.append(BuildResult(name, tag, "cached", time.monotonic() - started, str(existing.id),
                                           int(existing.attrs.get("Size", 0))))
                continue
            parent_ref = catalog.BASE_IMAGE if parent is None else catalog.tag_for(parent, digests[parent])
            progress(f"[{name}] building {tag} FROM {parent_ref}")
            with tempfile.TemporaryDirectory(prefix=f"anycastlab-{name}-") as tmp:
                ctx = _context(name, root, Path(tmp), progress)
                image_id = _run_build(client, name, tag, digest, parent_ref, ctx, name in forced, progress, verbose)
            client.api.tag(image_id, repository, "latest")
            image = client.images.get(image_id)
            results.append(BuildResult(name, tag, "built", time.monotonic() - started, image_id,
                                       int(image.attrs.get("Size", 0))))
            progress(f"[{name}] built {tag} in {results[-1].seconds:.1f} s")
    return BuildReport(base, results)


def ensure(roles: Iterable[str], progress: Progress | None = None,
           client: docker.DockerClient | None = None) -> dict[str, str]:
    """The image tag for each node role or image name, building whatever is missing first.

    What the docker runtime's `up` calls: {"transit": "anycastlab/router:<hash>", "pop": ...}. Images that
    are current cost one lookup each.
    """
    roles = list(dict.fromkeys(roles))
    names = [catalog.image_name(r) for r in roles]
    report = build(names, progress=progress, client=client)
    if progress is not None:
        for result in report.images:
            progress(result.line())
    tags = {r.name: r.tag for r in report.images}
    return {role: tags[name] for role, name in zip(roles, names, strict=True)}
