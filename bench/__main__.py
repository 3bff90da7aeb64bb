"""`make bench`: every benchmark, or the ones named (`python -m bench lab_bringup probes`)."""

from __future__ import annotations

import importlib
import importlib.util
import sys

BENCHMARKS = ["lab_bringup", "runtimes", "cli_startup", "runner", "proxy_vs_nginx", "probes", "link_delay", "world",
              "ddos_capacity", "web_drill"]


def main() -> None:
    chosen = sys.argv[1:] or BENCHMARKS
    for name in chosen:
        if importlib.util.find_spec(f"bench.{name}") is None:
            print(f"== {name}: not present, skipped")
            continue
        print(f"== {name}")
        importlib.import_module(f"bench.{name}").main()


if __name__ == "__main__":
    main()
