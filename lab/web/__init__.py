"""The live web view (`anycastlab web`): a read-only page that follows a running lab.

layout.py places nodes on the map; snapshot.py reads the lab (probes, FRR, proxies, a drill's live
stream) on a cheap schedule; server.py serves the page and pushes changes over server-sent events.
"""
