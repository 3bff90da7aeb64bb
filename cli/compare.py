"""`anycastlab compare`: direct-to-origin vs PoP hit, miss (default path, smart routing, tiered cache)."""

from __future__ import annotations

import signal
import sys
from typing import Any

import click
from anycastlab import interrupts
from anycastlab.cli.output import emit_json, lab_option, reports_errors, table


def _ms(value: Any) -> str:
    return "-" if value is None else f"{value:.0f}"


def _fetch(value: Any) -> str:
    """An origin-fetch time (miss ttfb - hit ttfb): below zero is noise (the median hit was slower), shown as 0*."""
    return "0*" if value is not None and value < 0 else _ms(value)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def render(data: dict[str, Any]) -> str:
    rows = []
    for row in data["clients"]:
        cases = row["cases"]

        def pair(case: str, c: dict[str, Any] = cases) -> str:
            return f"{_ms(c[case]['ttfb_ms'])} / {_ms(c[case]['total_ms'])}" if case in c else "-"

        fetch = row["origin_fetch_ms"]
        rows.append((row["client"], row["pop"], pair("direct"), pair("hit"), pair("miss_default"), pair("miss_smart"),
                     pair("miss_tiered"), f"{_fetch(fetch.get('default'))} > {_fetch(fetch.get('smart'))}",
                     _pct(row["smart_saving"]) if row["detour"] else "no detour",
                     f"{row['tls_pop_ms']:.1f} / {row['tls_origin_ms']:.1f}"))
    lines = [f"lab {data['lab']}: median of {data['repeats']} requests per case; ttfb / total in ms "
             "(curl inside each client)", "",
             table(["client", "pop", "direct", "hit", "miss", "miss smart", "miss tiered", "fetch ms",
                    "smart saves", "tls pop / origin ms"], rows)]
    tier = data.get("tiered")
    if tier:
        lines += ["", f"tiered cache: {tier['working_set']} shared objects asked at {len(tier['pops'])} PoPs "
                      f"({', '.join(tier['pops'])}): {tier['origin_requests_without']} origin requests without, "
                      f"{tier['origin_requests_with']} with: {_pct(tier['saved'])} saved"]
    lines += ["", "fetch ms: origin-fetch time (miss ttfb - hit ttfb), default path > smart routing; "
                  "smart saves: on PoPs whose path changes"]
    if any(v is not None and v < 0 for row in data["clients"] for v in row["origin_fetch_ms"].values()):
        lines.append("0*: the miss answered sooner than the median hit, so the fetch time is within noise "
                     "(the JSON keeps the signed difference)")
    return "\n".join(lines)


@click.command()
@click.option("--clients", "--client", "clients", multiple=True, metavar="C1,C2",
              help="Clients to measure from (comma-separated, or repeated; default: the first client of each "
                   "eyeball ISP).")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 20), help="Requests per case.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (with every request's timings).")
@lab_option
@reports_errors
def compare(clients: tuple[str, ...], repeats: int, as_json: bool, lab_name: str | None) -> None:
    """Time to first byte and total: direct to the origin, PoP hit, PoP miss (default path, smart routing,
    tiered cache); TLS handshake to the PoP vs the origin; origin requests saved by the tiered cache."""
    from anycastlab.backbone.compare import Terminated
    from anycastlab.backbone.compare import compare as run
    from anycastlab.runtime.state import attach

    chosen = [c.strip() for value in clients for c in value.split(",") if c.strip()] or None
    progress = None if as_json else (lambda message: click.echo(f"... {message}", err=True))
    try:
        # SIGINT (even when the verb started with it ignored), SIGTERM and SIGHUP unwind: the lab's smart
        # routing and tiered cache are put back (compare's own finally), then the verb exits 130/143/129.
        with interrupts.catching():
            data = run(attach(lab_name), chosen, repeats, progress)
    except KeyboardInterrupt as exc:
        click.echo(f"{interrupts.describe(exc)}: smart routing and the tiered cache were put back", err=True)
        sys.exit(interrupts.exit_status(exc))
    except Terminated:  # compare's own SIGTERM handler, inside the measurement
        click.echo("interrupted by SIGTERM: smart routing and the tiered cache were put back", err=True)
        sys.exit(128 + signal.SIGTERM)
    emit_json(data) if as_json else click.echo(render(data))
