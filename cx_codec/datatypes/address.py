"""Address (RFC 6733 §4.3.1): a 2-byte IANA address family followed by the address.

IPv4 (family 1) and IPv6 (family 2) decode to ``ipaddress`` objects; other families
(E.164 is 8) decode to ``(family, bytes)`` and re-encode unchanged.
"""

from __future__ import annotations

import ipaddress

from cx_codec.errors import DecodeError, EncodeError, ResultCode

FAMILY_IPV4 = 1
FAMILY_IPV6 = 2
_LENGTH = {FAMILY_IPV4: 4, FAMILY_IPV6: 16}

AddressValue = ipaddress.IPv4Address | ipaddress.IPv6Address | tuple[int, bytes]


def decode_address(data: bytes) -> AddressValue:
    if len(data) < 2:
        raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_LENGTH, "Address shorter than its family")
    family = int.from_bytes(data[:2], "big")
    body = data[2:]
    expected = _LENGTH.get(family)
    if expected is None:
        return (family, body)
    if len(body) != expected:
        raise DecodeError(
            ResultCode.DIAMETER_INVALID_AVP_VALUE,
            f"Address family {family} needs {expected} bytes, got {len(body)}",
        )
    return ipaddress.IPv4Address(body) if family == FAMILY_IPV4 else ipaddress.IPv6Address(body)


def encode_address(value: object) -> bytes:
    if isinstance(value, str):
        try:
            value = ipaddress.ip_address(value)
        except ValueError:
            raise EncodeError(f"Address {value!r} is not an IPv4 or IPv6 address") from None
    if isinstance(value, ipaddress.IPv4Address):
        return FAMILY_IPV4.to_bytes(2, "big") + value.packed
    if isinstance(value, ipaddress.IPv6Address):
        return FAMILY_IPV6.to_bytes(2, "big") + value.packed
    if isinstance(value, tuple) and len(value) == 2:
        family, body = value
        if not 0 <= int(family) <= 0xFFFF:
            raise EncodeError(f"Address family {family} does not fit 2 bytes")
        return int(family).to_bytes(2, "big") + bytes(body)
    raise EncodeError(f"Address needs an IP address or (family, bytes), got {value!r}")
