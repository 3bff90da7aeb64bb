"""The node images: their names, what each is built from, and the hash of its inputs that names its tag.

A tag is `anycastlab/<name>:<hash12>`, where the hash covers everything a build reads: the image's
directory under images/ (Dockerfile and any other file), its build arguments, the id of the image it is
built FROM (the Debian base, or the parent's hash for a chained image), and for the images that carry the
anycastlab package, the project's source (pyproject.toml, lab/, cli/, topologies/), the pinned versions of
its dependencies as installed in this environment, and the Python version. Hashing reads files and package
metadata only, never builds a wheel, so the runtime can ask for "the image this source would produce" in
milliseconds. README.md is not hashed: it only changes the wheel's metadata.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import sys
import tomllib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from anycastlab.errors import LabError

if TYPE_CHECKING:
    import docker

REPOSITORY = "anycastlab"
BASE_IMAGE = "debian:bookworm-slim"  # what the Dockerfiles' ARG BASE defaults to, pulled or built offline

# Fixed ids for FRR in every image that has it: the runtime chowns config and run directories to them.
# images/router/Dockerfile's ARG defaults say the same (a unit test keeps them equal).
FRR_UID = 9092
FRR_GID = 9092
FRRVTY_GID = 9093

LABEL_IMAGE = "anycastlab.image"
LABEL_INPUTS = "anycastlab.inputs"
HASH_SCHEMA = "anycastlab-images-v1"  # bump to invalidate every tag at once
TAG_LENGTH = 12

SOURCE_FILES = ("pyproject.toml",)
SOURCE_DIRS = ("lab", "cli", "topologies")
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "wheels"}
_SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


@dataclass(frozen=True)
class ImageSpec:
    """One node image: where its Dockerfile is and what it is built FROM."""

    name: str
    summary: str
    parent: str | None  # another catalog image it is built FROM; None: the Debian base
    wheels: bool = False  # its build context carries the project's wheels (it installs anycastlab)
    extras: tuple[str, ...] = ()  # pyproject optional-dependency groups it also installs (wheels only)

    @property
    def repository(self) -> str:
        return f"{REPOSITORY}/{self.name}"

    def buildargs(self) -> dict[str, str]:
        """Build arguments besides BASE (which the builder sets to the exact parent tag)."""
        if self.name == "router":
            return {"FRR_UID": str(FRR_UID), "FRR_GID": str(FRR_GID), "FRRVTY_GID": str(FRRVTY_GID)}
        return {}


IMAGES: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("router", "FRR (zebra, bgpd, bfdd, ospfd), iproute2, iptables, tcpdump, ping, traceroute, unbound",
                  None),
        ImageSpec("pop", "router + the anycastlab package at /opt/anycastlab (edge proxy, DNS identity)",
                  "router", wheels=True),
        ImageSpec("origin", "the pop's contents + gdnsd, for the origin (FRR, the origin server, steering's DNS)",
                  "pop"),
        ImageSpec("client", "curl, openssl, dig, traceroute, ping, iproute2, iptables, hping3; no FRR", None),
    )
}

# Images that are not lab nodes: built only when named (`anycastlab images build runner`, `make image`), so
# the default build stays what the docker runtime needs. The runner holds the whole tool, for
# `docker run --privileged anycastlab/runner ...` (the netns runtime inside one container).
TOOLS: dict[str, ImageSpec] = {
    spec.name: spec
    for spec in (
        ImageSpec("runner", "the whole tool in one privileged container: FRR, mnexec, anycastlab (+ dev tools)",
                  "router", wheels=True, extras=("dev",)),
    )
}

CATALOG: dict[str, ImageSpec] = {**IMAGES, **TOOLS}  # every image `images build NAME` knows

# A node's role (lab/plan.py Role) -> the image it runs by default.
ROLE_IMAGES: dict[str, str] = {
    "transit": "router", "eyeball": "router", "pop": "pop", "origin": "origin", "client": "client",
}


class UnknownImageError(LabError):
    def __init__(self, name: str) -> None:
        # the node images, then the tool images, which `images build` makes only when named
        super().__init__(f"unknown image {name!r} (known: {', '.join(IMAGES)}) (tool images: {', '.join(TOOLS)})")
        self.name = name


def spec(name: str) -> ImageSpec:
    if name not in CATALOG:
        raise UnknownImageError(name)
    return CATALOG[name]


def image_name(role: str) -> str:
    """The catalog image for a node role (`transit` -> `router`) or an image name itself."""
    if role in ROLE_IMAGES:
        return ROLE_IMAGES[role]
    spec(role)
    return role


def build_order(names: Iterable[str] | None = None) -> list[str]:
    """`names` (the node images when None) and the images they are built FROM, parents first, each once."""
    wanted = list(IMAGES) if names is None else [spec(n).name for n in names]
    order: list[str] = []

    def visit(name: str) -> None:
        parent = CATALOG[name].parent
        if parent is not None:
            visit(parent)
        if name not in order:
            order.append(name)

    for name in wanted:
        visit(name)
    return order


# ---- inputs ---------------------------------------------------------------------------------------------


def source_root() -> Path:
    """The project checkout the images are built from (ANYCASTLAB_SOURCE, else where this module lives)."""
    env = os.environ.get("ANYCASTLAB_SOURCE")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2])  # lab/images/catalog.py -> the checkout
    for root in candidates:
        if (root / "images").is_dir() and (root / "pyproject.toml").is_file():
            return root
    raise LabError("images are built from a source checkout of anycastlab (with images/ and pyproject.toml); "
                   "none found: set ANYCASTLAB_SOURCE to one")


def image_dir(name: str, root: Path | None = None) -> Path:
    return (root or source_root()) / "images" / spec(name).name


def _walk(base: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for filename in sorted(filenames):
            if not filename.endswith(_SKIP_SUFFIXES):
                yield Path(dirpath) / filename


def context_files(name: str, root: Path | None = None) -> list[Path]:
    """The files of an image's own directory that go into its build context (not the generated wheels)."""
    return list(_walk(image_dir(name, root)))


def source_files(root: Path | None = None) -> list[Path]:
    """The project files a wheel of anycastlab is built from (and that the hash covers)."""
    root = root or source_root()
    files = [root / f for f in SOURCE_FILES if (root / f).is_file()]
    for d in SOURCE_DIRS:
        files.extend(_walk(root / d))
    return files


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def dependency_pins(root: Path | None = None, extras: Sequence[str] = ()) -> list[str]:
    """`name==version` for every distribution anycastlab needs at run time, as installed here.

    The closure of pyproject's dependencies (and of the optional-dependency groups `extras`) through the
    installed packages' metadata (markers evaluated for this interpreter), so the image gets exactly the
    versions the host's venv was tested with.
    """
    pyproject = (root or source_root()) / "pyproject.toml"
    return list(_pins(pyproject, pyproject.stat().st_mtime_ns, tuple(extras)))


@dataclass(frozen=True)
class _Installed:
    version: str
    metadata: Path  # its METADATA (or PKG-INFO) file


def _installed() -> dict[str, _Installed]:
    """Installed distributions by canonical name, read from *.dist-info directory names.

    importlib.metadata would parse every METADATA file with the email parser (0.2 s for this venv);
    the directory name already says name and version, and only the needed files' Requires-Dist is read.
    """
    found: dict[str, _Installed] = {}
    for entry in sys.path:
        directory = Path(entry or ".")
        if not directory.is_dir():
            continue
        for child in directory.iterdir():
            if child.suffix == ".dist-info":
                name, _, version = child.stem.partition("-")
                found.setdefault(_canonical(name), _Installed(version, child / "METADATA"))
            elif child.suffix == ".egg-info" and child.is_dir():
                name, _, rest = child.stem.partition("-")
                found.setdefault(_canonical(name), _Installed(rest.split("-py")[0], child / "PKG-INFO"))
    return found


def _requires(metadata: Path) -> list[str]:
    """The Requires-Dist lines of a METADATA file's header (which ends at the first blank line)."""
    requires = []
    with open(metadata, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line in ("\n", "\r\n"):  # an indented blank line is a continuation (long License fields)
                break
            if line.startswith("Requires-Dist:"):
                requires.append(line.partition(":")[2].strip())
    if metadata.name == "PKG-INFO":  # an egg-info keeps its requirements beside it, in requires.txt
        return [str(r) for r in importlib.metadata.PathDistribution(metadata.parent).requires or []]
    return requires


@lru_cache(maxsize=8)
def _pins(pyproject: Path, _mtime: int, extras: tuple[str, ...] = ()) -> tuple[str, ...]:
    from packaging.requirements import Requirement

    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    declared: list[str] = list(project["dependencies"])
    for group in extras:
        optional = project.get("optional-dependencies", {})
        if group not in optional:
            raise LabError(f"pyproject.toml has no optional-dependencies group {group!r}")
        declared.extend(optional[group])
    installed = _installed()
    pins: dict[str, str] = {}
    pending = [Requirement(line) for line in declared]
    seen: set[tuple[str, str]] = set()
    while pending:
        req = pending.pop()
        name = _canonical(req.name)
        dist = installed.get(name)
        if dist is None:
            raise LabError(f"dependency {req.name!r} is not installed in this environment ({sys.prefix}): "
                           "run `make venv`")
        pins[name] = dist.version
        for extra in ["", *sorted(req.extras)]:  # the plain requirements, then each extra asked for
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in _requires(dist.metadata):
                sub = Requirement(line)
                if (sub.marker is None and extra == "") or (sub.marker is not None
                                                            and sub.marker.evaluate({"extra": extra})):
                    pending.append(sub)
    return tuple(f"{name}=={version}" for name, version in sorted(pins.items()))


@lru_cache(maxsize=8)
def _source_digest(root: Path, stamp: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for rel, _, _ in stamp:
        h.update(f"source {rel} {_file_digest(root / rel)}\n".encode())
    return h.hexdigest()


def source_digest(root: Path | None = None) -> str:
    """One digest of the project's source files (cached while no file's size or mtime changes)."""
    root = root or source_root()
    stamp = tuple((str(p.relative_to(root)), (st := p.stat()).st_size, st.st_mtime_ns) for p in source_files(root))
    return _source_digest(root, stamp)


def inputs_hash(name: str, base_id: str, root: Path | None = None, parent_digest: str | None = None) -> str:
    """The hex digest that names `name`'s tag, given the id of the Debian base image (or "absent").

    `parent_digest`: the digest already computed for the image it is built FROM (else computed here).
    """
    root = root or source_root()
    image = spec(name)
    h = hashlib.sha256()
    h.update(f"{HASH_SCHEMA}\nimage {image.name}\n".encode())
    directory = image_dir(name, root)
    for path in context_files(name, root):
        h.update(f"file {path.relative_to(directory)} {_file_digest(path)}\n".encode())
    for key, value in sorted(image.buildargs().items()):
        h.update(f"arg {key}={value}\n".encode())
    if image.parent is None:
        h.update(f"base {BASE_IMAGE} {base_id}\n".encode())
    else:
        parent_digest = parent_digest or inputs_hash(image.parent, base_id, root)
        h.update(f"parent {image.parent} {parent_digest}\n".encode())
    if image.wheels:
        h.update(f"python {sys.version_info.major}.{sys.version_info.minor}\n".encode())
        h.update(f"sources {source_digest(root)}\n".encode())
        for pin in dependency_pins(root, image.extras):
            h.update(f"pin {pin}\n".encode())
    return h.hexdigest()


def snapshot_source(into: Path, root: Path | None = None) -> Path:
    """Copy every build input (the sources, README.md for the wheel's metadata, images/) under `into`.

    A build hashes and builds from this copy, so an edit made while it runs cannot give an image a tag
    that names other inputs than it holds. The copy hashes like the checkout: paths are relative.
    """
    root = root or source_root()
    files = [*source_files(root), root / "README.md"]
    for name in CATALOG:
        files.extend(context_files(name, root))
    for path in files:
        if path.is_file():
            dest = into / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)
    return into


def tag_for(name: str, digest: str) -> str:
    return f"{spec(name).repository}:{digest[:TAG_LENGTH]}"


# ---- what the daemon has --------------------------------------------------------------------------------


def find_image(client: docker.DockerClient, ref: str) -> Any | None:
    """The daemon's image `ref` (a docker.models.images.Image), or None if it has none of that name."""
    import docker.errors

    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


@lru_cache(maxsize=1)
def _shared_client() -> docker.DockerClient:
    """One client per process for the look-ups below: finding the daemon costs a ping (about 0.1 s), and
    the runtime asks for each node's image."""
    from .daemon import docker_client

    return docker_client()


def image_exists(ref: str, client: docker.DockerClient | None = None) -> bool:
    """Whether the daemon has an image of that name (a pinned `image:` from a topology, for example)."""
    return find_image(client or _shared_client(), ref) is not None


def base_id(client: docker.DockerClient) -> str:
    image = find_image(client, BASE_IMAGE)
    return str(image.id) if image is not None else "absent"


def default_image(role: str, client: docker.DockerClient | None = None) -> str:
    """The tag the current source would build for a node role or image name (whether or not it exists).

    It depends on the Debian base's id: before the base exists it differs from what `build.ensure` will
    produce, so use ensure's answer to create containers.
    """
    client = client or _shared_client()
    name = image_name(role)
    return tag_for(name, inputs_hash(name, base_id(client)))


@dataclass(frozen=True)
class ImageStatus:
    """One catalog image as the daemon has it: its current tag, and whether that tag exists."""

    name: str
    tag: str
    present: bool
    image_id: str | None = None
    size: int | None = None
    created: str | None = None
    latest_is_current: bool = False  # anycastlab/<name>:latest points at the current tag's image
    older_builds: int = 0  # other anycastlab/<name>:<hash> tags (older sources), kept until removed

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "tag": self.tag, "present": self.present, "id": self.image_id,
                "size": self.size, "created": self.created, "latest_is_current": self.latest_is_current,
                "older_builds": self.older_builds}


def image_for(role: str, client: docker.DockerClient | None = None) -> ImageStatus:
    """The current tag for a node role or image name, and whether the daemon has it."""
    return status([image_name(role)], client or _shared_client())[0]


def status(names: Sequence[str] | None = None, client: docker.DockerClient | None = None) -> list[ImageStatus]:
    """Every catalog image, runner included (or those named), with its current tag, presence, size and
    creation time."""
    client = client or _shared_client()
    base = base_id(client)
    result = []
    for name in (list(CATALOG) if names is None else [spec(n).name for n in names]):
        tag = tag_for(name, inputs_hash(name, base))
        image = find_image(client, tag)
        repo = spec(name).repository
        tags = [t for img in client.images.list(name=repo) for t in img.tags]
        older = sum(1 for t in tags if t != tag and not t.endswith(":latest"))
        if image is None:
            result.append(ImageStatus(name, tag, False, older_builds=older))
            continue
        result.append(ImageStatus(name, tag, True, str(image.id), int(image.attrs.get("Size", 0)),
                                  str(image.attrs.get("Created", "")), f"{repo}:latest" in image.tags, older))
    return result
