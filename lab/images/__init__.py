"""Node images for the docker runtime: the catalog (names, input hashes, tags), the offline Debian base,
building through the docker SDK, and finding the daemon. Nothing here imports docker until it is used.
"""
