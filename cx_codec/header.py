"""The 20-byte Diameter header (RFC 6733 §3).

    version(1) | message length(3) | flags(1) | command code(3) |
    application-id(4) | hop-by-hop id(4) | end-to-end id(4)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag

from cx_codec.errors import DecodeError, ResultCode

HEADER_LENGTH = 20
VERSION = 1
HEADER = struct.Struct(">IIIII")


class Flags(IntFlag):
    """Command flags, RFC 6733 §3."""

    REQUEST = 0x80  # R
    PROXIABLE = 0x40  # P
    ERROR = 0x20  # E
    RETRANSMIT = 0x10  # T


RESERVED_FLAGS = 0x0F  # RFC 6733 §3: "r(eserved) ... MUST be set to 0"

HeaderFields = tuple[int, int, int, int, int, int, int]


def unpack_header(data: bytes) -> HeaderFields:
    """(version, length, flags, command code, application-id, hop-by-hop, end-to-end).

    ``data`` is one whole message: the length field must match it. Raises DecodeError
    5011 (version) or 5015 (length); ``fatal`` when stream framing can no longer be
    trusted. Flags are checked separately (``check_flags``) so relays may skip them.
    """
    if len(data) < HEADER_LENGTH:
        raise DecodeError(
            ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH,
            f"{len(data)} bytes is shorter than the 20-byte header",
            fatal=True,
        )
    word0, word1, application_id, hop_by_hop, end_to_end = HEADER.unpack_from(data)
    version = word0 >> 24
    length = word0 & 0xFFFFFF
    if version != VERSION:
        # RFC 6733 §7.1.5 DIAMETER_UNSUPPORTED_VERSION
        raise DecodeError(
            ResultCode.DIAMETER_UNSUPPORTED_VERSION, f"version {version}, only 1 is defined", fatal=True
        )
    if length != len(data) or length % 4:
        # RFC 6733 §3: the length includes the header and is a multiple of 4
        raise DecodeError(
            ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH,
            f"header says {length} bytes, {len(data)} given (must match, multiple of 4)",
            fatal=length > len(data) or length < HEADER_LENGTH,
        )
    return version, length, word1 >> 24, word1 & 0xFFFFFF, application_id, hop_by_hop, end_to_end


def check_flags(flags: int) -> None:
    """RFC 6733 §3 flag rules; 3008 DIAMETER_INVALID_HDR_BITS otherwise."""
    if flags & RESERVED_FLAGS:
        raise DecodeError(
            ResultCode.DIAMETER_INVALID_HDR_BITS, f"reserved command flag bits set (0x{flags:02x})"
        )
    if flags & 0xA0 == 0xA0:
        # RFC 6733 §3: the E bit "MUST NOT be set" in requests
        raise DecodeError(ResultCode.DIAMETER_INVALID_HDR_BITS, "E bit set in a request")


def message_length(prefix: bytes) -> int:
    """Length of the message that starts ``prefix`` (at least 4 bytes), for stream framing."""
    return int.from_bytes(prefix[1:4], "big")


@dataclass(slots=True)
class Header:
    version: int
    length: int
    flags: int
    command_code: int
    application_id: int
    hop_by_hop: int
    end_to_end: int

    @classmethod
    def parse(cls, data: bytes) -> Header:
        header = cls(*unpack_header(data))
        check_flags(header.flags)
        return header

    def pack(self) -> bytes:
        return HEADER.pack(
            (self.version << 24) | self.length,
            (self.flags << 24) | self.command_code,
            self.application_id,
            self.hop_by_hop,
            self.end_to_end,
        )
