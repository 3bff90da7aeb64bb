"""A bounded attack experiment (`anycastlab ddos`): bots in the eyeball ISPs flood the anycast address (or
one PoP's unicast address) with hping3, each PoP counts what reaches it, legitimate clients keep their HTTPS
load, and a policy (absorb, withdraw, prepend) reacts to per-PoP load. What it measures is the claim "an
attack is spread across every PoP": only as far as the bots are spread across catchments.

    attack.py    what to send, checked against the lab (bots, rate, spread, target, policy, bounds)
    counters.py  per-PoP iptables counters inside each PoP's namespace
    bots.py      hping3 in the bots' namespaces, bounded in packets and time
    policy.py    withdraw / prepend the anycast route at a PoP over threshold, and undo it
    run.py       the experiment: counters, load, bots, sampling, policy, restore, results
    report.py    report.json, report.md and the per-PoP pps timeline (PNG)
"""
