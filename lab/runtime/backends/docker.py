"""The `docker` runtime: one container per node, from the images in images/, named `<lab>-<node>`.

Containers run with `network_mode: none` and networking disabled, so the lab owns their namespace: links are
veth pairs made from inside one container's namespace straight into the other's, and nothing is created in
the host's root namespace, not even for a moment. Disabled networking (the API's NetworkDisabled) still gives
each container a namespace of its own with its loopback up, but spares dockerd's libnetwork-setkey prestart
hook, dockerd re-executing itself per container for a sandbox the lab never uses: 40% of a container's
creation CPU here (0.38 -> 0.23 CPU-s). Docker then writes no /etc/hosts, so the lab mounts one (HOSTS).
Nor do they get Docker's seccomp filter (SECURITY): compiling it is a third of runc's init, and it would
only ever confine the container's `sleep` and `docker exec` sessions. What the lab runs in a node is
entered with nsenter from the host, which applies no filter, so FRR and the services never had one.

The lab's run directory is bind-mounted at the same path in every container, so configs, sockets, logs and
certificates have one path inside and out; a router's FRR directory is also mounted at /var/run/frr, where
`docker exec <lab>-<node> vtysh` looks for it.

FRR and the Python services run from the image, entered with nsenter (about 20 ms a call, where
`docker exec` costs about 80 ms): they are in the container's mount, UTS, IPC, network and PID namespaces,
but not its cgroup, so `docker stats` does not count them. The Python services of the containers of one
image are forked from one zygote running that image's interpreter (runtime/zygote.py): an interpreter of
its own costs each service about 0.3 s of CPU while BGP converges. Each container is written in the ledger before
it is created and removed by name after its labels confirm it is this run's; a crashed lab's containers
stay until `anycastlab clean`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ...errors import LabError
from ...model import Eyeball, ImageRole, Origin, Pop, Transit
from ...plan import Node, Plan
from .. import netns, network, paths, procs
from ..handles import NodeHandle
from ..ledger import Ledger
from .base import OnNode, Runtime, ZygoteHome

LABEL_LAB, LABEL_NODE, LABEL_ROLE, LABEL_RUN = "anycastlab.lab", "anycastlab.node", "anycastlab.role", "anycastlab.run"
PYTHON = "/opt/anycastlab/bin/python"  # the venv images/pop and images/origin install anycastlab into
NODE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
CAPABILITIES = ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]  # FRR's privs_init wants all three
REQUIRED_TOOLS = ["nsenter", "setpriv"]
NAMESPACES = ("ipc", "uts", "net", "pid", "mnt")  # what `handle` enters: all but the cgroup's
WORKERS = 8  # parallel container creations: 35 took 5.3 s with 8, 6.8 s with 4 (2 cores, loaded)
REMOVERS = 16  # parallel removals: mostly waiting on the kernel (SIGKILL, unmounts), little CPU
SECURITY = ["seccomp=unconfined"]  # the module's docstring says why
HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"  # what docker writes for `none`
IMAGE_ROLES: dict[str, ImageRole] = {"transit": "router", "eyeball": "router", "pop": "pop", "origin": "origin",
                                     "client": "client"}


def container_name(lab: str, node: str) -> str:
    return f"{lab}-{node}"


def _env() -> list[str]:
    """The environment `docker exec` would give."""
    return ["env", "-i", f"PATH={NODE_PATH}", "HOME=/root", "LANG=C.UTF-8", f"TERM={os.environ.get('TERM', 'dumb')}"]


def handle(pid: int, start: float | None, container: str) -> NodeHandle:
    """nsenter into every namespace but the cgroup's (NAMESPACES)."""
    enter = ["nsenter", "-t", str(pid), "-m", "-u", "-i", "-n", "-p", "--"]
    env = _env()
    return NodeHandle(
        pid=pid, start=start, exec=[*enter, *env],
        # nsenter forks into the PID namespace; setpriv ties the process to nsenter, which dies with us.
        spawn=[*enter, "setpriv", "--pdeathsig", "KILL", "--", *env],
        netns=["nsenter", "-t", str(pid), "-n", "--"], vtysh=[*enter, *env], python=PYTHON, container=container)


def image_for(plan: Plan, node: Node, built: dict[str, str]) -> str | None:
    """The node's `image:`, else the topology's `images:` entry for its role, else the lab's own image for
    the role (images/<role>, tagged by the hash of its inputs), as `prepare` built it (`built`: role -> tag;
    None before that)."""
    role = IMAGE_ROLES[node.role]
    topo = plan.topology
    pinned = None
    if node.role != "client":
        entries: list[Transit | Pop | Eyeball | Origin] = [*topo.transits, *topo.pops, *topo.eyeballs, topo.origin]
        pinned = next((e.image for e in entries if e.name == node.name), None)
    return pinned or topo.images.get(role) or built.get(role)


def _client() -> Any:
    from ...images.daemon import docker_client

    return docker_client()


class DockerRuntime(Runtime):
    name = "docker"

    def __init__(self, lab: str, directory: Path, ledger: Ledger) -> None:
        super().__init__(lab, directory, ledger)
        self.client = _client()
        self.run_id = uuid.uuid4().hex[:12]
        self.containers: dict[str, str] = {}  # node -> container id
        self.images: dict[str, str] = {}  # node -> the image it runs

    @classmethod
    def prepare(cls, plan: Plan, progress: Callable[[str], None]) -> dict[str, Any]:
        """Build the lab's own images that the plan uses and the daemon lacks (a no-op when current)."""
        from ...images import build

        roles = sorted({IMAGE_ROLES[n.role] for n in plan.nodes.values() if image_for(plan, n, {}) is None})
        return {"images": build.ensure(roles, progress) if roles else {}}

    @classmethod
    def preflight(cls, plan: Plan, settings: dict[str, Any]) -> None:
        missing = [t for t in REQUIRED_TOOLS if shutil.which(t) is None]
        if missing:
            raise LabError(f"the docker runtime needs {', '.join(missing)} on this machine (util-linux)")
        client = _client()
        present: dict[str, bool] = {}  # asked of the daemon once per image, not once per node
        absent: dict[str, list[str]] = {}
        for node in plan.nodes.values():
            image = image_for(plan, node, settings.get("images", {}))
            if image is None:
                raise LabError(f"no image for {node.name}: run `anycastlab images build`")
            if image not in present:
                present[image] = _has_image(client, image)
            if not present[image]:
                absent.setdefault(image, []).append(node.name)
        if absent:
            lines = [f"{image} (for {', '.join(nodes[:6])}{' ...' if len(nodes) > 6 else ''})"
                     for image, nodes in absent.items()]
            raise LabError("missing images: " + "; ".join(lines)
                           + " (build the lab's own with `anycastlab images build`)")

    def create_nodes(self, plan: Plan, on_node: OnNode | None = None) -> dict[str, NodeHandle]:
        self.ledger.record("lab", self.lab, runtime=self.name, run=self.run_id)
        paths.replace_file(paths.hosts_file(self.directory), HOSTS)  # in the run directory: removed with it
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda n: self._create(plan, n, on_node), plan.nodes.values()))
        return self.handles

    def _create(self, plan: Plan, node: Node, on_node: OnNode | None) -> None:
        """One container (in a worker thread); `on_node` hears of it as soon as it runs."""
        import docker.errors

        name = container_name(self.lab, node.name)
        image = image_for(plan, node, self.settings.get("images", {}))
        if image is None:
            raise LabError(f"no image for {node.name} in {paths.runtime_file(self.directory)}")
        labels = {LABEL_LAB: self.lab, LABEL_NODE: node.name, LABEL_ROLE: node.role, LABEL_RUN: self.run_id}
        volumes = {str(self.directory): {"bind": str(self.directory), "mode": "rw"},
                   str(paths.hosts_file(self.directory)): {"bind": "/etc/hosts", "mode": "ro"}}
        if node.is_router:
            router_dir = self.directory / "nodes" / node.name
            router_dir.mkdir(parents=True, exist_ok=True)
            volumes[str(router_dir)] = {"bind": "/var/run/frr", "mode": "rw"}
        self.ledger.record("container", name, node=node.name, run=self.run_id)
        try:
            container = self.client.containers.run(
                image, ["sleep", "infinity"], name=name, hostname=node.name, network_mode="none",
                network_disabled=True, detach=True, init=True, cap_add=CAPABILITIES, security_opt=SECURITY,
                labels=labels, volumes=volumes, stop_signal="SIGKILL")
        except docker.errors.APIError as exc:
            if exc.status_code == 409:
                raise LabError(f"a container named {name!r} already exists and is not this lab's: "
                               f"remove it, or boot with another --name") from None
            raise LabError(f"docker could not start {name} from {image}: {exc.explanation or exc}") from None
        container.reload()
        pid = int(container.attrs["State"]["Pid"])
        start = procs.start_time(pid)
        self.containers[node.name] = container.id
        self.images[node.name] = image
        self.ledger.record("node", node.name, pid=pid, start=start, netns=netns.netns_inode(pid),
                           tag=netns.namespace_tag(self.lab, node.name), container=name, id=container.id)
        self.handles[node.name] = handle(pid, start, name)
        if on_node:
            on_node(node.name)

    def zygote_home(self, node: str) -> ZygoteHome:
        """One zygote per image, in the mount namespace of the first container of that image whose service
        starts (so it imports the image's files), but in the host's PID namespace, so the pids it hands out
        are the host's; each child enters all of its own container's namespaces."""
        image = self.images[node]
        enter = ["nsenter", "-t", str(self.handles[node].pid), "-m", "--"]
        return ZygoteHome(image, [*enter, *_env(), PYTHON], NAMESPACES)

    def create_links(self, plan: Plan) -> None:
        for link in plan.links:
            network.add_veth(self.handles[link.a].pid, link.b, self.handles[link.b].pid, link.a)

    def frr_owner(self) -> tuple[int, int]:
        from ...images import catalog

        return catalog.FRR_UID, catalog.FRR_GID

    def destroy(self) -> None:
        self.ledger.record("lab", self.lab, runtime=self.name, run=self.run_id, state="destroying")
        # Ending each container's init from here first (as recorded: pid and start time) ends everything in
        # its PID namespace at once; Docker then only removes stopped containers (3.0 s for the default lab
        # against 3.8 s when `remove(force=True)` kills them one by one).
        procs.terminate([(h.pid, h.start) for h in self.handles.values()], grace=0)
        _remove(self.client, self.lab, self.run_id, list(self.containers.values()))
        self.containers.clear()

    @classmethod
    def remove_recorded(cls, ledger: Ledger) -> list[str]:
        recorded = _recorded(ledger)
        if not recorded:
            return []
        return _remove(_client(), *recorded)

    @classmethod
    def leftovers(cls, ledger: Ledger) -> list[str]:
        recorded = _recorded(ledger)
        if not recorded:
            return []
        lab, _, _ = recorded
        client = _client()
        return [c.name for c in client.containers.list(all=True, filters={"label": f"{LABEL_LAB}={lab}"})
                if c.labels.get(LABEL_RUN) in _runs(ledger)]


def _has_image(client: Any, image: str) -> bool:
    import docker.errors

    try:
        client.images.get(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def _runs(ledger: Ledger) -> set[str]:
    return {e.data["run"] for e in ledger.of_kind("container") if "run" in e.data}


def _recorded(ledger: Ledger) -> tuple[str, str, list[str]] | None:
    """(lab, run id, container names) of the containers the ledger says this run created."""
    containers = ledger.of_kind("container")
    labs = ledger.of_kind("lab")
    if not containers or not labs:
        return None
    return labs[0].name, containers[0].data["run"], [e.name for e in containers]


def _remove(client: Any, lab: str, run: str, names: list[str]) -> list[str]:
    """Force-remove each named container whose labels say it is this lab's, this run's; never another."""
    import docker.errors

    def one(name: str) -> str | None:
        try:
            container = client.containers.get(name)
        except docker.errors.NotFound:
            return None
        if container.labels.get(LABEL_LAB) != lab or container.labels.get(LABEL_RUN) != run:
            return None  # same name, someone else's container: not ours to touch
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True, v=True)
        return f"container {container.name}"

    with ThreadPoolExecutor(REMOVERS) as pool:
        return [r for r in pool.map(one, names) if r is not None]
