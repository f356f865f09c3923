"""Rewriting encoded messages without decoding them.

A proxy touches a handful of top-level AVPs (User-Name, Public-Identity, Origin-Host,
Destination-Realm ...) and the hop-by-hop id, and appends Route-Record (RFC 6733
§6.1.9). These functions walk the top-level AVP headers once, splice new AVPs in with
the original flags, and fix the message length; the rest of the bytes are copied as
they are, so unknown AVPs pass through untouched.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping

from cx_codec.avp import AVP_HEADER, FLAG_VENDOR, VENDOR_ID, pack_avp
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.header import HEADER_LENGTH

AvpKey = tuple[int, int]

_U32 = struct.Struct(">I")
_unpack_header = AVP_HEADER.unpack_from
_unpack_vendor = VENDOR_ID.unpack_from


def _bad_length(data: bytes, offset: int) -> DecodeError:
    return DecodeError(
        ResultCode.DIAMETER_INVALID_AVP_LENGTH, f"AVP at offset {offset} overruns the message", data[offset:]
    )


def rewrite(
    data: bytes,
    values: Mapping[AvpKey, bytes] | None = None,
    *,
    hop_by_hop: int | None = None,
    append: bytes = b"",
) -> bytes:
    """A copy of ``data`` with new data for the first AVP of each key in ``values``,
    an optional new hop-by-hop id and encoded AVPs appended (e.g. a Route-Record).

    Replaced AVPs keep their flags (V, M, P); padding is recomputed. A key with no AVP
    in the message raises DecodeError 5005, naming it.
    """
    parts: list[bytes] = []
    end = len(data)
    offset = copied = HEADER_LENGTH
    pending = dict(values) if values else {}
    while pending and offset < end:
        if end - offset < 8:
            raise _bad_length(data, offset)
        code, word = _unpack_header(data, offset)
        flags = word >> 24
        vendor = _unpack_vendor(data, offset + 8)[0] if flags & FLAG_VENDOR else 0
        next_offset = offset + (((word & 0xFFFFFF) + 3) & ~3)
        if next_offset > end or next_offset <= offset:
            raise _bad_length(data, offset)
        new_data = pending.pop((code, vendor), None)
        if new_data is not None:
            parts.append(data[copied:offset])
            parts.append(pack_avp(code, flags, vendor, new_data))
            copied = next_offset
        offset = next_offset
    if pending:
        code, vendor = next(iter(pending))
        raise DecodeError(
            ResultCode.DIAMETER_MISSING_AVP, f"no AVP {code} (vendor {vendor}) to rewrite"
        )
    parts.append(data[copied:])
    if append:
        parts.append(append)
    body = b"".join(parts)
    hbh = data[12:16] if hop_by_hop is None else _U32.pack(hop_by_hop)
    return b"".join(
        (data[0:1], (HEADER_LENGTH + len(body)).to_bytes(3, "big"), data[4:12], hbh, data[16:20], body)
    )


def with_hop_by_hop(data: bytes, hop_by_hop: int) -> bytes:
    """The message with another hop-by-hop id (RFC 6733 §6.1.9: new id per hop)."""
    return data[:12] + _U32.pack(hop_by_hop) + data[16:]


def forwarded(data: bytes, hop_by_hop: int, append: bytes = b"") -> bytes:
    """A proxied request in one copy: new hop-by-hop id, AVPs (Route-Record) appended."""
    return b"".join(
        (
            data[:1],
            (len(data) + len(append)).to_bytes(3, "big"),
            data[4:12],
            _U32.pack(hop_by_hop),
            data[16:],
            append,
        )
    )


def with_flags(data: bytes, set_flags: int = 0, clear_flags: int = 0) -> bytes:
    """The message with command flag bits set or cleared (e.g. T on failover, §5.5.4)."""
    return data[:4] + bytes(((data[4] | set_flags) & ~clear_flags & 0xFF,)) + data[5:]


def top_level(data: bytes, wanted: Collection[AvpKey], *, complete: bool = True) -> dict[AvpKey, list[bytes]]:
    """Data of the top-level AVPs with the wanted keys, in order, without decoding.

    For routing decisions (Destination-Realm, Destination-Host, Route-Record ...).
    ``complete=False`` stops as soon as every wanted key was seen once (the rest of the
    message is then not checked). ``data`` is one framed message (length a multiple
    of 4, as the stream framing guarantees), so an AVP that fits fits with its padding.
    """
    codes = _codes_of(wanted)
    remaining = len(wanted)
    found: dict[AvpKey, list[bytes]] = {}
    end = len(data)
    offset = HEADER_LENGTH
    try:
        while offset < end:
            code, word = _unpack_header(data, offset)
            length = word & 0xFFFFFF
            if length < 8 or offset + length > end:
                raise _bad_length(data, offset)
            if code in codes:
                if word & 0x80000000:
                    key = (code, _unpack_vendor(data, offset + 8)[0])
                    data_start = offset + 12
                else:
                    key = (code, 0)
                    data_start = offset + 8
                if key in wanted and data_start <= offset + length:
                    values = found.get(key)
                    if values is None:
                        found[key] = [data[data_start : offset + length]]
                        remaining -= 1
                        if not remaining and not complete:
                            return found
                    else:
                        values.append(data[data_start : offset + length])
            offset += (length + 3) & -4
    except struct.error:
        raise _bad_length(data, offset) from None
    return found


def first_base_value(data: bytes, code: int) -> bytes | None:
    """Data of the first top-level AVP with ``code`` and no Vendor-Id, or None; stops
    there. Raises DecodeError 5014 on a broken AVP before it."""
    offset = find_base_avp(data, code)
    if offset < 0:
        return None
    return data[offset + 8 : offset + (_unpack_header(data, offset)[1] & 0xFFFFFF)]


def find_base_avp(data: bytes, code: int, start: int = 0, end: int = -1) -> int:
    """Offset of the first top-level AVP with ``code`` and no Vendor-Id in the message
    occupying ``data[start:end]`` (end -1: to the end), or -1; every AVP before it is
    checked to fit. Raises DecodeError 5014 on a broken AVP before it (the relay's
    Destination-Realm lookup)."""
    if end < 0:
        end = len(data)
    offset = start + HEADER_LENGTH
    try:
        while offset < end:
            avp_code, word = _unpack_header(data, offset)
            length = word & 0xFFFFFF
            if length < 8 or offset + length > end:
                raise _bad_length(data[start:end], offset - start)
            if avp_code == code and not word & 0x80000000:
                return offset
            offset += (length + 3) & -4
    except struct.error:
        raise _bad_length(data[start:end], offset - start) from None
    return -1


_CODES: dict[frozenset[AvpKey], frozenset[int]] = {}


def _codes_of(wanted: Collection[AvpKey]) -> frozenset[int]:
    """The codes of the wanted keys; memoised for frozensets (they cache their hash)."""
    if isinstance(wanted, frozenset):
        codes = _CODES.get(wanted)
        if codes is None:
            if len(_CODES) > 64:
                _CODES.clear()
            codes = _CODES[wanted] = frozenset(code for code, _ in wanted)
        return codes
    return frozenset(code for code, _ in wanted)
