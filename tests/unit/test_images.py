"""The image catalog without a daemon: what the input hash covers, names, build order, and the CLI's errors.

A tag is only as good as its hash: it must change when anything a build reads changes (so a stale image is
never reused) and stay put otherwise (so a second build is a no-op).
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.cli.main import cli
from anycastlab.errors import LabError
from anycastlab.images import build as builder
from anycastlab.images import catalog
from click.testing import CliRunner
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
BASE = "sha256:" + "1" * 64


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of the checkout's hashed inputs, to edit freely."""
    copy = tmp_path / "src"
    copy.mkdir()
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    for d in ("images", *catalog.SOURCE_DIRS):
        shutil.copytree(ROOT / d, copy / d, ignore=shutil.ignore_patterns("__pycache__", "wheels"))
    return copy


def hashes(root: Path, base: str = BASE) -> dict[str, str]:
    return {name: catalog.inputs_hash(name, base, root) for name in catalog.IMAGES}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {name for name in before if before[name] != after[name]}


def test_a_copy_of_the_checkout_hashes_like_the_checkout(source: Path) -> None:
    assert hashes(source) == hashes(ROOT)


def test_nothing_changed_means_the_same_hash(source: Path) -> None:
    before = hashes(source)
    (source / "lab" / "__pycache__").mkdir(exist_ok=True)
    (source / "lab" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (source / "lab" / "errors.py.swp").write_text("editor")
    os.utime(source / "lab" / "errors.py", (time.time() + 60, time.time() + 60))  # touched, not changed
    (source / "README.md").write_text("not hashed: it only changes wheel metadata")
    (source / "images" / "pop" / "wheels").mkdir()
    (source / "images" / "pop" / "wheels" / "x.whl").write_bytes(b"generated, not an input")
    assert hashes(source) == before


def test_a_dockerfile_change_rebuilds_that_image_and_those_built_from_it(source: Path) -> None:
    before = hashes(source)
    with open(source / "images" / "router" / "Dockerfile", "a") as f:
        f.write("# a comment is a change too\n")
    assert changed(before, hashes(source)) == {"router", "pop", "origin"}

    before = hashes(source)
    with open(source / "images" / "client" / "Dockerfile", "a") as f:
        f.write("ENV X=1\n")
    assert changed(before, hashes(source)) == {"client"}


def test_any_file_in_an_image_directory_is_an_input(source: Path) -> None:
    before = hashes(source)
    (source / "images" / "client" / "extra.conf").write_text("x\n")
    assert changed(before, hashes(source)) == {"client"}


def test_a_source_change_rebuilds_only_the_images_that_carry_anycastlab(source: Path) -> None:
    before = hashes(source)
    with open(source / "lab" / "errors.py", "a") as f:
        f.write("\n# changed\n")
    assert changed(before, hashes(source)) == {"pop", "origin"}

    before = hashes(source)
    (source / "topologies" / "new.yaml").write_text("name: new\n")
    assert changed(before, hashes(source)) == {"pop", "origin"}

    before = hashes(source)
    text = (source / "pyproject.toml").read_text()
    (source / "pyproject.toml").write_text(text.replace('version = "0.1.0"', 'version = "0.1.1"'))
    assert changed(before, hashes(source)) == {"pop", "origin"}


def test_a_new_base_image_rebuilds_everything(source: Path) -> None:
    assert changed(hashes(source), hashes(source, "sha256:" + "2" * 64)) == set(catalog.IMAGES)


def test_tags_name_the_repository_and_twelve_hex_digits() -> None:
    for name, digest in hashes(ROOT).items():
        assert re.fullmatch(rf"anycastlab/{name}:[0-9a-f]{{12}}", catalog.tag_for(name, digest))


def test_hashing_every_image_is_fast() -> None:
    started = time.perf_counter()
    hashes(ROOT, "sha256:" + "3" * 64)
    assert time.perf_counter() - started < 0.5


def test_dependency_pins_are_the_installed_closure_of_the_declared_dependencies() -> None:
    """The fast reader of *.dist-info names agrees with importlib.metadata's full closure."""
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    expected: dict[str, str] = {}
    pending = [Requirement(r) for r in declared]
    while pending:
        req = pending.pop()
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        if name in expected:
            continue
        dist = importlib.metadata.distribution(req.name)
        expected[name] = dist.version
        for line in dist.requires or []:
            sub = Requirement(line)
            envs = [{"extra": e} for e in ["", *req.extras]]
            if sub.marker is None or any(sub.marker.evaluate(env) for env in envs):
                pending.append(sub)
    assert catalog.dependency_pins(ROOT) == [f"{n}=={v}" for n, v in sorted(expected.items())]


def test_unknown_image_names_the_known_ones() -> None:
    with pytest.raises(LabError, match=r"unknown image 'nope' \(known: router, pop, origin, client\)"):
        catalog.spec("nope")


def test_roles_map_to_images_and_parents_come_first() -> None:
    assert catalog.image_name("transit") == "router"
    assert catalog.image_name("eyeball") == "router"
    assert catalog.image_name("client") == "client"
    assert catalog.image_name("pop") == "pop"
    assert catalog.build_order(["origin"]) == ["router", "pop", "origin"]
    assert catalog.build_order(["client", "pop"]) == ["client", "router", "pop"]
    assert catalog.build_order() == ["router", "pop", "origin", "client"]


def test_the_router_dockerfile_uses_the_catalog_frr_ids() -> None:
    text = (ROOT / "images" / "router" / "Dockerfile").read_text()
    assert f"ARG FRR_UID={catalog.FRR_UID}\n" in text
    assert f"ARG FRR_GID={catalog.FRR_GID}\n" in text
    assert f"ARG FRRVTY_GID={catalog.FRRVTY_GID}\n" in text
    assert (catalog.FRR_UID, catalog.FRR_GID, catalog.FRRVTY_GID) == (9092, 9092, 9093)


def test_dockerfiles_are_legacy_builder_compatible() -> None:
    """docker-py builds with the legacy builder: no BuildKit syntax line, no RUN --mount."""
    for name in catalog.IMAGES:
        text = catalog.image_dir(name, ROOT).joinpath("Dockerfile").read_text()
        assert "# syntax=" not in text and "--mount" not in text, name
        assert re.search(r"^FROM \$\{BASE\}$", text, re.M), name
        assert f"LABEL {catalog.LABEL_IMAGE}={name}" in text, name


def test_cli_images_help() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["images", "--help"])
    assert result.exit_code == 0
    assert "build" in result.output and "list" in result.output
    result = runner.invoke(cli, ["images", "build", "--help"])
    assert result.exit_code == 0 and "--no-cache" in result.output and "--json" in result.output
    assert "images" in runner.invoke(cli, ["--help"]).output


def test_cli_unknown_image_is_one_line_and_exit_1_before_asking_a_daemon() -> None:
    result = CliRunner().invoke(cli, ["images", "build", "router", "nope"])
    assert result.exit_code == 1
    assert "unknown image 'nope' (known: router, pop, origin, client)" in result.output


# ---- build() against a fake daemon: which calls it makes ------------------------------------------------


class FakeImage:
    def __init__(self, ref: str, tags: list[str]) -> None:
        self.id = "sha256:" + "f" * 64 if ref == catalog.BASE_IMAGE else "sha256:" + "e" * 64
        self.tags = tags
        self.attrs = {"Size": 1000, "Created": "2026-12-01T00:00:00Z"}
        self.tagged: list[tuple[str, str]] = []

    def tag(self, repository: str, tag: str) -> None:
        self.tagged.append((repository, tag))


class FakeClient:
    """Has the base and whatever tags it is given; records every build call."""

    def __init__(self, present: set[str]) -> None:
        self.present = present
        self.builds: list[dict[str, Any]] = []
        self.images = self
        self.api = self
        self.timeout = 60

    def get(self, ref: str) -> FakeImage:
        import docker.errors

        if ref not in self.present and ref != catalog.BASE_IMAGE and not ref.startswith("sha256:"):
            raise docker.errors.ImageNotFound(ref)
        return FakeImage(ref, [ref, ref.split(":")[0] + ":latest"])

    def build(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.builds.append(kwargs)
        yield {"stream": "Step 1/1 : FROM x\n"}
        yield {"aux": {"ID": "sha256:" + "d" * 64}}

    def tag(self, image: str, repository: str, tag: str) -> None:
        pass


def test_current_tags_mean_no_build_call(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(builder, "LOCK_PATH", tmp_path / "lock")
    base = FakeImage(catalog.BASE_IMAGE, []).id
    present = {catalog.tag_for(n, catalog.inputs_hash(n, base)) for n in catalog.IMAGES}
    client = FakeClient(present)
    report = builder.build(client=client)  # type: ignore[arg-type]
    assert client.builds == []
    assert [(r.name, r.status) for r in report.images] == [(n, "cached") for n in catalog.build_order()]
    assert report.base.source == "present"


def test_no_cache_rebuilds_the_named_image_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(builder, "LOCK_PATH", tmp_path / "lock")
    base = FakeImage(catalog.BASE_IMAGE, []).id
    present = {catalog.tag_for(n, catalog.inputs_hash(n, base)) for n in catalog.IMAGES}
    client = FakeClient(present)
    report = builder.build(["client"], no_cache=True, client=client)  # type: ignore[arg-type]
    assert [(r.name, r.status) for r in report.images] == [("client", "built")]
    (call,) = client.builds
    assert call["nocache"] is True and call["network_mode"] == "host" and call["pull"] is False
    assert call["buildargs"]["BASE"] == catalog.BASE_IMAGE
    assert call["labels"] == {catalog.LABEL_IMAGE: "client",
                              catalog.LABEL_INPUTS: catalog.inputs_hash("client", base)}
    assert call["tag"] == catalog.tag_for("client", catalog.inputs_hash("client", base))


def test_ensure_maps_roles_to_tags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(builder, "LOCK_PATH", tmp_path / "lock")
    base = FakeImage(catalog.BASE_IMAGE, []).id
    tags = {n: catalog.tag_for(n, catalog.inputs_hash(n, base)) for n in catalog.IMAGES}
    client = FakeClient(set(tags.values()))
    lines: list[str] = []
    got = builder.ensure(["transit", "eyeball", "client"], lines.append, client=client)  # type: ignore[arg-type]
    assert got == {"transit": tags["router"], "eyeball": tags["router"], "client": tags["client"]}
    assert client.builds == [] and any("cached" in line for line in lines)
