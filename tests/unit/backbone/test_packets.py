"""The prober's ICMP echo: a valid checksum, and replies matched by identifier and sequence."""

from __future__ import annotations

import socket
import struct

from anycastlab.backbone.prober import SO_TIMESTAMPNS, checksum, echo_request, parse_reply, received_at


def test_echo_request_checksums_to_zero() -> None:
    packet = echo_request(0x1234, 7)
    assert packet[0] == 8 and struct.unpack("!HH", packet[4:8]) == (0x1234, 7)
    assert checksum(packet) == 0


def test_parse_reply_skips_the_ip_header_and_other_icmp() -> None:
    reply = bytearray(echo_request(0x1234, 7))
    reply[0] = 0
    ip = bytes([0x45]) + bytes(19)
    assert parse_reply(ip + bytes(reply)) == (0x1234, 7)
    assert parse_reply(ip + echo_request(1, 1)) is None  # a request, not a reply
    assert parse_reply(b"\x45") is None


def test_kernel_timestamp_is_used_when_present() -> None:
    data = struct.pack("@qq", 1_700_000_000, 250_000_000)
    assert received_at([(socket.SOL_SOCKET, SO_TIMESTAMPNS, data)]) == 1_700_000_000.25
