"""`anycastlab coverage`: each client's RTT to its anycast PoP against every PoP's unicast address; the share
at the closest PoP, within 20/50/100 ms, and the inflation (lab/coverage.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click
from anycastlab.runtime.state import attach

from .output import emit_json, lab_option, reports_errors, table

SHOWN = 30  # clients listed in full; above that only the worst


@click.command()
@lab_option
@click.option("--json", "as_json", is_flag=True, help="Every client and the summary as JSON.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.png",
              help="Also draw the RTT CDF, anycast against the best unicast PoP.")
@reports_errors
def coverage(lab_name: str | None, as_json: bool, out: Path | None) -> None:
    """How close anycast puts each client to a PoP, measured from the client's namespace."""
    from anycastlab import coverage as cov

    lab = attach(lab_name)
    started = time.monotonic()
    results = cov.measure(lab)
    data = cov.summarise(lab, results, time.monotonic() - started)
    if out is not None:
        cov.cdf_png(data, out)
        data["png"] = str(out)
    if as_json:
        emit_json(data)
        return
    click.echo(render(data))
    if out is not None:
        click.echo(f"CDF: {out}")


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def render(data: dict[str, Any]) -> str:
    rows = data["clients"] if len(data["clients"]) <= SHOWN else data["worst"]
    lines = [table(["client", "pop", "anycast ms", "best pop", "best ms", "inflation ms", "km to pop",
                    "nearest", "inflation km"],
                   [[r["client"], r["pop"] or "-", _ms(r["anycast_ms"]), r["best_pop"] or "-", _ms(r["best_ms"]),
                     _ms(r["inflation_ms"]), _ms(r["pop_km"]), r["nearest_pop"] or "-", _ms(r["inflation_km"])]
                    for r in rows])]
    if rows is data["worst"]:
        lines.insert(0, f"the {len(rows)} most inflated of {len(data['clients'])} clients:")
    s = data["summary"]
    within = ", ".join(f"{t} ms {v:.0%}" for t, v in s["within_ms"].items() if v is not None)
    best = ", ".join(f"{t} ms {v:.0%}" for t, v in s["best_unicast_within_ms"].items() if v is not None)
    lines += ["", f"{s['measured']} of {s['clients']} clients measured in {s['elapsed_s']} s: "
                  f"{s['at_closest']} at their closest PoP ({_share(s['share_at_closest'])}; the Bing CDN study: "
                  "about 80%)",
              f"within of their anycast PoP: {within} (best unicast PoP: {best})",
              f"inflation: median {s['inflation_ms']['median']} ms, p95 {s['inflation_ms']['p95']} ms; "
              f"median {s['inflation_km']['median']} km, p95 {s['inflation_km']['p95']} km"]
    shown: set[str] = set()
    for r in data["worst"]:
        inflated_ms = (r["inflation_ms"] or 0.0) > s["tie_ms"]
        if r["isp"] in shown or not (inflated_ms or (r["inflation_km"] or 0.0) > 0):
            continue
        shown.add(r["isp"])
        paths = r.get("paths", {})
        lines.append(f"  {r['isp']}: lands on {r['pop']} ({r['inflation_ms']:+.1f} ms, {r['inflation_km']:+.0f} km "
                     f"past {r['nearest_pop']}) over {paths.get('anycast')}; best unicast {r['best_pop']} over "
                     f"{paths.get('best_unicast')}")
    return "\n".join(lines)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
