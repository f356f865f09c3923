"""``rewrite`` compiled for one layout of top-level AVPs.

A translating proxy rewrites the same few AVPs of messages that are laid out alike, one
after another (an S-CSCF's MARs, an HSS's MAAs). ``rewrite`` walks every AVP header of
each; a ``Splice`` is made once per layout (where each AVP is, from the codec's validated
template or from one walk) and then rebuilds a message of that layout from slices of it
and the new values, without looking at its AVPs again. Its output is ``rewrite``'s, byte
for byte (``tests/cx_codec/test_splice.py``): the first AVP of each key replaced with its
flags and Vendor-Id kept, every AVP of a key in ``remove`` left out, a key the layout
lacks appended (``absent``) or skipped (``optional``), DecodeError 5005 otherwise.

The layout comes from the codec's validated template of the message
(``cx_codec.message.strict_layout``, as the Cx roles' fast paths take it) or from ``walk``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Mapping, Sequence

from cx_codec.avp_header import AVP_HEADER, VENDOR_ID, pack_avp
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.header import HEADER_LENGTH

AvpKey = tuple[int, int]
# one top-level AVP: (offset, code, vendor, header word: flags << 24 | length)
Entry = tuple[int, int, int, int]

_unpack_header = AVP_HEADER.unpack_from
_unpack_vendor = VENDOR_ID.unpack_from
_U32 = struct.Struct(">I")
_HEADER_V = struct.Struct(">III")  # code, flags | length, Vendor-Id
COMPILE_AFTER = 16  # uses of a Splice before it is compiled


class Splice:
    """``rewrite(data, values, optional=..., absent=..., remove=...)`` for messages laid
    out as ``layout`` (their top-level AVPs, in order, the message ending after the last).

    ``keys``: the keys of ``rewrite``'s ``values``, in its order; ``constants``: those
    whose new data is the same for every message (packed here once); ``apply`` gets the
    data of the others, in order. ``absent``: for a key the layout lacks, the flags of the
    AVP to append.
    """

    __slots__ = ("_pieces", "apply", "_uses", "keys")

    def __init__(
        self,
        layout: Sequence[Entry],
        keys: Sequence[AvpKey],
        *,
        constants: Mapping[AvpKey, bytes] | None = None,
        optional: Collection[AvpKey] = (),
        absent: Mapping[AvpKey, int] | None = None,
        remove: Collection[AvpKey] = (),
    ) -> None:
        self.keys = tuple(keys)
        constants = constants or {}
        index = {key: position for position, key in enumerate(k for k in self.keys if k not in constants)}
        pending = set(self.keys)
        pieces: list[slice | bytes | tuple[bytes, int, bytes, int]] = []
        copy_from = copy_to = -1
        for offset, code, vendor, word in layout:
            end = offset + (((word & 0xFFFFFF) + 3) & -4)
            key = (code, vendor)
            if key in pending or key in remove:
                if copy_from >= 0:
                    pieces.append(slice(copy_from, copy_to))
                    copy_from = -1
                if key in pending:
                    pending.discard(key)
                    if key in constants:
                        pieces.append(pack_avp(code, word >> 24, vendor, constants[key]))
                    else:
                        pieces.append(_value_piece(code, word >> 24, vendor, index[key]))
                continue
            if copy_from < 0:
                copy_from = offset
            copy_to = end
        if copy_from >= 0:
            pieces.append(slice(copy_from, copy_to))
        for key in [key for key in self.keys if key in pending]:  # appended in rewrite's order: values'
            code, vendor = key
            if absent is not None and key in absent:
                flags = absent[key]
                pieces.append(pack_avp(code, flags, vendor, constants[key]) if key in constants
                              else _value_piece(code, flags, vendor, index[key]))
            elif key not in optional:
                raise DecodeError(ResultCode.DIAMETER_MISSING_AVP, f"no AVP {code} (vendor {vendor}) to rewrite")
        self._pieces = tuple(pieces)
        # interpreted (about 2 us) for its first COMPILE_AFTER uses, then compiled (about 100
        # us, then 1 us a use): a peer that varies its answers' AVPs on purpose makes the
        # node compile at most once per COMPILE_AFTER of its messages
        self._uses = 0
        # ``apply(data, values, hop_by_hop=None, end_to_end=None)``: the whole rewritten
        # message, header with the new length (and ids, when given). An attribute, not a
        # method: once compiled, a call of it is a call of the generated function itself
        self.apply: _Apply = self._interpreted

    def body(self, data: bytes, values: Sequence[bytes]) -> bytes:
        """The AVPs of the rewritten message (``data`` has this layout)."""
        return self.apply(data, values, None, None)[HEADER_LENGTH:]

    def _interpreted(self, data: bytes, values: Sequence[bytes], hop_by_hop: bytes | None = None,
                     end_to_end: bytes | None = None) -> bytes:
        self._uses += 1
        if self._uses >= COMPILE_AFTER:
            self.apply = _compile(self._pieces)
        return _interpret(self._pieces, data, values, hop_by_hop, end_to_end)


_Apply = Callable[..., bytes]  # (data, values, hop_by_hop=None, end_to_end=None)


def _interpret(pieces: Sequence[slice | bytes | tuple[bytes, int, bytes, int]], data: bytes, values: Sequence[bytes],
               hop_by_hop: bytes | None, end_to_end: bytes | None) -> bytes:
    """What ``_compile``'s function for ``pieces`` returns, by walking the pieces."""
    parts: list[bytes] = []
    append = parts.append
    for piece in pieces:
        if type(piece) is slice:
            append(data[piece])
        elif type(piece) is bytes:
            append(piece)
        else:  # pack_avp, unrolled: the code field, flags | length, Vendor-Id, data, padding (RFC 6733 §4.1)
            code_field, word, vendor_field, position = piece  # type: ignore[misc]
            value = values[position]
            length = word + len(value)  # (word: flags << 24 | the header's length)
            parts += (code_field, _U32.pack(length), vendor_field, value, _PADDING[length & 3])
    body = b"".join(parts)
    return b"".join((
        data[0:1], (HEADER_LENGTH + len(body)).to_bytes(3, "big"), data[4:12],
        data[12:16] if hop_by_hop is None else hop_by_hop, data[16:20] if end_to_end is None else end_to_end, body,
    ))


def _compile(pieces: Sequence[slice | bytes | tuple[bytes, int, bytes, int]]) -> _Apply:
    """``apply`` for one layout as one function of straight-line code (the way
    ``collections.namedtuple`` and ``dataclasses`` make theirs): the message is one
    ``join`` of the header, the slices at this layout's offsets, the constant AVPs and the
    packed new ones; its length is the layout's fixed part plus the new AVPs' padded
    lengths. The source holds only integers and names bound below, never message data."""
    bound: dict[str, object] = {"_join": b"".join, "_padding": _PADDING}
    lines: list[str] = []
    parts = ["data[0:1]", "_length.to_bytes(3, 'big')", "data[4:12]",
             "data[12:16] if hop_by_hop is None else hop_by_hop", "data[16:20] if end_to_end is None else end_to_end"]
    fixed, lengths = HEADER_LENGTH, []
    for n, piece in enumerate(pieces):
        if type(piece) is slice:
            parts.append(f"data[{piece.start}:{piece.stop}]")
            fixed += piece.stop - piece.start
        elif type(piece) is bytes:
            bound[f"_c{n}"] = piece
            parts.append(f"_c{n}")
            fixed += len(piece)
        else:  # pack_avp, unrolled: the header in one pack, the data, the padding (RFC 6733 §4.1)
            code_field, word, vendor_field, position = piece  # type: ignore[misc]
            bound[f"_h{n}"] = _HEADER_V.pack if vendor_field else AVP_HEADER.pack
            header = f"_h{n}({int.from_bytes(code_field, 'big')}, _l{n}" + (
                f", {int.from_bytes(vendor_field, 'big')})" if vendor_field else ")")
            lines.append(f"    _v{n} = values[{position}]\n    _l{n} = {word} + len(_v{n})")
            parts += [header, f"_v{n}", f"_padding[_l{n} & 3]"]
            lengths.append(f" + (((_l{n} & 0xFFFFFF) + 3) & -4)")  # the AVP's length (flags off), padded
    source = "\n".join([
        "def apply(data, values, hop_by_hop=None, end_to_end=None):",
        *lines,
        f"    _length = {fixed}{''.join(lengths)}",
        f"    return _join(({', '.join(parts)},))",
    ])
    namespace: dict[str, object] = {}
    exec(compile(source, "<cx_codec.splice>", "exec"), bound, namespace)  # noqa: S102
    return namespace["apply"]  # type: ignore[return-value]


_PADDING = (b"", b"\0\0\0", b"\0\0", b"\0")  # by length % 4 (RFC 6733 §4: to 32 bits)


def _value_piece(code: int, flags: int, vendor: int, position: int) -> tuple[bytes, int, bytes, int]:
    """What ``body`` packs an AVP with: its code field, flags << 24 | header length (the
    data's length is added), its Vendor-Id field (empty without the V bit), which value."""
    if flags & 0x80:
        return _U32.pack(code), flags << 24 | 12, _U32.pack(vendor), position
    return _U32.pack(code), flags << 24 | 8, b"", position


def walk(data: bytes) -> list[Entry]:
    """The top-level AVPs of ``data`` (a whole message), as ``rewrite`` walks them: DecodeError
    5014 on broken framing, 5015 on a message shorter than its header."""
    end = len(data)
    if end < HEADER_LENGTH:
        raise DecodeError(ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, f"{end} bytes is shorter than the 20-byte header")
    entries: list[Entry] = []
    offset = HEADER_LENGTH
    try:
        while offset < end:
            code, word = _unpack_header(data, offset)
            length = word & 0xFFFFFF
            if length < 8 + ((word >> 29) & 4) or offset + length > end:
                raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_LENGTH,
                                  f"AVP at offset {offset} is shorter than its header or overruns the message",
                                  data[offset : offset + max(length, 8)])
            vendor = _unpack_vendor(data, offset + 8)[0] if word & 0x80000000 else 0
            entries.append((offset, code, vendor, word))
            offset += (length + 3) & -4
    except struct.error:  # fewer than 8 bytes left for an AVP header
        raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_LENGTH, f"AVP at offset {offset} is cut short",
                          data[offset : offset + 8]) from None
    return entries
