"""Finding the Docker daemon without make: DOCKER_HOST, then the default socket, then the one make starts.

`images/dockerd.sh start` (run by `make docker`, `make up RUNTIME=docker` and `make test`) starts a private
daemon at OWN_SOCKET when no other answers; the same order of trial here means the CLI, the runtime and
the tests all land on the daemon make would use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from anycastlab.errors import LabError

if TYPE_CHECKING:
    import docker

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
OWN_SOCKET = "unix:///run/anycastlab-dockerd/docker.sock"
PING_TIMEOUT = 5.0  # seconds: a daemon that answers at all answers _ping at once


def candidates() -> list[str]:
    """The daemon URLs to try, in order, without duplicates."""
    urls = [os.environ.get("DOCKER_HOST", ""), DEFAULT_SOCKET, OWN_SOCKET]
    return list(dict.fromkeys(u for u in urls if u))


def _socket_missing(url: str) -> bool:
    return url.startswith("unix://") and not os.path.exists(url.removeprefix("unix://"))


def connect(timeout: float = 120.0) -> tuple[docker.DockerClient, str]:
    """The first daemon that answers, with its URL; a LabError that says how to start one if none does.

    `timeout` is the HTTP timeout of later calls (builds and imports stream for minutes; a ping is quick).
    """
    import docker
    import docker.errors
    import requests.exceptions

    tried: list[str] = []
    for url in candidates():
        if _socket_missing(url):
            tried.append(f"{url} (no socket)")
            continue
        client = docker.DockerClient(base_url=url, timeout=int(PING_TIMEOUT))
        try:
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
            client.close()
            tried.append(f"{url} ({type(exc).__name__})")
            continue
        client.api.timeout = timeout
        return client, url
    raise LabError("no Docker daemon answers: run `make docker` (it installs docker.io if needed and starts a "
                   "daemon that leaves the host's network alone), or start dockerd and set DOCKER_HOST",
                   [f"tried {t}" for t in tried])


def docker_client(timeout: float = 120.0) -> docker.DockerClient:
    """A client of the first daemon that answers (see `connect`)."""
    return connect(timeout)[0]
