"""What attack rate this machine carries with every packet counted: `anycastlab ddos` on the default topology
(even spread, 5 s) at rising total rates; the share of sent packets the PoPs counted at each. The lowest
rate (500 pps) is the baseline; lab/ddos/attack.py's MAX_TOTAL_PPS is set from where delivery stays >= 98%."""

from __future__ import annotations

import tempfile
from pathlib import Path

from anycastlab.ddos import attack as attack_bounds
from anycastlab.ddos.attack import Attack
from anycastlab.ddos.run import run_attack
from anycastlab.lifecycle import Lab

RATES = (500, 2000, 4000, 7000, 10000)


def main() -> None:
    attack_bounds.MAX_TOTAL_PPS = max(RATES)  # measured past the verb's cap, to see where it should be
    lab = Lab.up("default", name="bench-ddos", timeout=120)
    try:
        base: float | None = None
        for pps in RATES:
            with tempfile.TemporaryDirectory() as tmp:
                result = run_attack(lab.running, Attack(bots=7, pps=pps, duration_s=5.0, spread=None, target=None),
                                    Path(tmp))
            data = result.to_json()
            delivered = data["delivered"] or 0.0
            base = base or delivered
            legit = [p["legit"]["success"] for p in data["pops"] if p["legit"]]
            print(f"{pps:5d} pps: sent {data['sent']}, counted {data['received']} (delivered {delivered:.3f}, "
                  f"{delivered / base:.3f}x of {RATES[0]} pps); legitimate success {min(legit):.1%} at worst")
    finally:
        lab.down()


if __name__ == "__main__":
    main()
