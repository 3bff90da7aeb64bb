"""The runner image (images/runner): the whole tool in one privileged container, the netns runtime inside it.

A small lab boots inside the container, `docker exec ... anycastlab probe` sees all four methods agree, a
drill (tests/drills/small-withdraw.yaml, for the small topology) writes its report through a bind mount; then
`docker rm -f` of the container leaves the host nothing: no process in any of the container's network
namespaces, no new interface in the root namespace. `docker stop` of a runner holding a lab exits within
Docker's stop timeout, and the log says the lab was torn down.

Every container here is created by this module, labelled, and removed by the id it got; nothing else is
touched. Containers run with `--network none` (the lab needs no network outside its own namespaces).
On a host whose capability bounding set lacks some capability (this VM has no CAP_SYS_RESOURCE) Docker
refuses `--privileged`; the containers then get what it means, spelled out: every capability the host
has, no seccomp or AppArmor profile, /proc unmasked and writable.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.errors import LabError
from anycastlab.images import build as builder
from anycastlab.images import catalog
from anycastlab.images.privileged import docker, privileged_flags

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TEST_LABEL = "anycastlab.test"
STOP_TIMEOUT = 10  # Docker's default for `docker stop`
READY_TIMEOUT = 150.0

SMALL_DRILL = ROOT / "tests" / "drills" / "small-withdraw.yaml"  # the CI runner job runs it too


@pytest.fixture(scope="session")
def daemon() -> Iterator[tuple[Any, str]]:
    """The Docker daemon make's tests use: a client, and its URL for the docker CLI (DOCKER_HOST)."""
    from anycastlab.images.daemon import connect

    try:
        client, url = connect()
    except LabError as exc:
        pytest.skip(f"no Docker daemon ({exc.args[0]}); `make test` starts one")
    if shutil.which("docker") is None:
        pytest.skip("no docker CLI: these tests run the runner as users do, `docker run --privileged ...`")
    yield client, url
    client.close()


@pytest.fixture(scope="session")
def docker_client(daemon: tuple[Any, str]) -> Any:
    return daemon[0]


@pytest.fixture(scope="session")
def runner_image(docker_client: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The runner's tag, built from a frozen copy of the checkout (cached when that tag exists)."""
    copy = tmp_path_factory.mktemp("runner-source") / "anycastlab"
    copy.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, copy / f)
    for d in ("images", *catalog.SOURCE_DIRS):
        shutil.copytree(ROOT / d, copy / d, ignore=shutil.ignore_patterns("__pycache__", "wheels"))
    saved = os.environ.get("ANYCASTLAB_SOURCE")
    os.environ["ANYCASTLAB_SOURCE"] = str(copy)
    try:
        report = builder.build(["runner"], client=docker_client)
    finally:
        if saved is None:
            os.environ.pop("ANYCASTLAB_SOURCE", None)
        else:
            os.environ["ANYCASTLAB_SOURCE"] = saved
    return next(r.tag for r in report.images if r.name == "runner")


@pytest.fixture(scope="session")
def run_flags(daemon: tuple[Any, str], runner_image: str) -> list[str]:
    labels = {TEST_LABEL: "runner"}
    return [*privileged_flags(daemon[1], runner_image, labels), "--network", "none", "--label", f"{TEST_LABEL}=runner"]


def start_runner(daemon: tuple[Any, str], flags: list[str], image: str, *args: str) -> Any:
    """`docker run -d FLAGS IMAGE ARGS`; the container (docker SDK) by the id the CLI printed."""
    client, url = daemon
    done = docker(url, "run", "-d", *flags, image, *args)
    assert done.returncode == 0, done.stderr
    return client.containers.get(done.stdout.strip())


def root_links() -> list[str]:
    """The root namespace's interfaces, names and state (`ip -br link`)."""
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True, timeout=10).stdout
    return sorted(" ".join(line.split()[:2]) for line in out.splitlines() if line.strip())


def wait_ready(container: Any, timeout: float = READY_TIMEOUT) -> str:
    """Poll the container's log until `up --foreground` says ready; fail with the log if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = container.logs().decode(errors="replace")
        if " ready " in logs:
            return str(logs)
        container.reload()
        if container.status not in ("created", "running"):
            pytest.fail(f"the runner exited before the lab was ready:\n{logs[-3000:]}")
        time.sleep(0.25)
    pytest.fail(f"no ready lab within {timeout:.0f} s:\n{container.logs().decode(errors='replace')[-3000:]}")


def container_footprint(container: Any) -> tuple[set[int], set[int]]:
    """Host pids of every process in the container's PID namespace, and their network namespaces' inodes."""
    container.reload()
    init = int(container.attrs["State"]["Pid"])
    pidns = os.stat(f"/proc/{init}/ns/pid").st_ino
    pids, nets = set(), set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "pid").st_ino == pidns:
                nets.add(os.stat(entry / "ns" / "net").st_ino)
                pids.add(int(entry.name))
        except OSError:
            continue
    return pids, nets


def processes_in(nets: set[int]) -> list[str]:
    """Every process on the host whose network namespace is one of `nets`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.stat(entry / "ns" / "net").st_ino in nets:
                found.append(f"{entry.name} {(entry / 'comm').read_text().strip()}")
        except OSError:
            continue
    return found


def assert_host_clean(pids: set[int], nets: set[int], links_before: list[str]) -> None:
    deadline = time.monotonic() + 10  # the kernel may take a moment to reap what SIGKILL ended
    while time.monotonic() < deadline and (processes_in(nets) or any(Path(f"/proc/{p}").exists() for p in pids)):
        time.sleep(0.1)
    assert not processes_in(nets), f"processes left in the container's namespaces: {processes_in(nets)}"
    # pids are reused; a leftover is a pid that is still alive in one of the container's namespaces (above)
    assert root_links() == links_before, "the root namespace's interfaces changed"


@pytest.fixture
def remove_after(docker_client: Any) -> Iterator[list[Any]]:
    """Containers a test started, removed by their id afterwards whatever happened."""
    started: list[Any] = []
    yield started
    for container in started:
        with contextlib.suppress(Exception):  # already removed by the test
            docker_client.api.remove_container(container.id, force=True)


def test_small_lab_probe_and_drill_in_the_runner_then_rm_leaves_nothing(
        daemon: tuple[Any, str], runner_image: str, run_flags: list[str], tmp_path: Path,
        remove_after: list[Any]) -> None:
    drills = SMALL_DRILL.parent
    out = tmp_path / "out"
    out.mkdir()
    links_before = root_links()
    container = start_runner(daemon, [*run_flags, "-v", f"{drills}:/drills:ro", "-v", f"{out}:/out"], runner_image,
                             "up", "small", "--foreground", "--timeout", "90")
    remove_after.append(container)
    wait_ready(container)
    pids, nets = container_footprint(container)
    assert len(nets) >= 11, f"expected the container's own namespace and 10 nodes', found {len(nets)}"

    code, (stdout, stderr) = container.exec_run(["anycastlab", "probe", "--json"], demux=True)
    assert code == 0, (stderr or b"").decode(errors="replace")
    probe = json.loads(stdout)
    assert probe["agree"] and sorted(probe["methods"]) == ["census", "dns", "http", "traceroute"], probe
    for client in probe["clients"]:
        assert set(client["methods"].values()) == {client["pop"]}, client

    code, output = container.exec_run(["anycastlab", "drill", "run", "/drills/small-withdraw.yaml", "--lab", "small",
                                       "--report", "/out/small-withdraw", "--junit", "/out/junit.xml"])
    assert code == 0, output.decode(errors="replace")[-3000:]
    assert "PASS" in output.decode(errors="replace")
    for name in ("report.md", "report.json", "timeline.png"):
        assert (out / "small-withdraw" / name).stat().st_size > 0, name
    assert "<testsuite" in (out / "junit.xml").read_text()

    done = docker(daemon[1], "rm", "-f", container.id)
    assert done.returncode == 0, done.stderr
    assert_host_clean(pids, nets, links_before)


def test_docker_stop_tears_the_lab_down_within_the_stop_timeout(
        daemon: tuple[Any, str], runner_image: str, run_flags: list[str], remove_after: list[Any]) -> None:
    links_before = root_links()
    container = start_runner(daemon, run_flags, runner_image, "up", "small", "--foreground", "--timeout", "90")
    remove_after.append(container)
    wait_ready(container)
    pids, nets = container_footprint(container)
    started = time.monotonic()
    done = docker(daemon[1], "stop", "-t", str(STOP_TIMEOUT), container.id, timeout=STOP_TIMEOUT + 30)
    assert done.returncode == 0, done.stderr
    stopped_in = time.monotonic() - started
    container.reload()
    logs = container.logs().decode(errors="replace")
    # 143: anycastlab tore the lab down on SIGTERM and exited with 128 + 15; 137 would mean Docker had to SIGKILL it
    assert container.attrs["State"]["ExitCode"] == 143, logs[-2000:]
    assert stopped_in < STOP_TIMEOUT, f"docker stop took {stopped_in:.1f} s"
    assert "torn down in" in logs, logs[-2000:]
    assert_host_clean(pids, nets, links_before)
