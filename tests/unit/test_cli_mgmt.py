"""`ca`, `stats` and `purge` find the lab on their own (the only one running) and, with no --pop, act on every
PoP; bad input is one line and a non-zero exit. Labs are fake run directories; proxies are tiny socket servers."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from anycastlab.cli.main import cli
from anycastlab.runtime import paths
from click.testing import CliRunner


class _Mgmt(BaseHTTPRequestHandler):
    def _answer(self, data: dict[str, object]) -> None:
        raw = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        self._answer({"pop": self.server.pop, "uptime": 1, "requests": 7})  # type: ignore[attr-defined]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer({"purged": 2})

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self) -> tuple[object, tuple[str, int]]:
        # BaseHTTPRequestHandler wants a (host, port) client address; a unix socket has none.
        request, _ = self.socket.accept()
        return request, ("local", 0)


def _lab(root: Path, name: str, pops: list[str]) -> Path:
    directory = root / name
    (directory / "ca").mkdir(parents=True)
    (directory / "ca" / "ca.pem").write_text("fake")
    paths.state_file(directory).write_text(json.dumps({"lab": name, "pids": {}}))
    for pop in pops:
        (directory / "pops" / pop).mkdir(parents=True)
    return directory


@pytest.fixture
def run_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "run"
    root.mkdir()
    monkeypatch.setenv("ANYCASTLAB_RUN_ROOT", str(root))
    monkeypatch.setenv("ANYCASTLAB_CA_DIR", str(tmp_path / "standalone-ca"))
    return root


@pytest.fixture
def one_lab(run_root: Path) -> Iterator[Path]:
    """A running lab 'mylab' whose fra and sin proxies answer (syd's socket is absent)."""
    directory = _lab(run_root, "mylab", ["fra", "sin"])
    servers = []
    for pop in ("fra", "sin"):
        server = _Server(str(directory / "pops" / pop / "proxy.sock"), _Mgmt)
        server.pop = pop  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    yield directory
    for server in servers:
        server.shutdown()
        server.server_close()


def test_ca_is_the_only_running_labs(one_lab: Path) -> None:
    result = CliRunner().invoke(cli, ["ca"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(one_lab / "ca" / "ca.pem")


def test_ca_with_several_labs_asks_which(run_root: Path) -> None:
    _lab(run_root, "a", [])
    _lab(run_root, "b", [])
    result = CliRunner().invoke(cli, ["ca"])
    assert result.exit_code == 1
    assert "several labs are running (a, b): choose one with --lab" in result.output
    assert CliRunner().invoke(cli, ["ca", "--lab", "b"]).output.strip() == str(run_root / "b" / "ca" / "ca.pem")


def test_ca_with_no_lab_is_the_standalone_one(run_root: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["ca"])
    assert result.exit_code == 1
    assert "no lab is running and no standalone CA" in result.output and "--create" in result.output
    created = CliRunner().invoke(cli, ["ca", "--create"])
    assert created.exit_code == 0, created.output
    assert created.output.strip() == str(tmp_path / "standalone-ca" / "ca.pem")
    assert CliRunner().invoke(cli, ["ca", "--lab", "x", "--create"]).exit_code == 2


@pytest.mark.usefixtures("one_lab")
def test_stats_every_pop_of_the_only_lab() -> None:
    result = CliRunner().invoke(cli, ["stats"])
    assert result.exit_code == 0, result.output
    assert "pop fra" in result.output and "pop sin" in result.output
    as_json = CliRunner().invoke(cli, ["stats", "--json"])
    assert sorted(json.loads(as_json.output)) == ["fra", "sin"]
    one = CliRunner().invoke(cli, ["stats", "--pop", "sin", "--json"])
    assert json.loads(one.output)["pop"] == "sin"


@pytest.mark.usefixtures("one_lab")
def test_purge_every_pop_or_one() -> None:
    result = CliRunner().invoke(cli, ["purge", "--all"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["fra: purged 2 object(s)", "sin: purged 2 object(s)"]
    one = CliRunner().invoke(cli, ["purge", "--lab", "mylab", "--pop", "fra", "--tag", "t"])
    assert one.output.strip() == "purged 2 object(s)"


@pytest.mark.usefixtures("one_lab")
@pytest.mark.parametrize(("argv", "code", "message"), [
    (["stats", "--pop", "xyz"], 1, "lab 'mylab' has no PoP 'xyz' (known: fra, sin)"),
    (["purge", "--all", "--pop", "xyz"], 1, "lab 'mylab' has no PoP 'xyz' (known: fra, sin)"),
    (["stats", "--lab", "other"], 1, "lab 'other' is not running"),
    (["stats", "--socket", "/nonexistent.sock", "--pop", "fra"], 2, "not both"),
    (["purge", "--pop", "fra"], 2, "give exactly one of --url, --tag or --all"),
])
def test_bad_target_is_one_line(argv: list[str], code: int, message: str) -> None:
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_a_dead_proxy_is_reported_after_the_others(run_root: Path, one_lab: Path) -> None:
    (one_lab / "pops" / "syd").mkdir()
    result = CliRunner().invoke(cli, ["stats"])
    assert result.exit_code == 1
    assert "pop fra" in result.output and "pop sin" in result.output
    assert "syd: management socket" in result.output


@pytest.mark.usefixtures("run_root")
def test_no_lab_running() -> None:
    result = CliRunner().invoke(cli, ["stats"])
    assert result.exit_code == 1
    assert "no lab is running" in result.output
