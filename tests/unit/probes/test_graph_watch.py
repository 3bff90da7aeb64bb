"""The catchment map's source and rendering, and the continuous mode's bounds."""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest
from anycastlab.colours import UNKNOWN, pop_colours
from anycastlab.errors import LabError
from anycastlab.plan import Plan
from anycastlab.probes import graph
from anycastlab.probes.watch import ProbeRecord, check_bounds


def last_result(plan: Plan, landing: dict[str, str | None]) -> dict[str, object]:
    return {"methods": ["census"], "agree": True,
            "clients": [{"name": c, "pop": p, "agree": p is not None} for c, p in landing.items()]}


def test_dot_names_every_pop_and_client_and_colours_clients_by_pop(default_plan: Plan) -> None:
    pops = [p.name for p in default_plan.pops]
    landing: dict[str, str | None] = {c.name: pops[i % len(pops)] for i, c in enumerate(default_plan.clients)}
    source = graph.dot_source(default_plan, last_result(default_plan, landing))
    colours = pop_colours([p.name for p in default_plan.pops])
    assert len(set(colours.values())) == len(pops)
    for pop in pops:
        assert f'"{pop}" [shape=doubleoctagon, fillcolor="{colours[pop]}"' in source
    for client, pop in landing.items():
        assert f'"{client}" [shape=ellipse, fillcolor="{colours[pop or ""]}"' in source


def test_unmeasured_clients_are_grey(small_plan: Plan) -> None:
    source = graph.dot_source(small_plan, last_result(small_plan, {"ispa-c1": "ams", "ispa-c2": None}))
    assert f'"ispa-c2" [shape=ellipse, fillcolor="{UNKNOWN}"' in source
    label = 'label="ispb-c1\\n100.64.16.1\\nnot probed"'
    assert f'"ispb-c1" [shape=ellipse, fillcolor="{UNKNOWN}", {label}' in source


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz (dot) is not installed")
def test_rendered_svg_names_every_pop_and_client(default_plan: Plan, tmp_path: Path) -> None:
    landing: dict[str, str | None] = {c.name: "fra" for c in default_plan.clients}
    out = graph.render(default_plan, last_result(default_plan, landing), tmp_path / "map.svg")
    text = html.unescape(out.read_text())
    assert text.lstrip().startswith("<?xml")
    for node in [*default_plan.pops, *default_plan.clients]:
        assert f">{node.name}" in text, node.name


def test_render_refuses_an_unknown_format(small_plan: Plan, tmp_path: Path) -> None:
    with pytest.raises(LabError, match="use a name ending in"):
        graph.render(small_plan, None, tmp_path / "map.jpg")


def test_watch_bounds() -> None:
    check_bounds(10, 5, 1)
    for rate, duration in [(0, 5), (-1, 5), (1e6, 5), (10, 0), (10, 1e9)]:
        with pytest.raises(LabError):
            check_bounds(rate, duration, 1)


def test_probe_record_json() -> None:
    record = ProbeRecord(1700000000.1234567, "dtag-c1", 3, None, None)
    assert record.to_json() == {"t": 1700000000.123457, "client": "dtag-c1", "seq": 3, "pop": None, "rtt_ms": None}


def test_an_isp_with_many_clients_is_drawn_as_one_node_per_pop(topologies_dir: Path, tmp_path: Path) -> None:
    from anycastlab.model import load_topology
    from anycastlab.plan import build_plan

    text = (topologies_dir / "small.yaml").read_text()
    big = tmp_path / "big.yaml"
    big.write_text(text.replace("clients: 2", "clients: 300", 1))
    plan = build_plan(load_topology(big))
    isp = next(e.name for e in plan.topology.eyeballs if e.clients == 300)
    clients = [c.name for c in plan.clients if c.isp == isp]
    pops = [p.name for p in plan.pops]
    landing: dict[str, str | None] = {c: pops[0] for c in clients[:200]}
    landing |= {c: pops[1] for c in clients[200:290]}
    landing[clients[290]] = None  # 9 more are not probed at all
    source = graph.dot_source(plan, last_result(plan, landing))
    assert f'label="{isp}: 200 clients\\n-> {pops[0]}"' in source
    assert f'label="{isp}: 90 clients\\n-> {pops[1]}"' in source
    assert f'label="{isp}: 9 clients\\nnot probed"' in source
    assert f'{isp}: 1 client\\nno answer' in source
    assert not any(f'"{c}"' in source for c in clients), "grouped clients are not drawn one by one"


def test_graph_draws_a_topology_file_before_up(tmp_path: Path) -> None:
    from anycastlab.cli.main import cli
    from click.testing import CliRunner

    out = tmp_path / "small.svg"
    result = CliRunner().invoke(cli, ["graph", "small", "--out", str(out)])
    assert result.exit_code == 0, result.output
    svg = out.read_text()
    assert "<svg" in svg and "ams" in svg and "ispa" in svg and "not booted" in result.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: b\ntransits: []\n")
    result = CliRunner().invoke(cli, ["graph", str(broken), "--out", str(tmp_path / "b.svg")])
    assert result.exit_code == 1 and "broken.yaml" in result.output and not (tmp_path / "b.svg").exists()
