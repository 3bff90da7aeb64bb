"""Latency, loss and rate on a running lab's links: the kernel (or userspace releaser) path that applies
them inside the nodes' namespaces, and `link set/show`. What each link should get comes from the plan
(lab/geo.py, lab/units.py, lab/shaping.py); this package only acts on a running lab."""
