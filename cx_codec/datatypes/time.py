"""Time (RFC 6733 §4.3.1): seconds since 1900-01-01 UTC in 4 bytes, NTP style.

The 32-bit count wraps on 2036-02-07 06:28:16 UTC. RFC 6733 §4.3.1 points at RFC 5905's
era rule; like RFC 2030 §3 we read values with the top bit clear as era 1 (from 2036),
which covers 1968-2104 unambiguously.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cx_codec.errors import DecodeError, EncodeError, ResultCode

NTP_EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
ERA1_EPOCH = NTP_EPOCH + timedelta(seconds=1 << 32)  # 2036-02-07 06:28:16 UTC
_FIRST_ERA0 = NTP_EPOCH + timedelta(seconds=1 << 31)  # 1968-01-20 03:14:08 UTC


def decode_time(data: bytes) -> datetime:
    if len(data) != 4:
        raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_LENGTH, f"Time needs 4 bytes, got {len(data)}")
    seconds = int.from_bytes(data, "big")
    if seconds & 0x80000000:
        return NTP_EPOCH + timedelta(seconds=seconds)
    return ERA1_EPOCH + timedelta(seconds=seconds)


def encode_time(value: object) -> bytes:
    if not isinstance(value, datetime):
        raise EncodeError(f"Time needs a datetime, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not _FIRST_ERA0 <= value < ERA1_EPOCH + timedelta(seconds=1 << 31):
        raise EncodeError(f"Time {value.isoformat()} is outside 1968-2104, the range 4 bytes carry")
    seconds = int((value - NTP_EPOCH).total_seconds()) & 0xFFFFFFFF
    return seconds.to_bytes(4, "big")
