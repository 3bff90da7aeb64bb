"""Bring-up to ready, teardown, and RSS per router: the default topology and a generated 100-router one.

Figures are printed against the issue's targets (this machine's lab has no other baseline to race).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from anycastlab.drills import frrctl
from anycastlab.lifecycle import Lab
from ruamel.yaml import YAML

TARGETS = {"default": (15.0, 5.0), "gen100": (30.0, 5.0)}


def generated_topology(routers: int = 100) -> dict[str, object]:
    """4 tier-1s in a full mesh, 6 regionals, 20 PoPs, the origin, and eyeballs for the rest."""
    tier1 = [{"name": f"t{i}", "asn": 64600 + i, "peers": [f"t{j}" for j in range(i + 1, 4)]} for i in range(4)]
    regional = [{"name": f"r{i}", "asn": 64610 + i, "upstreams": [f"t{i % 4}", f"t{(i + 1) % 4}"]} for i in range(6)]
    pops = [{"name": f"p{i}", "upstreams": [f"r{i % 6}"]} for i in range(20)]
    eyeballs_n = routers - len(tier1) - len(regional) - len(pops) - 1
    eyeballs = [{"name": f"e{i}", "asn": 65000 + i, "upstreams": [f"r{i % 6}"], "clients": 1}
                for i in range(eyeballs_n)]
    return {"name": "gen100", "transits": tier1 + regional, "pops": pops, "eyeballs": eyeballs,
            "origin": {"upstreams": ["t0"], "pops": ["p0"]},
            "backbone": [[f"p{i}", f"p{i + 1}"] for i in range(19)]}


def rss_per_router_mb(lab: Lab) -> float:
    total, routers = 0, 0
    for router in lab.running.plan.routers:
        for daemon in ("zebra", "bgpd"):
            pid = frrctl.daemon_pid(lab.running, router.name, daemon)  # as the host sees it, on any runtime
            assert pid is not None, f"{router.name}/{daemon} is not running"
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        routers += 1
    return total / routers / 1024


def measure(topology: str, name: str) -> dict[str, float]:
    started = time.monotonic()
    lab = Lab.up(topology, name=name, timeout=120)
    up_s = time.monotonic() - started
    rss = rss_per_router_mb(lab)
    down_s = lab.down()
    return {"up_s": up_s, "down_s": down_s, "rss_mb": rss, "routers": len(lab.running.plan.routers)}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        gen = Path(tmp) / "gen100.yaml"
        with gen.open("w") as f:
            YAML(typ="safe").dump(generated_topology(), f)
        for label, topology in (("default", "default"), ("gen100", str(gen))):
            r = measure(topology, f"bench-{label}")
            up_target, down_target = TARGETS[label]
            print(f"{label:8} routers={r['routers']:3.0f}  up={r['up_s']:5.1f}s (target <{up_target:.0f}s, "
                  f"{r['up_s'] / up_target:.2f}x of target)  down={r['down_s']:4.2f}s (target <{down_target:.0f}s)  "
                  f"rss/router={r['rss_mb']:.1f} MB (zebra+bgpd)")


if __name__ == "__main__":
    main()
