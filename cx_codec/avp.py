"""AVPs (RFC 6733 §4.1): the object, the parsing loop and the encoder.

    code(4) | flags(1) V M P r r r r r | length(3) | [vendor-id(4)] | data | padding to 4

An ``Avp`` keeps ``raw``, the exact bytes it was decoded from (header, data and padding),
so an AVP nobody changed is written back byte for byte, unknown ones included.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import TYPE_CHECKING

from cx_codec.datatypes import DataType
from cx_codec.errors import DecodeError, EncodeError, ResultCode

if TYPE_CHECKING:
    from cx_codec.dictionary import AvpDef, Dictionary

AVP_HEADER = struct.Struct(">II")
VENDOR_ID = struct.Struct(">I")
_AVP_HEADER_V = struct.Struct(">III")

FLAG_VENDOR = 0x80  # V
FLAG_MANDATORY = 0x40  # M
FLAG_PROTECTED = 0x20  # P, RFC 6733 §4.1: "SHOULD be set to 0"

# Grouped AVPs nest; a peer could nest Failed-AVP in Failed-AVP until Python's stack
# runs out. No grammar of RFC 6733 or TS 29.229 goes deeper than 4.
MAX_DEPTH = 16

_UNSET = object()


class Avp:
    """One AVP. ``value`` is decoded on first use; Grouped AVPs expose ``children``."""

    __slots__ = ("code", "flags", "vendor", "data", "raw", "definition", "_children", "_value", "_dictionary")

    def __init__(
        self,
        code: int,
        flags: int,
        vendor: int,
        data: bytes,
        definition: AvpDef | None = None,
        raw: bytes | None = None,
        dictionary: Dictionary | None = None,
        children: list[Avp] | None = None,
        value: object = _UNSET,
    ) -> None:
        self.code = code
        self.flags = flags
        self.vendor = vendor
        self.data = data
        self.raw = raw
        self.definition = definition
        self._dictionary = dictionary
        self._children = children
        self._value = value

    # -- identity -----------------------------------------------------------------
    @property
    def key(self) -> tuple[int, int]:
        return (self.code, self.vendor)

    @property
    def name(self) -> str:
        definition = self.definition
        return definition.name if definition is not None else f"Unknown-AVP({self.code}, {self.vendor})"

    @property
    def is_mandatory(self) -> bool:
        return bool(self.flags & FLAG_MANDATORY)

    @property
    def is_grouped(self) -> bool:
        return self.definition is not None and self.definition.type is DataType.Grouped

    # -- values -------------------------------------------------------------------
    @property
    def value(self) -> object:
        """Typed value: int, str, bytes, ip address, datetime; children for Grouped."""
        value = self._value
        if value is _UNSET:
            definition = self.definition
            if definition is None:
                value = self.data
            elif definition.decode is None:
                value = self.children
            else:
                try:
                    value = definition.decode(self.data)
                except DecodeError as error:
                    error.failed_avp = self.encode()
                    raise
            self._value = value
        return value

    @property
    def children(self) -> list[Avp]:
        """Members of a Grouped AVP, parsed on first use (not validated here)."""
        children = self._children
        if children is None:
            if not self.is_grouped:
                raise TypeError(f"{self.name} is not a Grouped AVP")
            from cx_codec.dictionary import DEFAULT_DICTIONARY

            dictionary = self._dictionary or DEFAULT_DICTIONARY
            children = parse_avps(self.data, 0, len(self.data), dictionary, False, 1)
            self._children = children
        return children

    @property
    def enum_name(self) -> str | None:
        definition = self.definition
        if definition is None or definition.enum is None:
            return None
        return definition.enum.get(self.value)  # type: ignore[call-overload]

    def find(self, name: str) -> Avp | None:
        """First member of a Grouped AVP with that name."""
        for child in self.children:
            if child.definition is not None and child.definition.name == name:
                return child
        return None

    def get(self, name: str, default: object = None) -> object:
        child = self.find(name)
        return default if child is None else child.value

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Avp]]:
        """(depth, avp) for this AVP and every nested member, depth first."""
        yield depth, self
        if self.is_grouped:
            for child in self.children:
                yield from child.walk(depth + 1)

    # -- bytes --------------------------------------------------------------------
    def encode(self) -> bytes:
        raw = self.raw
        if raw is None:
            raw = self.raw = pack_avp(self.code, self.flags, self.vendor, self.data)
        return raw

    def __len__(self) -> int:
        return len(self.encode())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Avp):
            return NotImplemented
        return (self.code, self.vendor, self.flags, self.data) == (
            other.code,
            other.vendor,
            other.flags,
            other.data,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.is_grouped:
            return f"<Avp {self.name} [{', '.join(repr(c) for c in self.children)}]>"
        try:
            value = self.value
        except DecodeError:
            value = self.data
        return f"<Avp {self.name}={value!r}>"


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


def _too_short(buf: bytes, offset: int, end: int, what: str) -> DecodeError:
    # RFC 6733 §7.5: Failed-AVP holds what we have of the offending AVP
    return DecodeError(ResultCode.DIAMETER_INVALID_AVP_LENGTH, what, buf[offset:end])


def parse_avps(
    buf: bytes,
    start: int,
    end: int,
    dictionary: Dictionary,
    strict: bool,
    depth: int,
) -> list[Avp]:
    """Parse the AVPs in ``buf[start:end]``.

    ``strict`` (full decoding) also decodes every value, recurses into Grouped AVPs and
    applies the flag rules; without it only the headers are read and values wait until
    asked for. Raises DecodeError (5014, 5004, 5001, 3009), nothing else.
    """
    if depth > MAX_DEPTH:
        raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_VALUE, f"AVPs nested deeper than {MAX_DEPTH}")
    avps: list[Avp] = []
    append = avps.append
    definitions = dictionary.avps
    unpack_header = AVP_HEADER.unpack_from
    unpack_vendor = VENDOR_ID.unpack_from
    offset = start
    while offset < end:
        if end - offset < 8:
            raise _too_short(buf, offset, end, f"{end - offset} bytes left, too few for an AVP header")
        code, word = unpack_header(buf, offset)
        flags = word >> 24
        length = word & 0xFFFFFF
        if flags & FLAG_VENDOR:
            if end - offset < 12:
                raise _too_short(buf, offset, end, f"AVP {code}: V bit set but no room for the Vendor-Id")
            vendor = unpack_vendor(buf, offset + 8)[0]
            data_start = offset + 12
        else:
            vendor = 0
            data_start = offset + 8
        next_offset = offset + ((length + 3) & ~3)
        if length < data_start - offset or next_offset > end:
            # RFC 6733 §7.1.5 DIAMETER_INVALID_AVP_LENGTH; keep what is there for Failed-AVP
            raise _too_short(
                buf,
                offset,
                min(end, offset + max(length, data_start - offset)),
                f"AVP {code} (vendor {vendor}) says {length} bytes, {end - offset} remain",
            )
        data = buf[data_start : offset + length]
        raw = buf[offset:next_offset]
        definition = definitions.get((code, vendor))
        avp = Avp(code, flags, vendor, data, definition, raw, dictionary)
        if strict:
            _check_strict(avp, definition, buf, data_start, offset + length, dictionary, depth)
        append(avp)
        offset = next_offset
    return avps


def _check_strict(
    avp: Avp,
    definition: AvpDef | None,
    buf: bytes,
    data_start: int,
    data_end: int,
    dictionary: Dictionary,
    depth: int,
) -> None:
    flags = avp.flags
    if definition is None:
        if flags & FLAG_MANDATORY:
            # RFC 6733 §4.1, §7.1.5 DIAMETER_AVP_UNSUPPORTED
            raise DecodeError(
                ResultCode.DIAMETER_AVP_UNSUPPORTED,
                f"AVP {avp.code} vendor {avp.vendor} is unknown and has the M bit",
                avp.raw,
            )
        return
    if (flags & FLAG_MANDATORY and definition.m_bit_forbidden) or (flags & FLAG_VENDOR and not avp.vendor):
        # RFC 6733 §7.1.3 DIAMETER_INVALID_AVP_BITS: flags inconsistent with the definition
        raise DecodeError(
            ResultCode.DIAMETER_INVALID_AVP_BITS,
            f"{definition.name}: flags 0x{flags:02x} contradict its definition",
            avp.raw,
        )
    decode = definition.decode
    if decode is not None:
        try:
            value = decode(avp.data)
        except DecodeError as error:
            error.failed_avp = avp.raw
            raise
        enum = definition.enum
        if enum is not None and value not in enum and flags & FLAG_MANDATORY:
            # RFC 6733 §4.1: an unrecognised value of an M-bit AVP is 5004
            raise DecodeError(
                ResultCode.DIAMETER_INVALID_AVP_VALUE,
                f"{definition.name}: {value} is not one of its values",
                avp.raw,
            )
        avp._value = value
    elif definition.grammar is not None:
        if definition.code == 279 and definition.vendor == 0:
            # Failed-AVP carries the offending AVPs as they came (RFC 6733 §7.5):
            # parse its members leniently, they are reported, not validated.
            try:
                avp._children = parse_avps(buf, data_start, data_end, dictionary, False, depth + 1)
            except DecodeError:
                avp._children = []
            return
        avp._children = parse_avps(buf, data_start, data_end, dictionary, True, depth + 1)
