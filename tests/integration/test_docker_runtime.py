"""The docker runtime, on real containers from images/: the default topology as containers passes what the
netns runtime passes (probes agree, drills of every fault family, link delay), users reach FRR with
`docker exec`, and nothing of a lab, and nothing of anyone else's, is touched by `down` or `clean`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from anycastlab.drills import frrctl, load_drill, run_drill
from anycastlab.images.daemon import docker_client
from anycastlab.lifecycle import Lab
from anycastlab.runtime import paths
from anycastlab.runtime.backends.docker import LABEL_LAB, LABEL_NODE, LABEL_RUN, container_name
from anycastlab.runtime.ledger import Ledger
from anycastlab.services import edge
from measure import assert_rtt, catchment, peer_address, ping_rtts, root_namespace

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DRILLS = ROOT / "topologies" / "drills"
CLI = str(Path(sys.executable).parent / "anycastlab")
PREFIX = f"{os.environ.get('ANYCASTLAB_TEST_PREFIX', 'dk')}-{os.getpid()}"


@pytest.fixture(scope="module")
def client() -> Any:
    return docker_client()


@pytest.fixture(scope="module")
def images() -> None:
    """The lab's images, built once (a no-op when `make test` built them already)."""
    out = subprocess.run([CLI, "images", "build"], capture_output=True, text=True, timeout=1500)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.fixture(scope="module")
def dlab(images: None, tmp_path_factory: pytest.TempPathFactory, leftovers: Any) -> Iterator[Lab]:
    name = f"{PREFIX}-default"
    before = root_namespace()
    lab = Lab.up("default", name=name, timeout=150, runtime="docker")
    ledger = leftovers.snapshot(name, tmp_path_factory.mktemp("docker-ledger"))
    try:
        yield lab
    finally:
        ledger.path.write_bytes(paths.ledger_file(paths.lab_dir(name)).read_bytes())  # the drills' restarts too
        lab.down()
        leftovers.assert_none(ledger, name)
        assert root_namespace() == before, "the docker lab changed the host's root namespace"


def cli(lab: Lab, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args, "--lab", lab.name], capture_output=True, text=True, timeout=timeout)


def test_every_node_is_a_labelled_container_with_no_network_of_dockers(dlab: Lab, client: Any) -> None:
    for node in dlab.plan.nodes.values():
        container = client.containers.get(container_name(dlab.name, node.name))
        assert container.status == "running"
        assert container.labels[LABEL_LAB] == dlab.name and container.labels[LABEL_NODE] == node.name
        assert container.attrs["HostConfig"]["NetworkMode"] == "none" and container.attrs["Config"]["NetworkDisabled"]
        assert dlab.running.pid(node.name) == container.attrs["State"]["Pid"]
    # networking disabled: docker wrote no /etc/hosts, the lab's own says where localhost is
    first = client.containers.get(container_name(dlab.name, dlab.plan.clients[0].name))
    code, out = first.exec_run(["getent", "hosts", "localhost"])
    assert code == 0 and out.decode().split()[0] in ("127.0.0.1", "::1"), (code, out)
    code, out = first.exec_run(["hostname"])
    assert code == 0 and out.decode().strip() == dlab.plan.clients[0].name, (code, out)
    nodes = json.loads(cli(dlab, "nodes", "--json").stdout)
    assert {n["runtime"] for n in nodes} == {"docker"}
    assert {n["container"] for n in nodes} == {container_name(dlab.name, n) for n in dlab.plan.nodes}
    assert json.loads(cli(dlab, "status", "--json").stdout)["runtime"] == "docker"


def test_docker_exec_vtysh_answers_with_bgp_json(dlab: Lab, client: Any) -> None:
    """What a containerlab user types: `docker exec <lab>-<node> vtysh -c ...`, no flags."""
    container = client.containers.get(container_name(dlab.name, "fra"))
    code, out = container.exec_run(["vtysh", "-c", "show bgp summary json"])
    assert code == 0, out
    peers = json.loads(out)["ipv4Unicast"]["peers"]
    assert peers and all(p["state"] == "Established" for p in peers.values()), peers


def test_frr_runs_from_the_image_not_the_host(dlab: Lab) -> None:
    pid = frrctl.daemon_pid(dlab.running, "fra", "bgpd")
    assert pid is not None
    node = dlab.running.pid("fra")
    assert os.stat(f"/proc/{pid}/ns/mnt").st_ino == os.stat(f"/proc/{node}/ns/mnt").st_ino
    assert os.stat(f"/proc/{pid}/ns/mnt").st_ino != os.stat("/proc/self/ns/mnt").st_ino
    assert os.readlink(f"/proc/{pid}/exe") == "/usr/lib/frr/bgpd"  # as the container sees it


def test_python_services_run_from_the_image_in_all_their_containers_namespaces(dlab: Lab, client: Any) -> None:
    """Forked from one zygote per image, each service is where `docker exec` would have put it: every
    namespace its container's init has but the cgroup, the image's interpreter, and listed by `docker exec ps`."""
    ledger = Ledger(paths.ledger_file(dlab.running.directory))
    dns, origin, proxies = edge.edge_services(dlab.plan, dlab.name)
    for service in [*dns, origin, *proxies]:
        alive = service.recorded(ledger)
        assert alive, f"no live {service.name} in the ledger"
        pid = alive[0].pid
        init = dlab.running.pid(service.node)
        for ns in ("mnt", "uts", "ipc", "net", "pid"):
            assert os.stat(f"/proc/{pid}/ns/{ns}").st_ino == os.stat(f"/proc/{init}/ns/{ns}").st_ino, \
                (service.name, ns)
        assert os.stat(f"/proc/{pid}/ns/mnt").st_ino != os.stat("/proc/self/ns/mnt").st_ino
        title = Path(f"/proc/{pid}/cmdline").read_bytes()  # one string: setproctitle rewrites the argv area
        assert title.startswith(b"/opt/anycastlab/bin/python -m anycastlab"), title
    code, out = client.containers.get(container_name(dlab.name, "fra")).exec_run(["ps", "-eo", "args"])
    assert code == 0 and b"-m anycastlab proxy" in out and b"anycastlab.services.pop_dns" in out, out


def test_probe_methods_agree_with_the_prediction(dlab: Lab) -> None:
    out = cli(dlab, "probe", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    wrong = [(c["name"], c["predicted_pop"], c["methods"]) for c in data["clients"] if not c["agree"]]
    assert not wrong and len(data["clients"]) == len(dlab.plan.clients)
    assert set(data["clients"][0]["methods"]) == {"dns", "http", "census", "traceroute"}


def test_link_delay_measured_by_ping(dlab: Lab) -> None:
    out = cli(dlab, "link", "set", "fra", "telia", "--delay", "20ms")
    assert out.returncode == 0, out.stderr
    try:
        assert_rtt(ping_rtts(dlab, "fra", peer_address(dlab, "fra", "telia")), 40.0, 20)
    finally:
        assert cli(dlab, "link", "set", "fra", "telia", "--delay", "0.1ms").returncode == 0


@pytest.mark.parametrize("name", ["withdraw", "crash", "blackhole", "proxy-crash"])
def test_a_drill_of_each_fault_family_passes(dlab: Lab, name: str, tmp_path: Path) -> None:
    before = catchment(dlab)
    result = run_drill(dlab, load_drill(DRILLS / f"{name}.yaml"), tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert result.passed, [e["message"] for e in report["expectations"] if e["passed"] is False]
    assert report["complete"] and report["http"]["ok"] > 50, report["http"]
    dtag = next(c for c in report["clients"] if c["name"] == "dtag-c1")
    assert dtag["pop_before"] == "fra" and dtag["pop_after"] == "sin" and dtag["pop_end"] == "fra", dtag
    assert catchment(dlab) == before


def test_sigkill_then_clean_removes_only_the_labs_containers(images: None, client: Any, tmp_path: Path,
                                                             leftovers: Any) -> None:
    """SIGKILL `up` and its supervisor while FRR starts; `clean` removes the lab's containers and nothing
    else: not a stranger's container, nor one carrying the same lab label from another run."""
    name = f"{PREFIX}-kill"
    stranger = client.containers.run("anycastlab/client:latest", ["sleep", "300"], detach=True, network_mode="none",
                                     labels={"purpose": "not anycastlab's"})
    lookalike = client.containers.run("anycastlab/client:latest", ["sleep", "300"], detach=True,
                                      network_mode="none", labels={LABEL_LAB: name, LABEL_RUN: "another-run"})
    try:
        up = subprocess.Popen([CLI, "up", "small", "--name", name, "--runtime", "docker"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
        ledger_path = paths.ledger_file(paths.lab_dir(name))
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if ledger_path.exists() and any(e.kind == "pidfile" for e in Ledger(ledger_path).entries()):
                break
            time.sleep(0.05)
        ledger = leftovers.snapshot(name, tmp_path)
        assert ledger.of_kind("container"), "up never got to its containers"
        supervisor = next(e.data["pid"] for e in ledger.of_kind("process") if e.name == "supervisor")
        os.kill(up.pid, signal.SIGKILL)
        os.kill(supervisor, signal.SIGKILL)
        up.wait(10)
        time.sleep(0.5)
        ledger = leftovers.snapshot(name, tmp_path)
        assert any(c.name.startswith(f"{name}-") for c in client.containers.list()), "containers outlive a SIGKILL"
        out = subprocess.run([CLI, "clean", "--lab", name], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        leftovers.assert_none(ledger, name)
        assert not [c.name for c in client.containers.list(all=True, filters={"label": f"{LABEL_LAB}={name}"})
                    if c.id != lookalike.id]
        for survivor in (stranger, lookalike):
            survivor.reload()
            assert survivor.status == "running"
    finally:
        for container in (stranger, lookalike):
            container.remove(force=True)


def test_a_missing_image_is_named_before_anything_is_created(images: None, tmp_path: Path) -> None:
    topo = tmp_path / "pinned.yaml"
    text = (ROOT / "topologies" / "small.yaml").read_text()
    topo.write_text(text + "\nimages:\n  client: anycastlab/no-such-image:1\n")
    out = subprocess.run([CLI, "up", str(topo), "--name", f"{PREFIX}-pin", "--runtime", "docker"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "anycastlab/no-such-image:1" in out.stderr and "ispa-c1" in out.stderr, out.stderr
    assert not paths.lab_dir(f"{PREFIX}-pin").exists()


def test_stats_purge_and_graph_act_on_containers(dlab: Lab, tmp_path: Path) -> None:
    """Fetch through the PoP a client lands on, read that PoP's counters, purge the URL, see the next miss;
    draw the catchment graph from a fresh probe."""
    client, host = "comcast-c2", "www.example.com"
    pop = {c["name"]: c["predicted_pop"] for c in dlab.status()["clients"]}[client]
    path = f"/cache/{uuid.uuid4().hex}?max-age=300"
    ca = paths.ca_dir(dlab.name) / "ca.pem"

    def cache_status() -> str:
        out = dlab.exec(client, ["curl", "-sS", "-m", "10", "--cacert", str(ca), "--resolve",
                                 f"{host}:443:{dlab.plan.topology.anycast.ip}", "-o", "/dev/null", "-D", "-",
                                 f"https://{host}{path}"])
        assert out.returncode == 0, out.stderr
        return next(line.split(":", 1)[1].strip() for line in out.stdout.splitlines()
                    if line.lower().startswith("cf-cache-status:"))

    assert [cache_status(), cache_status()] == ["MISS", "HIT"]
    stats = json.loads(cli(dlab, "stats", "--pop", pop, "--json").stdout)
    assert stats["cache_status"].get("HIT", 0) >= 1
    out = cli(dlab, "purge", "--pop", pop, "--url", f"https://{host}{path}")
    assert out.returncode == 0 and "purged 1 object" in out.stdout, out.stdout + out.stderr
    assert cache_status() == "MISS"
    graph = tmp_path / "catchments.svg"
    out = cli(dlab, "graph", "--out", str(graph))
    assert out.returncode == 0, out.stderr
    assert b"<svg" in graph.read_bytes()[:2000] and pop.encode() in graph.read_bytes()


def test_a_client_moves_between_containers_and_back(dlab: Lab) -> None:
    out = cli(dlab, "move", "dtag-c1", "comcast", "--json")
    assert out.returncode == 0, out.stderr
    try:
        data = json.loads(cli(dlab, "probe", "--json").stdout)
        mover = next(c for c in data["clients"] if c["name"] == "dtag-c1")
        assert mover["isp"] == "comcast" and mover["agree"] and mover["pop"] == "iad", mover
        assert mover["address"] == json.loads(out.stdout)[0]["address"]
    finally:
        back = cli(dlab, "move", "dtag-c1", "--home")
    assert back.returncode == 0, back.stderr
    assert catchment(dlab)["dtag-c1"] == "fra"


def test_ddos_bots_are_the_client_images_hping3_and_every_packet_is_counted(dlab: Lab) -> None:
    """The bots run anycastlab/client's hping3 in the containers; the PoPs' counters add up to what they sent."""
    running = dlab.running
    client = running.plan.clients[0].name
    # asked inside the container: the host has gdnsd (make deps), the client image does not
    assert running.missing_tools(client, ["hping3", "/usr/sbin/gdnsd"]) == ["/usr/sbin/gdnsd"]
    before = catchment(dlab)
    out = cli(dlab, "ddos", "--duration", "5", "--pps", "600", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["sent"] == data["attack"]["bots"] * round(600 / data["attack"]["bots"] * 5), data["bots"]
    assert abs(data["received"] - data["sent"]) <= 0.02 * data["sent"], (data["received"], data["sent"])
    assert data["restored"] is True and not data["problems"]
    assert catchment(dlab) == before
