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

from cx_codec.avp import AVP_HEADER, VENDOR_ID, pack_avp
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.header import HEADER_LENGTH

AvpKey = tuple[int, int]

_U32 = struct.Struct(">I")
_unpack_header = AVP_HEADER.unpack_from
_unpack_vendor = VENDOR_ID.unpack_from


def _bad_length(data: bytes, offset: int, length: int = 0) -> DecodeError:
    # RFC 6733 §7.1.5 DIAMETER_INVALID_AVP_LENGTH; Failed-AVP holds what there is of it
    return DecodeError(
        ResultCode.DIAMETER_INVALID_AVP_LENGTH,
        f"AVP at offset {offset} is shorter than its header or overruns the message",
        data[offset : offset + max(length, 8)],
    )


def _too_short(size: int) -> DecodeError:
    # RFC 6733 §3: every message has the 20-byte header; §7.1.5 DIAMETER_INVALID_MESSAGE_LENGTH
    return DecodeError(
        ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, f"{size} bytes is shorter than the 20-byte header"
    )


# The smallest AVP length by the V bit (RFC 6733 §4.1: 8 header bytes, 12 with the
# Vendor-Id): ``8 + ((word >> 29) & 4)`` of the AVP's second header word.


def rewrite(
    data: bytes,
    values: Mapping[AvpKey, bytes] | None = None,
    *,
    hop_by_hop: int | None = None,
    append: bytes = b"",
    optional: Collection[AvpKey] = (),
    absent: Mapping[AvpKey, bytes] | None = None,
    remove: Collection[AvpKey] = (),
) -> bytes:
    """A copy of ``data`` with new data for the first AVP of each key in ``values``,
    an optional new hop-by-hop id and encoded AVPs appended (e.g. a Route-Record).

    Replaced AVPs keep their flags (V, M, P); padding is recomputed. A key of ``values``
    with no AVP in the message raises DecodeError 5005 naming it, unless it is in
    ``optional`` (then there is nothing to replace, and nothing is inserted) or in
    ``absent``, whose encoded AVP is then appended. Every top-level AVP of a key in
    ``remove`` is left out (the whole message is walked). Broken AVP framing up to the
    last AVP looked at raises 5014; a message shorter than its header or whose length
    field is not its size raises 5015.
    """
    end = len(data)
    if end < HEADER_LENGTH:
        raise _too_short(end)
    if (data[1] << 16 | data[2] << 8 | data[3]) != end:
        # RFC 6733 §3: the length field covers the whole message, header included
        raise DecodeError(
            ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH,
            f"header says {int.from_bytes(data[1:4], 'big')} bytes, {end} given",
        )
    parts: list[bytes] = []
    offset = copied = HEADER_LENGTH
    pending = dict(values) if values else {}
    codes = {code for code, _ in pending}.union(code for code, _ in remove)  # most AVPs are not these
    try:
        while (pending or remove) and offset < end:
            code, word = _unpack_header(data, offset)
            length = word & 0xFFFFFF
            if length < 8 + ((word >> 29) & 4) or offset + length > end:
                raise _bad_length(data, offset, length)
            next_offset = offset + ((length + 3) & -4)
            if code in codes:
                vendor = _unpack_vendor(data, offset + 8)[0] if word & 0x80000000 else 0
                key = (code, vendor)
                new_data = pending.pop(key, None)
                if new_data is not None:
                    parts.append(data[copied:offset])
                    parts.append(pack_avp(code, word >> 24, vendor, new_data))
                    copied = next_offset
                elif key in remove:
                    parts.append(data[copied:offset])
                    copied = next_offset
            offset = next_offset
    except struct.error:  # fewer than 8 bytes left for an AVP header
        raise _bad_length(data, offset) from None
    inserted = []
    if pending:
        for key in pending:
            if absent is not None and key in absent:
                inserted.append(absent[key])
            elif key not in optional:
                code, vendor = key
                raise DecodeError(
                    ResultCode.DIAMETER_MISSING_AVP, f"no AVP {code} (vendor {vendor}) to rewrite"
                )
    parts.append(data[copied:])
    parts += inserted
    if append:
        parts.append(append)
    body = b"".join(parts)
    hbh = data[12:16] if hop_by_hop is None else _U32.pack(hop_by_hop)
    return b"".join(
        (data[0:1], (HEADER_LENGTH + len(body)).to_bytes(3, "big"), data[4:12], hbh, data[16:20], body)
    )


def with_hop_by_hop(data: bytes, hop_by_hop: int) -> bytes:
    """The message with another hop-by-hop id (RFC 6733 §6.1.9: new id per hop)."""
    if len(data) < HEADER_LENGTH:
        raise _too_short(len(data))
    return data[:12] + _U32.pack(hop_by_hop) + data[16:]


def forwarded(data: bytes, hop_by_hop: int, append: bytes = b"") -> bytes:
    """A proxied request in one copy: new hop-by-hop id, AVPs (Route-Record) appended."""
    if len(data) < HEADER_LENGTH:
        raise _too_short(len(data))
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
    if len(data) < HEADER_LENGTH:
        raise _too_short(len(data))
    return data[:4] + bytes(((data[4] | set_flags) & ~clear_flags & 0xFF,)) + data[5:]


def top_level(data: bytes, wanted: Collection[AvpKey], *, complete: bool = True) -> dict[AvpKey, list[bytes]]:
    """Data of the top-level AVPs with the wanted keys, in order, without decoding.

    For routing decisions (Destination-Realm, Destination-Host, Route-Record ...).
    ``complete=False`` stops as soon as every wanted key was seen once (the rest of the
    message is then not checked). ``data`` is one framed message (length a multiple
    of 4, as the stream framing guarantees), so an AVP that fits fits with its padding.
    """
    end = len(data)
    if end < HEADER_LENGTH:
        raise _too_short(end)
    codes = _codes_of(wanted)
    remaining = len(wanted)
    found: dict[AvpKey, list[bytes]] = {}
    offset = HEADER_LENGTH
    length = 0
    try:
        while offset < end:
            code, word = _unpack_header(data, offset)
            length = word & 0xFFFFFF
            if length < 8 + ((word >> 29) & 4) or offset + length > end:
                raise _bad_length(data, offset, length)
            if code in codes:
                if word & 0x80000000:
                    key = (code, _unpack_vendor(data, offset + 8)[0])
                    data_start = offset + 12
                else:
                    key = (code, 0)
                    data_start = offset + 8
                if key in wanted:
                    values = found.get(key)
                    if values is None:
                        found[key] = [data[data_start : offset + length]]
                        remaining -= 1
                        if not remaining and not complete:
                            return found
                    else:
                        values.append(data[data_start : offset + length])
            offset += (length + 3) & -4
    except struct.error:  # fewer than 8 bytes left for an AVP header
        raise _bad_length(data, offset) from None
    return found


def first_base_value(data: bytes, code: int) -> bytes | None:
    """Data of the first top-level AVP with ``code`` and no Vendor-Id, or None; stops
    there. Raises DecodeError 5014 on a broken AVP before it, 5015 on a message shorter
    than its header."""
    offset = find_base_avp(data, code)
    if offset < 0:
        return None
    return data[offset + 8 : offset + (_unpack_header(data, offset)[1] & 0xFFFFFF)]


def find_base_avp(data: bytes, code: int, start: int = 0, end: int = -1) -> int:
    """Offset of the first top-level AVP with ``code`` and no Vendor-Id in the message
    occupying ``data[start:end]`` (end -1: to the end), or -1; every AVP before it, and
    it, is checked to fit. Raises DecodeError 5014 on a broken AVP up to it (the relay's
    Destination-Realm lookup), 5015 on a message shorter than its header."""
    if end < 0:
        end = len(data)
    if end - start < HEADER_LENGTH:
        raise _too_short(end - start)
    offset = start + HEADER_LENGTH
    length = 0
    try:
        while offset < end:
            avp_code, word = _unpack_header(data, offset)
            length = word & 0xFFFFFF
            if length < 8 + ((word >> 29) & 4) or offset + length > end:
                raise _bad_length(data[start:end], offset - start, length)
            if avp_code == code and not word & 0x80000000:
                return offset
            offset += (length + 3) & -4
    except struct.error:  # fewer than 8 bytes left for an AVP header
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
