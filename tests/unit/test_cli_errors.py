"""Every verb words its errors the same way: one `error: ...` line, never click's `Error:`."""

from __future__ import annotations

import pytest
from anycastlab.cli.main import cli
from click.testing import CliRunner


@pytest.mark.parametrize(("argv", "status", "words"), [
    (["purge", "--url", "x"], 2, "error: --url 'x' names no path"),  # a UsageError: usage line above it
    (["purge", "--socket", "/nonexistent.sock", "--all"], 1, "error: management socket /nonexistent.sock"),
    (["predict", "/nonexistent.yaml"], 1, "error: no topology file '/nonexistent.yaml'"),  # a LabError
    (["bogus"], 2, "error: No such command 'bogus'."),
    (["probe", "--method", "smoke"], 2, "error: Invalid value for '--method'"),
])
def test_errors_are_one_lowercase_line(argv: list[str], status: int, words: str) -> None:
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == status, result.output
    assert words in result.output and "Error:" not in result.output


def test_usage_errors_keep_the_usage_and_hint() -> None:
    out = CliRunner().invoke(cli, ["purge", "--url", "x"]).output
    assert out.startswith("Usage: ") and "purge -h' for help." in out


@pytest.mark.parametrize("verb", ["probe", "compare"])
def test_verbs_that_take_clients_take_one_list_option(verb: str) -> None:
    out = " ".join(CliRunner().invoke(cli, [verb, "--help"]).output.split())
    assert "--clients, --client C1,C2" in out and "comma-separated, or repeated" in out
