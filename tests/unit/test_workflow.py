"""The GitHub workflows, checked without a runner: every `make` target and every script or file they name
exists, bind-mounted paths exist on the checkout's side, actions are pinned to commit SHAs, every job has a
timeout, permissions are read-only, no secrets are used and checkout keeps no credentials.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from anycastlab.drills.model import load_drill
from anycastlab.images import catalog
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return data


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return {m.group(1) for m in re.finditer(r"^([A-Za-z0-9_.-]+)\s*:(?!=)", text, re.M)}


def runs(job: dict[str, Any]) -> list[str]:
    return [str(step["run"]) for step in job.get("steps", []) if "run" in step]


def words(script: str) -> list[list[str]]:
    """Each command line of a shell script, split into words (continuations joined, comments dropped)."""
    lines = script.replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        try:
            parts = shlex.split(line, comments=True)
        except ValueError:
            parts = line.split()
        if parts:
            out.append(parts)
    return out


def test_there_is_a_workflow() -> None:
    assert WORKFLOWS, "no .github/workflows/*.yml"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_make_target_the_workflow_runs_exists(path: Path) -> None:
    targets = make_targets()
    named: set[str] = set()
    for job in load(path)["jobs"].values():
        for script in runs(job):
            for line in words(script):
                for i, word in enumerate(line):
                    if word == "make":
                        named.update(w for w in line[i + 1:] if not w.startswith("-") and "=" not in w)
    assert named, "the workflow runs no make target"
    assert named <= targets, f"make targets the Makefile lacks: {sorted(named - targets)}"


def _mounts(job: dict[str, Any]) -> dict[str, Path]:
    """`-v "$PWD/SRC:DEST[:ro]"` in a job's scripts: container path DEST -> checkout path SRC."""
    mounts = {}
    for script in runs(job):
        for line in words(script):
            for i, word in enumerate(line[:-1]):
                if word in ("-v", "--volume") and line[i + 1].startswith("$PWD/"):
                    src, dest, *_ = line[i + 1].removeprefix("$PWD/").split(":")
                    mounts[dest] = Path(src)
    return mounts


def _made(job: dict[str, Any]) -> set[str]:
    """Directories a job creates itself (mkdir -p, --report DIR): paths under them need not exist."""
    made = set()
    for script in runs(job):
        for line in words(script):
            for i, word in enumerate(line[:-1]):
                if (word == "-p" and "mkdir" in line[:i]) or word == "--report":
                    made.add(line[i + 1].split("/")[0])
    return made


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_script_and_file_the_workflow_names_exists(path: Path) -> None:
    scripts = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])
    for name, job in load(path)["jobs"].items():
        mounts, made = _mounts(job), _made(job)
        mounts = {dest: src for dest, src in mounts.items() if src.parts[0] not in made}  # the job's outputs
        for src in mounts.values():
            assert (ROOT / src).exists(), f"{name}: bind-mounted {src} is not in the checkout"
        for script in runs(job):
            for line in words(script):
                for word in line:
                    word = word.strip("\"'")
                    if word.startswith(".venv/bin/"):
                        assert word.removeprefix(".venv/bin/") in scripts, f"{name}: {word} is no console script"
                    elif word.startswith("/") and any(word.startswith(f"{d}/") for d in mounts):
                        dest = next(d for d in mounts if word.startswith(f"{d}/"))
                        local = ROOT / mounts[dest] / word.removeprefix(f"{dest}/")
                        assert local.exists(), f"{name}: {word} (from {mounts[dest]}) does not exist"
                    elif (re.fullmatch(r"(\./)?[\w.-]+/[\w./-]+\.(sh|py|yaml|yml)", word)
                          and word.split("/")[0] not in made):
                        assert (ROOT / word).exists(), f"{name}: {word} does not exist"


def test_the_runner_job_uses_the_catalog_image_and_an_existing_small_drill() -> None:
    text = "\n".join(p.read_text() for p in WORKFLOWS)
    assert catalog.spec("runner").repository in text
    for name in re.findall(r"/drills/([\w.-]+\.yaml)", text):
        drill = load_drill(ROOT / "tests" / "drills" / name)
        assert drill.topology == "small"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas_with_a_version_comment(path: Path) -> None:
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", path.read_text(), re.M)
    assert uses
    for ref, rest in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"not pinned to a commit: {ref}"
        assert re.search(r"#\s*v\d", rest), f"{ref}: no '# vX.Y.Z' comment"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_have_timeouts_read_only_permissions_no_secrets_no_kept_credentials(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    assert "secrets." not in path.read_text()
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int) and 0 < job["timeout-minutes"] <= 120, name
        assert "permissions" not in job or job["permissions"] == {"contents": "read"}, name
        for step in job["steps"]:
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, name
