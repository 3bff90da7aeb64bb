"""UDP sender and counter for the link benchmark, run inside lab nodes (`python -m bench.link_udp ...`).

Bounded: the sender stops after --seconds, the counter after --seconds plus one idle second. Lab addresses
only: the benchmark passes a lab link address.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time


def send(address: str, port: int, seconds: float, rate: float) -> dict[str, float]:
    """Send 64-byte datagrams for `seconds`: as fast as possible (rate 0) or paced at `rate` per second."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    payload = b"x" * 64
    target = (address, port)
    sent = errors = 0
    start = time.monotonic()
    end = start + seconds
    while (now := time.monotonic()) < end:
        if rate:
            due = int((now - start) * rate) - sent
            if due <= 0:
                time.sleep(0.0005)
                continue
        else:
            due = 256
        for _ in range(min(due, 256)):
            try:
                sock.sendto(payload, target)
                sent += 1
            except OSError:  # ENOBUFS when the queue is full: counted, not fatal
                errors += 1
    return {"sent": sent, "send_errors": errors, "seconds": time.monotonic() - start}


def count(port: int, seconds: float) -> dict[str, float]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    print("ready", file=sys.stderr, flush=True)  # the sender may start
    sock.settimeout(1.0)
    received = 0
    first = last = 0.0
    end = time.monotonic() + seconds + 1.0
    while time.monotonic() < end:
        try:
            sock.recv(2048)
        except TimeoutError:
            if received:
                break
            continue
        last = time.monotonic()
        if not received:
            first = last
        received += 1
    return {"received": received, "span_s": last - first}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["send", "count"])
    parser.add_argument("--address", default="")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=0.0)
    args = parser.parse_args()
    seconds = min(args.seconds, 30.0)
    result = send(args.address, args.port, seconds, args.rate) if args.role == "send" else count(args.port, seconds)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
