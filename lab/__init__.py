"""anycastlab: an anycast edge-network lab on one Linux machine."""
