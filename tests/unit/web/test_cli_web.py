"""`anycastlab web`'s options: --listen is checked before anything starts, and without a lab it says so."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from anycastlab.cli.main import cli
from anycastlab.cli.web import parse_listen
from click.testing import CliRunner


def test_listen_forms() -> None:
    assert parse_listen("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_listen("9000") == ("127.0.0.1", 9000)
    assert parse_listen("[::1]:0") == ("::1", 0)
    assert parse_listen("localhost:80") == ("localhost", 80)


@pytest.mark.parametrize("bad", ["example.com:80", "127.0.0.1:http", "127.0.0.1:70000", "1.2.3:80", ""])
def test_bad_listen_is_refused(bad: str) -> None:
    with pytest.raises(click.BadParameter):
        parse_listen(bad)


def test_no_lab_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYCASTLAB_RUN_ROOT", str(tmp_path))
    result = CliRunner().invoke(cli, ["web", "--listen", "127.0.0.1:0"])
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "lab" in result.output


def test_bad_listen_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["web", "--listen", "nowhere:80"])
    assert result.exit_code == 2 and "--listen" in result.output
