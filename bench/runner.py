"""The runner image against the host: `docker run ... anycastlab/runner up --foreground` to a ready default lab,
and `anycastlab up` on the host to the same, side by side and alternated (the machine is shared and noisy).

The container path is timed from the `docker run` call to the ready line in the container's log (polled
every 0.1 s), so it includes creating and starting the container and Python's start-up inside it. The target
is <= 1.2x the host. The image is built first (not timed; a no-op when its tag exists). Every container is
removed by the id `docker run` printed.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from anycastlab.images.daemon import connect
from anycastlab.images.privileged import docker, privileged_flags
from anycastlab.lifecycle import Lab

TARGET = 1.2  # container / host, to ready
REPEATS = int(os.environ.get("BENCH_RUNNER_REPEATS", "2"))
CLI = str(Path(sys.executable).parent / "anycastlab")
READY_TIMEOUT = 240.0
def host_up(name: str) -> tuple[float, float]:
    started = time.monotonic()
    lab = Lab.up("default", name=name, timeout=180)
    up_s = time.monotonic() - started
    return up_s, lab.down()


def container_up(url: str, flags: list[str], image: str) -> tuple[float, float]:
    """Seconds from `docker run` to the ready line, and from `docker stop` to its return."""
    started = time.monotonic()
    done = docker(url, "run", "-d", *flags, image, "up", "--foreground", "--timeout", "180")
    if done.returncode != 0:
        raise SystemExit(f"docker run failed: {done.stderr.strip()}")
    cid = done.stdout.strip()
    try:
        while True:
            logs = docker(url, "logs", cid).stdout
            if " ready " in logs:
                up_s = time.monotonic() - started
                break
            running = docker(url, "inspect", "-f", "{{.State.Running}}", cid).stdout.strip() == "true"
            if time.monotonic() - started > READY_TIMEOUT or not running:
                raise SystemExit(f"the runner's lab was not ready:\n{logs[-2000:]}")
            time.sleep(0.1)
        started = time.monotonic()
        docker(url, "stop", cid, timeout=60)
        return up_s, time.monotonic() - started
    finally:
        docker(url, "rm", "-f", cid)


def main() -> None:
    built = subprocess.run([CLI, "images", "build", "runner", "--json"], check=True, capture_output=True, text=True,
                           timeout=3600)  # not timed
    image = next(r["tag"] for r in json.loads(built.stdout)["images"] if r["name"] == "runner")
    client, url = connect()
    client.close()
    flags = [*privileged_flags(url, image), "--network", "none"]
    host: list[tuple[float, float]] = []
    inside: list[tuple[float, float]] = []
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    for i in range(REPEATS):
        host.append(host_up(f"bench-runner-host-{os.getpid()}-{i}"))
        inside.append(container_up(url, flags, image))
    host_s = statistics.median(h[0] for h in host)
    inside_s = statistics.median(c[0] for c in inside)
    ratio = inside_s / host_s
    print(f"default  up to ready: host {host_s:5.1f}s  runner container {inside_s:5.1f}s = {ratio:.2f}x "
          f"(target <= {TARGET}x: {'met' if ratio <= TARGET else 'MISSED'}; median of {REPEATS}, load {load} at start)")
    print(f"{'':8} runs: host {', '.join(f'{h[0]:.1f}' for h in host)} s; "
          f"container {', '.join(f'{c[0]:.1f}' for c in inside)} s")
    print(f"{'':8} down: host {statistics.median(h[1] for h in host):.2f}s (anycastlab down)  "
          f"container {statistics.median(c[1] for c in inside):.2f}s (docker stop, lab torn down inside)")
    print(f"{'':8} docker flags: {' '.join(flags)}")


if __name__ == "__main__":
    main()
