"""OctetString and its string-like derivatives (RFC 6733 §4.2, §4.3.1).

UTF8String must be valid UTF-8; DiameterIdentity is an FQDN or realm in ASCII (IDNs
travel as punycode, RFC 6733 §4.3.1); DiameterURI is an ``aaa://`` or ``aaas://`` URI
(§4.3.1); IPFilterRule and QoSFilterRule are ASCII rule text.
"""

from __future__ import annotations

import re

from cx_codec.errors import DecodeError, EncodeError, ResultCode


def _invalid(reason: str) -> DecodeError:
    return DecodeError(ResultCode.DIAMETER_INVALID_AVP_VALUE, reason)


def decode_octetstring(data: bytes) -> bytes:
    return data


def encode_octetstring(value: object) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise EncodeError(f"OctetString needs bytes, got {value!r}")


def decode_utf8string(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"UTF8String is not valid UTF-8 at byte {exc.start}") from None


def encode_utf8string(value: object) -> bytes:
    if isinstance(value, str):
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError as exc:  # lone surrogates
            raise EncodeError(f"UTF8String {value!r} cannot be encoded: {exc.reason}") from None
    if isinstance(value, (bytes, bytearray)):
        try:
            bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodeError(f"UTF8String bytes are not valid UTF-8 at byte {exc.start}") from None
        return bytes(value)
    raise EncodeError(f"UTF8String needs str, got {value!r}")


# RFC 6733 §4.3.1 DiameterIdentity = FQDN/Realm; RFC 1035 labels, printable ASCII tolerated
# beyond that (peers use underscores), but never empty, spaces or control characters.
_IDENTITY = re.compile(rb"[!-~]+")


def decode_identity(data: bytes) -> str:
    if not _IDENTITY.fullmatch(data):
        raise _invalid(f"DiameterIdentity {data[:64]!r} is not a printable ASCII FQDN")
    return data.decode("ascii")


def encode_identity(value: object) -> bytes:
    raw = encode_octetstring(value)
    if not _IDENTITY.fullmatch(raw):
        raise EncodeError(f"DiameterIdentity {value!r} must be a non-empty ASCII FQDN")
    return raw


# RFC 6733 §4.3.1: "aaa://" FQDN [ port ] [ transport ] [ protocol ], or "aaas://";
# transport-protocol = tcp / sctp / udp; aaa-protocol = diameter / radius / tacacs+
_URI = re.compile(
    rb"aaas?://[A-Za-z0-9._-]+(?::([0-9]{1,5}))?"
    rb"(?:;transport=(?:tcp|sctp|udp))?(?:;protocol=(?:diameter|radius|tacacs\+))?",
    re.IGNORECASE,
)


def _uri_ok(raw: bytes) -> bool:
    match = _URI.fullmatch(raw)
    return match is not None and (match.group(1) is None or int(match.group(1)) <= 65535)


def decode_uri(data: bytes) -> str:
    if not _uri_ok(data):
        raise _invalid(f"DiameterURI {data[:80]!r} is not aaa://host[:port][;transport=][;protocol=]")
    return data.decode("ascii")


def encode_uri(value: object) -> bytes:
    raw = encode_octetstring(value)
    if not _uri_ok(raw):
        raise EncodeError(f"DiameterURI {value!r} must look like aaa://host:3868;transport=tcp")
    return raw


def decode_ascii_rule(data: bytes) -> str:
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise _invalid("filter rule is not ASCII text") from None
