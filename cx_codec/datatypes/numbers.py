"""Integer32, Integer64, Unsigned32, Unsigned64, Float32, Float64 (RFC 6733 §4.2).

A fixed-size type whose data has the wrong length is DIAMETER_INVALID_AVP_LENGTH (5014,
RFC 6733 §7.1.5: "an AVP with an invalid length").
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from cx_codec.errors import DecodeError, EncodeError, ResultCode


def _fixed(fmt: str, name: str) -> tuple[Callable[[bytes], int | float], Callable[[object], bytes]]:
    packer = struct.Struct(fmt)
    size = packer.size
    unpack = packer.unpack
    pack = packer.pack
    is_float = fmt[-1] in "fd"

    def decode(data: bytes) -> int | float:
        if len(data) != size:
            raise DecodeError(
                ResultCode.DIAMETER_INVALID_AVP_LENGTH,
                f"{name} needs {size} bytes of data, got {len(data)}",
            )
        return unpack(data)[0]

    def encode(value: object) -> bytes:
        if isinstance(value, bool) or not isinstance(value, (int, float) if is_float else int):
            raise EncodeError(f"{name} needs {'a number' if is_float else 'an int'}, got {value!r}")
        try:
            return pack(value)
        except (struct.error, OverflowError) as exc:
            raise EncodeError(f"{name} cannot hold {value!r}: {exc}") from None

    return decode, encode


decode_integer32, encode_integer32 = _fixed(">i", "Integer32")
decode_integer64, encode_integer64 = _fixed(">q", "Integer64")
decode_unsigned32, encode_unsigned32 = _fixed(">I", "Unsigned32")
decode_unsigned64, encode_unsigned64 = _fixed(">Q", "Unsigned64")
decode_float32, encode_float32 = _fixed(">f", "Float32")
decode_float64, encode_float64 = _fixed(">d", "Float64")
