"""The catchment map: the topology drawn with Graphviz, each client coloured by the PoP it landed on.

`dot_source` is a pure function of the plan and a probe result (the JSON `run_probe` saves), so it is
tested without a lab; `render` hands it to Graphviz's `dot` (Debian `graphviz`).
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..colours import UNKNOWN, pop_colours
from ..errors import LabError
from ..plan import Plan, client_address

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot"}
MAX_CLIENTS_DRAWN = 4  # an ISP with more clients gets one node per PoP its clients landed on, with a count


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def dot_source(plan: Plan, last: dict[str, Any] | None, lab: str | None = None) -> str:
    dot = _Dot(plan, last)
    lines = [
        "graph catchments {",
        "  graph [rankdir=LR, fontname=Helvetica, fontsize=11, newrank=true, splines=true,",
        f"         label={_q(_title(plan, last, lab))}, labelloc=t];",
        "  node [fontname=Helvetica, fontsize=10, style=filled, fillcolor=white];",
        "  edge [color=\"#888888\"];",
        *dot.as_clusters(),
        *dot.group_edges,
        *dot.links(),
        *dot.legend(),
        "}",
    ]
    return "\n".join(lines) + "\n"


class _Dot:
    """The graph's pieces: one cluster per AS with its nodes, the links, and the legend."""

    def __init__(self, plan: Plan, last: dict[str, Any] | None) -> None:
        self.plan = plan
        self.colours = pop_colours([p.name for p in plan.pops])
        self.landed: dict[str, str | None] = {}
        self.agree: dict[str, bool] = {}
        for client in (last or {}).get("clients", []):
            self.landed[client["name"]] = client.get("pop")
            self.agree[client["name"]] = bool(client.get("agree"))
        self.share = Counter(p for p in self.landed.values())
        self.grouped: set[str] = set()  # clients drawn as one node per PoP, not each
        self.group_edges: list[str] = []

    def as_clusters(self) -> list[str]:
        by_asn: dict[int, list[str]] = defaultdict(list)
        for node in self.plan.routers:
            if node.asn is not None:
                by_asn[node.asn].append(node.name)
        lines = []
        for asn, members in by_asn.items():
            roles = {self.plan.nodes[m].role for m in members}
            if "pop" in roles:
                label = f"AS{asn} edge network: anycast {self.plan.topology.anycast.ip}"
            else:
                label = f"AS{asn} " + "/".join(sorted(roles))
            lines.append(f"  subgraph {_q('cluster_as' + str(asn))} {{")
            lines.append(f"    label={_q(label)}; style=rounded; color=\"#999999\";")
            for name in members:
                lines += self.router(name, asn)
            lines.append("  }")
        return lines

    def router(self, name: str, asn: int) -> list[str]:
        role = self.plan.nodes[name].role
        if role == "pop":
            count = self.share.get(name, 0)
            label = f"{name} (PoP)\n{count} client{'' if count == 1 else 's'}"
            return [f"    {_q(name)} [shape=doubleoctagon, fillcolor={_q(self.colours[name])}, label={_q(label)}];"]
        if role == "eyeball":
            label = f"{name}\nAS{asn} eyeball"
            head = f"    {_q(name)} [shape=box, style=\"rounded,filled\", fillcolor=\"#F5F5F5\", label={_q(label)}];"
            return [head, *self.clients_of(name)]
        if role == "origin":
            label = f"{name}\nAS{asn} origin"
            return [f"    {_q(name)} [shape=cylinder, label={_q(label)}];"]
        label = f"{name}\nAS{asn}"
        return [f"    {_q(name)} [shape=box, label={_q(label)}];"]

    def clients_of(self, isp: str) -> list[str]:
        clients = [c for c in self.plan.clients if c.isp == isp]
        if len(clients) <= MAX_CLIENTS_DRAWN:
            return ["    " + _client(c.name, str(client_address(c)), self.landed, self.agree, self.colours)
                    for c in clients]
        self.grouped.update(c.name for c in clients)
        nodes, edges = _client_groups(isp, [c.name for c in clients], self.landed, self.agree, self.colours)
        self.group_edges += edges
        return ["    " + n for n in nodes]

    def links(self) -> list[str]:
        lines = []
        for link in self.plan.links:
            if link.a in self.grouped or link.b in self.grouped:
                continue
            if link.kind == "backbone":
                style = 'style=dashed, color="#444444"'
            elif link.kind == "access":
                pop = self.landed.get(link.b if self.plan.nodes[link.b].role == "client" else link.a)
                style = f"color={_q(self.colours.get(pop or '', '#BBBBBB'))}, penwidth=1.5"
            else:
                style = "penwidth=1.2"
            lines.append(f"  {_q(link.a)} -- {_q(link.b)} [{style}];")
        return lines

    def legend(self) -> list[str]:
        lines = ["  subgraph cluster_legend {",
                 '    label="clients by measured PoP"; style=rounded; color="#999999";']
        for pop, colour in self.colours.items():
            lines.append(f"    {_q('legend_' + pop)} [shape=box, fillcolor={_q(colour)}, "
                         f"label={_q(f'{pop}: {self.share.get(pop, 0)} of {len(self.landed)}')}];")
        if self.share.get(None) or len(self.landed) < len(self.plan.clients):
            lines.append(f"    \"legend_unknown\" [shape=box, fillcolor={_q(UNKNOWN)}, label=\"no PoP measured\"];")
        lines.append("  }")
        return lines


def _client(name: str, address: str, landed: dict[str, str | None], agree: dict[str, bool],
            colours: dict[str, str]) -> str:
    pop = landed.get(name)
    if name not in landed:
        label, fill = f"{name}\n{address}\nnot probed", UNKNOWN
    elif pop is None:
        label, fill = f"{name}\n{address}\nno answer", UNKNOWN
    else:
        label, fill = f"{name}\n{address}\n-> {pop}", colours.get(pop, UNKNOWN)
    border = "" if agree.get(name, True) else ', color="#CC0000", penwidth=2.5'
    return f"{_q(name)} [shape=ellipse, fillcolor={_q(fill)}, label={_q(label)}{border}];"


def _client_groups(isp: str, clients: list[str], landed: dict[str, str | None], agree: dict[str, bool],
                   colours: dict[str, str]) -> tuple[list[str], list[str]]:
    """Many clients of one ISP as one node per outcome (a PoP, no answer, not probed): a map of 1000
    client ellipses is unreadable, and what the reader wants is how each ISP splits across PoPs."""
    outcome = {c: (landed[c] or "no answer") if c in landed else "not probed" for c in clients}
    nodes, edges = [], []
    for result, count in sorted(Counter(outcome.values()).items(), key=lambda kv: (-kv[1], kv[0])):
        members = [c for c in clients if outcome[c] == result]
        fill = colours.get(result, UNKNOWN)
        arrow = f"-> {result}" if result in colours else result
        disagree = sum(1 for c in members if not agree.get(c, True))
        label = f"{isp}: {count} client{'' if count == 1 else 's'}\n{arrow}"
        border = ""
        if disagree:
            label += f"\n{disagree} disagree with BGP"
            border = ', color="#CC0000", penwidth=2.5'
        group = f"{isp}~{result}"
        nodes.append(f"{_q(group)} [shape=ellipse, fillcolor={_q(fill)}, label={_q(label)}{border}];")
        edges.append(f"  {_q(isp)} -- {_q(group)} [color={_q(colours.get(result, '#BBBBBB'))}, "
                     f"penwidth={1.5 + min(count, 100) / 20:.1f}];")
    return nodes, edges


def _title(plan: Plan, last: dict[str, Any] | None, lab: str | None) -> str:
    name = plan.topology.name if lab in (None, plan.topology.name) else f"lab {lab} ({plan.topology.name})"
    title = f"{name}: catchments of {plan.topology.anycast.ip}"
    if last is None:
        return title + " (no probe result yet)"
    methods = ", ".join(last.get("methods", [])) or "none"
    verdict = "all methods agree with BGP" if last.get("agree") else "methods and BGP DISAGREE (red borders)"
    return f"{title}, measured by {methods}: {verdict}"


def render(plan: Plan, last: dict[str, Any] | None, out: Path, lab: str | None = None) -> Path:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise LabError(f"cannot draw {out.name}: use a name ending in {', '.join(FORMATS)}")
    source = dot_source(plan, last, lab)
    if fmt == "dot":
        out.write_text(source)
        return out
    dot = shutil.which("dot")
    if dot is None:
        raise LabError("Graphviz's `dot` is missing (Debian package graphviz; `make deps` installs it)")
    done = subprocess.run([dot, f"-T{fmt}", "-o", str(out)], input=source, text=True, capture_output=True,
                          timeout=120)
    if done.returncode != 0:
        raise LabError(f"dot failed: {done.stderr.strip()[:300]}")
    return out
