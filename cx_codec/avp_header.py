"""The AVP header (RFC 6733 §4.1), and AVPs packed from their parts.

    code(4) | flags(1): V M P r r r r r | length(3) | [vendor-id(4)] | data | padding
"""

from __future__ import annotations

import struct

from cx_codec.errors import EncodeError

AVP_HEADER = struct.Struct(">II")
VENDOR_ID = struct.Struct(">I")
_AVP_HEADER_V = struct.Struct(">III")

FLAG_VENDOR = 0x80  # V
FLAG_MANDATORY = 0x40  # M
FLAG_PROTECTED = 0x20  # P, RFC 6733 §4.1: "SHOULD be set to 0"


def pack_avp(code: int, flags: int, vendor: int, data: bytes) -> bytes:
    """AVP bytes with header and zero padding (RFC 6733 §4.1)."""
    length = len(data)
    if flags & FLAG_VENDOR:
        length += 12
        if length > 0xFFFFFF:
            raise EncodeError(f"AVP {code}: {length} bytes do not fit the 24-bit length")
        header = _AVP_HEADER_V.pack(code, (flags << 24) | length, vendor)
    else:
        length += 8
        if length > 0xFFFFFF:
            raise EncodeError(f"AVP {code}: {length} bytes do not fit the 24-bit length")
        header = AVP_HEADER.pack(code, (flags << 24) | length)
    return header + data + b"\0" * (-length % 4)
