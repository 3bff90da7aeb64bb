"""The node images on a real Docker daemon: `images build` makes all four, a second build makes no build call,
and each image holds what its role needs (FRR with the fixed ids, the anycastlab venv, the client's tools).

The build reads a frozen copy of the checkout (ANYCASTLAB_SOURCE), so edits made while the suite runs
cannot change the hash between the first and the second build; an unchanged checkout hashes the same, so
after `make test`'s own build this is a no-op. Containers run with `--network none` and are removed by
the id this test created; no other container or image is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.errors import LabError
from anycastlab.images import base, catalog
from anycastlab.images import build as builder

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLI = str(Path(sys.executable).parent / "anycastlab")
TEST_LABEL = "anycastlab.test"


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    from anycastlab.images.daemon import docker_client

    try:
        client = docker_client()
    except LabError as exc:
        pytest.skip(f"no Docker daemon ({exc.args[0]}); `make test` starts one")
    yield client
    client.close()


@pytest.fixture(scope="session")
def frozen_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("source") / "anycastlab"
    copy.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, copy / f)
    for d in ("images", *catalog.SOURCE_DIRS):
        shutil.copytree(ROOT / d, copy / d, ignore=shutil.ignore_patterns("__pycache__", "wheels"))
    return copy


def images_cli(source: Path, *args: str, timeout: float = 1500) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANYCASTLAB_SOURCE": str(source)}
    return subprocess.run([CLI, "images", *args], capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def built(docker_client: Any, frozen_source: Path) -> dict[str, Any]:
    """One `images build --json` of every image per session: built, or cached from an earlier build."""
    out = images_cli(frozen_source, "build", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    report: dict[str, Any] = json.loads(out.stdout)
    return report


def run_in(client: Any, image: str, script: str) -> tuple[int, str]:
    """Run `sh -c script` in a throwaway container with no network; its exit status and output."""
    container = client.containers.create(image, ["sh", "-c", script], network_mode="none",
                                         labels={TEST_LABEL: "images"})
    try:
        container.start()
        status = container.wait(timeout=60)
        return int(status["StatusCode"]), container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)


def test_build_makes_every_image_tagged_and_labelled(built: dict[str, Any], docker_client: Any,
                                                    frozen_source: Path) -> None:
    assert [r["name"] for r in built["images"]] == ["router", "pop", "origin", "client"]
    assert built["base"]["source"] in ("present", "pulled", "mmdebstrap")
    base_id = docker_client.images.get(catalog.BASE_IMAGE).id
    for result in built["images"]:
        assert result["status"] in ("built", "cached")
        image = docker_client.images.get(result["tag"])
        assert image.labels[catalog.LABEL_IMAGE] == result["name"]
        # the tag is the one the runtime asks for (catalog.default_image) for this source and base
        digest = catalog.inputs_hash(result["name"], base_id, frozen_source)
        assert image.labels[catalog.LABEL_INPUTS] == digest
        assert result["tag"] == catalog.tag_for(result["name"], digest)
        assert f"{catalog.spec(result['name']).repository}:latest" in image.tags


def test_a_second_build_makes_no_build_call(built: dict[str, Any], docker_client: Any, frozen_source: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a build call although every tag exists")

    monkeypatch.setenv("ANYCASTLAB_SOURCE", str(frozen_source))
    monkeypatch.setattr(docker_client.api, "build", no_build)
    started = time.monotonic()
    report = builder.build(client=docker_client)
    assert time.monotonic() - started < 5
    assert [(r.name, r.status) for r in report.images] == [(r["name"], "cached") for r in built["images"]]
    assert [r.tag for r in report.images] == [r["tag"] for r in built["images"]]

    started = time.monotonic()
    out = images_cli(frozen_source, "build", timeout=120)
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - started < 15
    lines = out.stdout.splitlines()
    assert len(lines) == 4 and all(line.split()[2] == "cached" for line in lines), out.stdout
    assert "Step " not in out.stderr


def test_images_list_says_every_image_is_present(built: dict[str, Any], frozen_source: Path) -> None:
    out = images_cli(frozen_source, "list", "--json", timeout=60)
    assert out.returncode == 0, out.stderr
    listed = {i["name"]: i for i in json.loads(out.stdout)}
    for result in built["images"]:
        entry = listed[result["name"]]
        assert entry["present"] and entry["tag"] == result["tag"] and entry["size"] > 0 and entry["created"]


def test_router_has_frr_with_the_fixed_ids(built: dict[str, Any], docker_client: Any) -> None:
    router = next(r["tag"] for r in built["images"] if r["name"] == "router")
    image = docker_client.images.get(router)
    assert image.labels["anycastlab.frr.uid"] == str(catalog.FRR_UID)
    assert image.labels["anycastlab.frr.gid"] == str(catalog.FRR_GID)
    status, output = run_in(docker_client, router, (
        "test -x /usr/lib/frr/bgpd && test -x /usr/lib/frr/zebra && test -x /usr/lib/frr/bfdd && "
        "id -u frr && id -g frr && getent group frrvty | cut -d: -f3 && id -nG frr && "
        "command -v ip iptables ping tcpdump traceroute nsenter setpriv ps vtysh >/dev/null && echo tools-ok && "
        "test ! -e /usr/sbin/policy-rc.d && echo no-policy"))
    assert status == 0, output
    lines = output.split()
    assert lines[:3] == [str(catalog.FRR_UID), str(catalog.FRR_GID), str(catalog.FRRVTY_GID)], output
    assert "frrvty" in lines and "tools-ok" in lines and "no-policy" in lines


def test_pop_and_origin_run_anycastlab_from_their_venv(built: dict[str, Any], docker_client: Any) -> None:
    for name in ("pop", "origin"):
        tag = next(r["tag"] for r in built["images"] if r["name"] == name)
        status, output = run_in(docker_client, tag, (
            "/opt/anycastlab/bin/python -m anycastlab --version && "
            "/opt/anycastlab/bin/python -c 'import netfilterqueue, scapy.all, uvloop, anycastlab.edge.proxy' && "
            "test -x /usr/lib/frr/bgpd && id -u frr"))
        assert status == 0, f"{name}: {output}"
        assert output.split()[-1] == str(catalog.FRR_UID)


def test_client_has_its_tools_and_no_frr(built: dict[str, Any], docker_client: Any) -> None:
    client = next(r["tag"] for r in built["images"] if r["name"] == "client")
    status, output = run_in(docker_client, client, (
        "command -v curl openssl dig traceroute ping ip iptables ps nsenter >/dev/null && "
        "test -s /etc/ssl/certs/ca-certificates.crt && test ! -e /usr/lib/frr && echo client-ok"))
    assert status == 0 and "client-ok" in output, output


def test_an_offline_base_has_debian_sources_and_nothing_of_the_host(built: dict[str, Any],
                                                                   docker_client: Any) -> None:
    image = docker_client.images.get(catalog.BASE_IMAGE)
    if base.BASE_LABEL not in (image.labels or {}):
        pytest.skip(f"{catalog.BASE_IMAGE} was pulled, not built here")
    host_only = [str(p) for p in Path("/etc/apt/apt.conf.d").iterdir()
                 if p.name not in ("01autoremove", "70debconf")] if Path("/etc/apt/apt.conf.d").is_dir() else []
    status, output = run_in(docker_client, catalog.BASE_IMAGE, (
        "cat /etc/apt/sources.list; ls /var/lib/apt/lists | grep -v -e '^lock$' -e '^partial$' || true; "
        f"for f in {' '.join(host_only) or '/nonexistent'}; do test -e \"$f\" && echo leftover $f; done; "
        "test -e /etc/pip.conf && echo leftover /etc/pip.conf; true"))
    assert status == 0, output
    for suite in ("bookworm main", "bookworm-updates main", "bookworm-security main"):
        assert suite in output, output
    assert "leftover" not in output and "_Packages" not in output, output
