"""The runner image in the catalog (no daemon needed): built only when named, FROM router, carrying the
project and its dev extras, hashed like the images that carry anycastlab; its Dockerfile follows the
legacy builder's rules and ends in `anycastlab` under tini.
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
from anycastlab.images import catalog

ROOT = Path(__file__).resolve().parents[2]


def test_runner_is_built_only_when_named_and_from_router() -> None:
    runner = catalog.spec("runner")
    assert runner.parent == "router" and runner.wheels and runner.extras == ("dev",)
    assert "runner" not in catalog.build_order()
    assert catalog.build_order(["runner"]) == ["router", "runner"]
    assert "runner" not in catalog.ROLE_IMAGES.values()
    assert catalog.image_name("runner") == "runner"


def test_runner_pins_are_the_run_time_pins_plus_the_dev_extras() -> None:
    base = set(catalog.dependency_pins(ROOT))
    dev = set(catalog.dependency_pins(ROOT, ("dev",)))
    assert base < dev
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    names = {re.split(r"[<>=\[ ]", d, maxsplit=1)[0].lower() for d in declared}
    assert names <= {pin.split("==")[0] for pin in dev - base} | {pin.split("==")[0] for pin in base}


def test_runner_hash_follows_the_source_and_the_router(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / f, source / f)
    for d in ("images", *catalog.SOURCE_DIRS):
        shutil.copytree(ROOT / d, source / d, ignore=shutil.ignore_patterns("__pycache__", "wheels"))
    base = "sha256:" + "1" * 64
    before = catalog.inputs_hash("runner", base, source)
    (source / "lab" / "errors.py").write_text((source / "lab" / "errors.py").read_text() + "\n# changed\n")
    after_source = catalog.inputs_hash("runner", base, source)
    assert after_source != before
    (source / "images" / "router" / "Dockerfile").write_text(
        (source / "images" / "router" / "Dockerfile").read_text() + "\n# changed\n")
    assert catalog.inputs_hash("runner", base, source) != after_source
    assert catalog.inputs_hash("runner", base, source) != catalog.inputs_hash("pop", base, source)


def test_runner_dockerfile_legacy_builder_entrypoint_and_tools() -> None:
    text = catalog.image_dir("runner", ROOT).joinpath("Dockerfile").read_text()
    assert "# syntax=" not in text and "--mount" not in text
    assert re.search(r"^FROM \$\{BASE\}$", text, re.M)
    assert f"LABEL {catalog.LABEL_IMAGE}=runner" in text
    assert 'ENTRYPOINT ["/usr/bin/tini", "-s", "--", "/opt/anycastlab/bin/anycastlab"]' in text
    for package in ("mininet", "tini", "curl", "openssl", "bind9-dnsutils", "libnetfilter-queue1", "python3-venv"):
        assert re.search(rf"\b{re.escape(package)}\b", text), package
    assert "--no-index" in text  # wheels from the host, never PyPI inside the build


def test_unknown_image_lists_the_runner_too() -> None:
    from anycastlab.errors import LabError

    with pytest.raises(LabError, match=r"\(tool images: runner\)"):
        catalog.spec("nope")
