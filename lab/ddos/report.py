"""report.json, report.md and timeline.png for an attack (or a pair, anycast beside unicast)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..colours import pop_colours


def markdown(data: dict[str, Any]) -> str:
    a = data["attack"]
    lines = [f"# Attack: {a['bots']} bots, {a['pps']} pps for {a['duration_s']:g} s, spread {a['spread']}, "
             f"target {a['target']} ({data['address']}), policy {a['policy']}", ""]
    lines.append(f"Sent {data['sent']} packets, counted {data['received']} at the PoPs "
                 f"(delivered {data['delivered']}).")
    lines += ["", "| PoP | received | share | bots' share | peak pps | legit requests | success | p50 ms | p99 ms |",
              "|---|---|---|---|---|---|---|---|---|"]
    for p in data["pops"]:
        legit = p["legit"] or {}
        lines.append(f"| {p['pop']} | {p['received']} | {p['share']:.1%} | {p['bot_share']:.1%} | {p['peak_pps']} | "
                     f"{legit.get('requests', 0)} | {_pct(legit.get('success'))} | {legit.get('p50_ms', '-')} | "
                     f"{legit.get('p99_ms', '-')} |")
    if data["actions"]:
        lines += ["", "Policy actions:", ""]
        lines += [f"- t={x['t']} s: {x['pop']} {x['action']} ({x['pps']} pps)" for x in data["actions"]]
    moved = [c for c in data["clients"] if c["during"] and c["during"] != [c["before"]]]
    if moved:
        lines += ["", "Legitimate clients answered by another PoP during the attack:", ""]
        lines += [f"- {c['client']}: {c['before']} -> {', '.join(c['during'])}" for c in moved]
    lines += ["", f"BGP back to where it was afterwards: {data['restored']}"]
    if data["problems"]:
        lines += ["", "Problems:", ""] + [f"- {p}" for p in data["problems"]]
    if data.get("interrupted"):
        lines += ["", f"**{data['interrupted']}**: everything undone; figures are partial."]
    return "\n".join(lines) + "\n"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def timeline(runs: list[dict[str, Any]], path: Path) -> None:
    """Per-PoP received pps over time, one panel per run, policy actions as dashed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(runs), 1, figsize=(10, 3.6 * len(runs)), squeeze=False)
    for ax, data in zip(axes[:, 0], runs, strict=True):
        pops = [p["pop"] for p in data["pops"]]
        colours = pop_colours(pops)
        ts = [s["t"] for s in data["samples"]]
        for pop in pops:
            ys = [s["pps"].get(pop, 0.0) for s in data["samples"]]
            if any(ys):
                ax.plot(ts, ys, label=pop, color=colours[pop], marker=".")
        marks: dict[float, list[str]] = {}  # one label per moment: "nrt withdraw, sin withdraw"
        for x in data["actions"]:
            ax.axvline(x["t"], color=colours.get(x["pop"], "black"), linestyle="--", linewidth=1)
            marks.setdefault(x["t"], []).append(f"{x['pop']} {x['action']}")
        for t, labels in marks.items():
            ax.annotate(", ".join(labels), (t, ax.get_ylim()[1] * 0.95), rotation=90, fontsize=8, va="top",
                        ha="right")
        a = data["attack"]
        ax.set_title(f"{a['target']} ({data['address']}), spread {a['spread']}, policy {a['policy']}")
        ax.set_xlabel("seconds since the attack started")
        ax.set_ylabel("attack pps received")
        ax.legend(loc="upper right", fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(directory: Path, runs: list[dict[str, Any]]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = runs[0] if len(runs) == 1 else {"runs": runs, "side_by_side": side_by_side(runs)}
    (directory / "report.json").write_text(json.dumps(doc, indent=2) + "\n")
    md = "\n".join(markdown(r) for r in runs)
    if len(runs) > 1:
        s = doc["side_by_side"]
        md += (f"\n# Side by side\n\nThe busiest PoP took {s['anycast_max_share']:.1%} of the attack on the anycast "
               f"address ({s['anycast_max_pop']}), and {s['unicast_share']:.1%} of the same attack on its unicast "
               f"address.\n")
    (directory / "report.md").write_text(md)
    timeline(runs, directory / "timeline.png")
    return [directory / "report.json", directory / "report.md", directory / "timeline.png"]


def side_by_side(runs: list[dict[str, Any]]) -> dict[str, Any]:
    anycast, unicast = runs[0], runs[1]
    top = max(anycast["pops"], key=lambda p: p["share"])
    target = unicast["attack"]["target"].removeprefix("pop:")
    at = next(p for p in unicast["pops"] if p["pop"] == target)
    return {"anycast_max_pop": top["pop"], "anycast_max_share": top["share"], "unicast_pop": target,
            "unicast_share": at["share"], "dilution": round(at["share"] / top["share"], 2) if top["share"] else None}
