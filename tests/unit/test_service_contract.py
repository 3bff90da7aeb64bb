"""The service contract's own logic (lab/runtime/service.py): where a command runs, which recorded processes
count as a service's, and that nothing is signalled unless its pid still has the recorded start time."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from anycastlab.backbone.service import Prober
from anycastlab.model import load_topology
from anycastlab.plan import Plan, build_plan
from anycastlab.runtime import paths, procs, service
from anycastlab.runtime.handles import NodeHandle
from anycastlab.runtime.ledger import Ledger
from anycastlab.runtime.links.service import Releaser
from anycastlab.runtime.service import Child, Command, Detached, Health, Recorded, Service
from anycastlab.runtime.state import RunningLab
from anycastlab.services import edge

ROOT = Path(__file__).resolve().parents[2]
HANDLE = NodeHandle(pid=1, start=None, exec=["EXEC"], spawn=["SPAWN"], netns=["NETNS"], vtysh=[],
                    python="/node/python")


def small_plan() -> Plan:
    return build_plan(load_topology(ROOT / "topologies" / "small.yaml"))


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    yield proc
    proc.kill()
    proc.wait()


@dataclass
class Fake(Service):
    log: Path
    state_of: Health = "ok"
    prepared: list[str] = field(default_factory=list)
    name: str = "n1/fake"
    node: str = "n1"

    def command(self) -> Command:
        return Command(["sleep", "30"], self.log)

    def prepare(self, ledger: Ledger) -> None:
        self.prepared.append(str(ledger.path))

    def health(self) -> Health:
        return self.state_of


def lab_at(directory: Path) -> RunningLab:
    return RunningLab("t", small_plan(), directory, "netns", {"n1": NodeHandle(
        pid=os.getpid(), start=None, exec=[], spawn=[], netns=[], vtysh=[], python="python3")})


def test_a_python_module_runs_with_the_nodes_interpreter_and_anything_else_as_given(tmp_path: Path) -> None:
    module = Command(["/host/python", "-m", "anycastlab", "proxy", "--pop", "fra"], tmp_path / "log")
    assert module.module == ("anycastlab", ["proxy", "--pop", "fra"])
    assert module.in_node(HANDLE) == (["SPAWN"], ["/node/python", "-m", "anycastlab", "proxy", "--pop", "fra"])
    netns = Command(["/host/python", "-m", "anycastlab.backbone.prober"], tmp_path / "log", netns_only=True)
    assert netns.module is None and netns.in_node(HANDLE) == (["NETNS"], ["/host/python", "-m",
                                                                         "anycastlab.backbone.prober"])
    binary = Command(["/usr/sbin/unbound", "-d"], tmp_path / "log")
    assert binary.module is None and binary.in_node(HANDLE) == (["SPAWN"], ["/usr/sbin/unbound", "-d"])


def test_stop_and_kill_refuse_a_pid_whose_start_time_differs(sleeper: subprocess.Popen[bytes]) -> None:
    start = procs.start_time(sleeper.pid)
    assert start is not None
    reused = Recorded("n1/fake", sleeper.pid, start + 1.0)  # the pid, as if another process had held it
    assert not reused.alive()
    assert service.stop([reused], grace=0.1) == [] and service.kill([reused]) == []
    assert sleeper.poll() is None, "a process that is not the recorded one was signalled"
    assert service.stop([Recorded("n1/fake", sleeper.pid, start)], grace=2.0) == [sleeper.pid]
    assert not procs.is_alive(sleeper.pid, start)  # terminate reaps it (so Popen.wait cannot tell how it ended)


def test_a_service_is_its_live_recorded_processes_and_ensure_starts_one_only_when_none_is(
        tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    lab = lab_at(tmp_path)
    ledger = Ledger(paths.ledger_file(tmp_path))
    fake = Fake(tmp_path / "fake.log")
    dead = subprocess.Popen(["true"])
    dead_start = procs.start_time(dead.pid)
    dead.wait()
    ledger.record("process", "n1/fake", pid=dead.pid, start=dead_start)
    ledger.record("process", "n1/other", pid=sleeper.pid, start=procs.start_time(sleeper.pid))
    launched: list[Command] = []

    def launch(what: Service, command: Command, handle: NodeHandle) -> Recorded:
        launched.append(command)
        assert handle is lab.handles["n1"]
        return Recorded.of(what.name, sleeper.pid)

    assert fake.recorded(ledger) == []  # the dead one and another service's do not count
    assert fake.ensure(lab, launch).pid == sleeper.pid and len(launched) == 1
    assert fake.prepared == [str(ledger.path)]
    ledger.record("process", "n1/fake", pid=sleeper.pid, start=procs.start_time(sleeper.pid))
    assert [p.pid for p in fake.recorded(ledger)] == [sleeper.pid]
    assert fake.ensure(lab, launch).pid == sleeper.pid and len(launched) == 1, "started twice"


def test_wait_healthy_names_the_unhealthy_and_the_dead(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    alive = Recorded.of("n1/fake", sleeper.pid)
    ok, slow = Fake(tmp_path / "a"), Fake(tmp_path / "b", state_of="slow")
    assert service.wait_healthy([(ok, alive)], timeout=1.0) == []
    assert service.wait_healthy([(ok, alive), (slow, alive)], timeout=0.3) == [slow]
    sleeper.kill()
    sleeper.wait()
    assert service.wait_healthy([(ok, alive)], timeout=5.0) == [ok]  # dead: "down", at once


def test_child_is_recorded_through_the_callers_record(tmp_path: Path) -> None:
    fake = Fake(tmp_path / "fake.log")
    handle = NodeHandle(pid=os.getpid(), start=None, exec=[], spawn=[], netns=[], vtysh=[], python="python3")
    recorded: list[tuple[str, int]] = []
    process = Child(lambda name, pid: recorded.append((name, pid)))(fake, fake.command(), handle)
    try:
        assert recorded == [("n1/fake", process.pid)] and process.alive()
    finally:
        service.stop([process], grace=1.0)
    assert not process.alive()


def test_detached_runs_in_its_own_session_and_is_ledgered(tmp_path: Path) -> None:
    ledger = Ledger(paths.ledger_file(tmp_path))
    fake = Fake(tmp_path / "fake.log")
    handle = NodeHandle(pid=os.getpid(), start=None, exec=[], spawn=[], netns=[], vtysh=[], python="python3")
    process = Detached(ledger)(fake, fake.command(), handle)
    try:
        assert process.alive() and fake.recorded(ledger) == [process]
        assert procs.wait_for(lambda: os.getsid(process.pid) == process.pid, 5.0), "not in a session of its own"
    finally:
        service.stop([process], grace=1.0)
    assert not process.alive()


def test_the_lab_services_keep_their_ledger_names_logs_and_commands() -> None:
    plan = small_plan()
    dns, origin, proxies = edge.edge_services(plan, "t")
    pop = plan.pops[0].name
    assert [s.name for s in dns] == [f"{p.name}/dns" for p in plan.pops]
    assert [s.name for s in proxies] == [f"{p.name}/proxy" for p in plan.pops]
    assert origin.name == f"{plan.topology.origin.name}/origin-server" and origin.node == plan.topology.origin.name
    assert proxies[0].node == pop and proxies[0].command().log == paths.pop_dir("t", pop) / "proxy.log"
    assert dns[0].command().module == ("anycastlab.services.pop_dns", edge.dns_argv(plan, pop)[3:])
    assert proxies[0].command().module == ("anycastlab", edge.proxy_argv(plan, "t", pop)[3:])
    prober = Prober(plan, "t")
    assert prober.name == "backbone/prober" and prober.command().netns_only and prober.command().module is None
    releaser = Releaser(paths.lab_dir("t"), plan.nodes[next(iter(plan.nodes))].name, Path("r.json"), Path("r.log"))
    assert releaser.name == "links/releaser" and releaser.command().netns_only
