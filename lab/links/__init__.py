"""Latency on links: where nodes are, what delay each link gets, and the kernel (or userspace) path that adds it.

geo and units are pure (the plan uses them); mechanism, kernel, releaser and control act on a running lab.
"""
