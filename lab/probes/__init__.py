"""Data-plane measurement: which PoP each client lands on, four ways (dns, http, census, traceroute),
checked against BGP's prediction; a continuous mode for drills (`watch`); and the catchment map (`graph`).
"""
