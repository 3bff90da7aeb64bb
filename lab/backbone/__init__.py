"""The latency-aware backbone (Argo-style smart routing) and the tiered cache.

costs is pure (RTT samples -> OSPF cost, with hysteresis); prober is the lab child process that measures
backbone RTTs and applies costs; control reads and switches a running lab; tiered and compare act on it.
"""
