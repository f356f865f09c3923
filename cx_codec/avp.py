"""AVPs (RFC 6733 §4.1): the object, the parsing loop and the encoder.

    code(4) | flags(1) V M P r r r r r | length(3) | [vendor-id(4)] | data | padding to 4

An ``Avp`` keeps ``raw``, the exact bytes it was decoded from (header, data and padding),
so an AVP nobody changed is written back byte for byte, unknown ones included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from cx_codec.avp_header import AVP_HEADER, FLAG_MANDATORY, VENDOR_ID, pack_avp
from cx_codec.avp_header import (
    FLAG_PROTECTED as FLAG_PROTECTED,  # re-exported (callers import these from here)
)
from cx_codec.avp_header import FLAG_VENDOR as FLAG_VENDOR
from cx_codec.datatypes import DataType
from cx_codec.datatypes.numbers import (
    decode_integer32,
    decode_integer64,
    decode_unsigned32,
    decode_unsigned64,
)
from cx_codec.datatypes.strings import decode_identity, decode_utf8string
from cx_codec.datatypes.strings import decode_octetstring as _identity
from cx_codec.errors import DecodeError, ResultCode

if TYPE_CHECKING:
    from cx_codec.dictionary import AvpDef, Dictionary
    from cx_codec.grammar import Grammar


# Grouped AVPs nest; a peer could nest Failed-AVP in Failed-AVP until Python's stack
# runs out. No grammar of RFC 6733 or TS 29.229 goes deeper than 4.
MAX_DEPTH = 16

_UNSET = object()


class Avp:
    """One AVP. ``value`` is decoded on first use; Grouped AVPs expose ``children``.

    An Avp is an immutable value: decoded AVPs are shared between messages (see
    ``parse_avps``), so build a new one instead of assigning to its attributes.
    """

    __slots__ = ("code", "flags", "vendor", "data", "raw", "definition", "_children", "_value", "_dictionary", "depth")

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
        depth: int = 0,
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
        self.depth = depth  # nesting level, so lazily parsed members respect MAX_DEPTH

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
            if self.definition.opaque:  # type: ignore[union-attr]
                children = _lenient_children(self.data, 0, len(self.data), dictionary, self.depth)
            else:
                children = parse_avps(self.data, 0, len(self.data), dictionary, LAZY, self.depth + 1)
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

    def pack(self) -> bytes:
        """Serialise from the fields (members for Grouped), ignoring the kept bytes."""
        if self._children is not None:
            data = b"".join([child.pack() for child in self._children])
        else:
            data = self.data
        return pack_avp(self.code, self.flags, self.vendor, data)

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


def _too_short(buf: bytes, offset: int, end: int, what: str) -> DecodeError:
    # RFC 6733 §7.5: Failed-AVP holds what we have of the offending AVP
    return DecodeError(ResultCode.DIAMETER_INVALID_AVP_LENGTH, what, buf[offset:end])


LAZY, VALUES, VALIDATE = 0, 1, 2  # parse_avps modes

# Validated AVPs are interned by their bytes, per dictionary: Origin-Host, Vendor-
# Specific-Application-Id, Server-Name and the like repeat in every Cx message, and an
# AVP is an immutable value, so a repeat costs a slice and a lookup, not a decode.
# An AVP is admitted on its second sighting, so unique ones (auth vectors, Session-Ids)
# never crowd out the ones that repeat; the table has two generations, so many users'
# identities passing through do not flush the per-peer AVPs that repeat all the time.
INTERN_MAX_BYTES = 512
INTERN_MAX_ENTRIES = 16384

Key = tuple[int, int]
_NOTHING: dict[bytes, Avp] = {}  # an intern table that stays empty (never written to)
# A grammar signature is one exact integer per AVP key sequence (base 2**34 digits, never
# 0), cheaper to build and hash than a tuple of tuples; verdicts are memoised by it. Each
# step copies the integer, so it is built for the first SIGNED_AVPS AVPs of a level only:
# beyond, it stops at or above SIGNATURE_LIMIT, and a level that long is judged directly
# (``validate_avps``, linear) -- decoding stays linear in the number of AVPs.
SIGNED_AVPS = 64
SIGNATURE_LIMIT = 1 << (34 * SIGNED_AVPS)
NO_SIGNATURE = SIGNATURE_LIMIT  # a sequence the signature does not express: no memo


def _signature_step(signature: int, code: int, vendor: int) -> int:
    """Append (code, vendor) to a grammar signature (see SIGNATURE_LIMIT)."""
    if signature >= SIGNATURE_LIMIT:
        return signature
    slot = 0 if not vendor else 1 if vendor == 10415 else 2 if vendor == 13019 else 3
    if slot == 3:
        return NO_SIGNATURE
    return (signature << 34) | ((code << 2 | slot) + 1)


def parse_avps(
    buf: bytes,
    start: int,
    end: int,
    dictionary: Dictionary,
    mode: int,
    depth: int,
    grammar: Grammar | None = None,
    template: list[TemplateEntry] | None = None,
) -> list[Avp]:
    """Parse the AVPs in ``buf[start:end]`` into Avp objects.

    ``LAZY`` reads the headers only; values wait until asked for. ``VALUES`` also
    applies the flag and value rules (5001, 3009, 5004, 5014) to every AVP and every
    Grouped member; ``VALIDATE`` in addition checks Grouped members against their grammar,
    and this level against ``grammar`` when given. Grouped members are checked without
    building objects (``check_members``); ``Avp.children`` builds them when asked for.
    With ``template`` (VALIDATE), the layout of this level is recorded for ``apply_template``.
    Raises DecodeError, nothing else.
    """
    if depth > MAX_DEPTH:
        raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_VALUE, f"AVPs nested deeper than {MAX_DEPTH}")
    out: list[Avp] = []
    append = out.append
    definitions = dictionary.avps
    if depth:
        # interned AVPs were judged at the top level: deeper, the nesting limit leaves
        # their members less room, so the same bytes may get another verdict
        interned, interned_old, seen = _NOTHING, None, None
    else:
        interned, interned_old, seen = dictionary.interned, dictionary.interned_old, dictionary.seen_once
    unpack_header = AVP_HEADER.unpack_from
    unpack_vendor = VENDOR_ID.unpack_from
    signature = 0 if mode == VALIDATE else NO_SIGNATURE
    limit = SIGNATURE_LIMIT
    offset = start
    raw = None
    try:
        while offset < end:
            if end - offset < 8:
                raise _too_short(buf, offset, end, f"{end - offset} bytes left, too few for an AVP header")
            code, word = unpack_header(buf, offset)
            length = word & 0xFFFFFF
            if word & 0x80000000:
                if end - offset < 12:
                    raise _too_short(buf, offset, end, f"AVP {code}: V bit set but no room for the Vendor-Id")
                vendor = unpack_vendor(buf, offset + 8)[0]
                data_start = offset + 12
            else:
                vendor = 0
                data_start = offset + 8
            data_end = offset + length
            next_offset = (data_end + 3) & ~3
            if data_end < data_start or next_offset > end:
                # RFC 6733 §7.1.5 DIAMETER_INVALID_AVP_LENGTH; Failed-AVP gets what is there
                raise _too_short(
                    buf,
                    offset,
                    min(end, max(data_end, data_start)),
                    f"AVP {code} (vendor {vendor}) says {length} bytes, {end - offset} remain",
                )
            if signature < limit:
                signature = _signature_step(signature, code, vendor) if vendor else (signature << 34) | ((code << 2) + 1)
            raw = buf[offset:next_offset]
            known = interned.get(raw)
            if known is None and interned_old:
                known = interned_old.pop(raw, None)
                if known is not None:
                    interned[raw] = known  # still in use: promote it to the current table
            if known is not None:
                # the same bytes were decoded and validated before: share that AVP
                append(known)
                if template is not None:
                    template.append((offset, raw, known, code, word, vendor, None, 0, 0, 0, None, None))
                offset = next_offset
                continue
            definition = definitions.get((code, vendor))
            data = buf[data_start:data_end]
            if not mode:
                append(Avp(code, word >> 24, vendor, data, definition, raw, dictionary, None, _UNSET, depth))
                offset = next_offset
                continue
            value = check_avp(code, word, vendor, definition, buf, data_start, data_end, dictionary, mode, depth)
            avp = Avp(code, word >> 24, vendor, data, definition, raw, dictionary, None, value, depth)
            if template is not None:
                template.append((
                    offset, buf[offset:data_start], None, code, word, vendor, definition,
                    data_start - offset, length, next_offset - offset, *_value_check(definition, word),
                ))
            if mode == VALIDATE and seen is not None and next_offset - offset <= INTERN_MAX_BYTES:
                if raw in seen:
                    if len(interned) >= INTERN_MAX_ENTRIES:
                        # two generations: the full table becomes the old one; what is
                        # still used is promoted back, the rest goes at the next turn
                        dictionary.interned_old = interned
                        interned = dictionary.interned = {}
                    interned[raw] = avp
                else:
                    if len(seen) >= INTERN_MAX_ENTRIES:
                        seen.clear()
                    seen[raw] = None
            append(avp)
            offset = next_offset
    except DecodeError as error:
        if error.failed_avp is None and raw is not None:
            error.failed_avp = raw
        raise
    if grammar is not None and mode == VALIDATE:
        check_grammar_signature(signature, grammar, dictionary, lambda: out)
    return out


# A message template: per top-level AVP, (offset, bytes that must be there, the shared
# Avp or None, code, header word, vendor, definition, data offset, length, padded length,
# value check, enum). Shared AVPs must match byte for byte; the others must match their
# header (code, flags, length, vendor) and have their value checked again.
TemplateEntry = tuple[
    int, bytes, "Avp | None", int, int, int, "AvpDef | None", int, int, int, "Callable | None", "Mapping | None"
]


def _value_check(definition: AvpDef | None, word: int) -> tuple[Callable | None, Mapping | None]:
    """What ``check_avp`` still has to do for an AVP whose header (flags included) matches
    one it accepted: decode the value (and, with the M bit, find it in the enum), or check
    Grouped members; nothing for OctetString, unknown AVPs and Failed-AVP. Its flag rules
    read the header only, so their verdict is the one already given."""
    if definition is None:
        return None, None
    decode = definition.decode
    if decode is None:
        grammar = definition.grammar
        return (_GROUPED if grammar is not None and not definition.opaque else None), None
    if decode is _identity:
        return None, None
    return decode, definition.enum if word & 0x40000000 else None


def _GROUPED(data: bytes) -> object:  # a marker: members are checked by check_avp
    raise AssertionError("not called")


# A template: a function taking every bytes the entries compare from a message at once
# (one ``itemgetter`` of slices, in C), what it returns for a message laid out alike,
# the entries, and how ``template_fits`` checks the values again (``FitsChecks``).
Template = tuple[Callable[[bytes], object], object, tuple[TemplateEntry, ...], "FitsChecks"]
# (every UTF8String's data, every DiameterIdentity's data: each one ``itemgetter`` or None;
# the Grouped AVPs, each as (data start and end, code, header word, vendor, definition, the
# data of its members found valid before, at most GROUPED_KEPT); the other values checked,
# each as (data start and end, value check, enum))
FitsChecks = tuple[Callable[[bytes], Any] | None, Callable[[bytes], Any] | None, tuple[tuple[Any, ...], ...],
                   tuple[tuple[Any, ...], ...]]
GROUPED_KEPT = 16


def make_template(buf: bytes, entries: list[TemplateEntry]) -> Template:
    """The template of a message just validated, from the entries ``parse_avps`` recorded."""
    if not entries:
        return (_no_bytes, None, (), (None, None, (), ()))
    compared = itemgetter(*[slice(entry[0], entry[0] + len(entry[1])) for entry in entries])
    # once per layout, not per message: which values ``template_fits`` checks, where, how
    by_kind: dict[Callable[..., Any], list[slice]] = {decode_utf8string: [], decode_identity: []}
    grouped, others = [], []
    for offset, _, shared, code, word, vendor, definition, data_at, length, _, check, enum in entries:
        if shared is not None or check is None:
            continue
        start, end = offset + data_at, offset + length
        if check in by_kind:
            by_kind[check].append(slice(start, end))
        elif check is _GROUPED:
            grouped.append((start, end, code, word, vendor, definition, set()))
        elif not (check in _LENGTH_ONLY and enum is None):  # (the header, length included, is compared)
            others.append((start, end, check, enum))
    return (compared, compared(buf), tuple(entries), (
        _getter(by_kind[decode_utf8string]), _getter(by_kind[decode_identity]), tuple(grouped), tuple(others)))


def _getter(slices: list[slice]) -> Callable[[bytes], tuple[bytes, ...]] | None:
    """Those slices of a message, as a tuple (one ``itemgetter`` in C); None for none."""
    if not slices:
        return None
    return itemgetter(*slices, slice(0, 0)) if len(slices) == 1 else itemgetter(*slices)


def _no_bytes(buf: bytes) -> None:
    return None


# Values ``template_fits`` checks together, each kind in one C call: the data of every
# UTF8String joined by NUL decoded once (RFC 6733 §4.3.1; UTF-8 resynchronises at every
# ASCII byte, so the whole is valid if and only if each part is), and the data of every
# DiameterIdentity joined, left empty once its allowed characters are deleted
# (``decode_identity``'s rule; none is empty: its length is in the compared header).
_IDENTITY_BYTES = bytes(range(0x21, 0x7F))  # printable ASCII, no space
# fixed-size types whose decoding checks the length alone (a value without enum: nothing left)
_LENGTH_ONLY = frozenset({decode_integer32, decode_integer64, decode_unsigned32, decode_unsigned64})


def apply_template(buf: bytes, template: Template, dictionary: Dictionary) -> list[Avp] | None:
    """The AVPs of a message laid out like one validated before, or None if it is not.

    Same length, same AVP headers at the same offsets, the shared AVPs byte for byte: the
    same structure, so the same grammar verdict and the same flag verdicts; the other
    AVPs' values are checked again (``_value_check``, ``check_avp`` for Grouped). A value
    that fails returns None, and the full decoder then reports it precisely. The layout
    is compared first, so a template that does not fit costs no value checks.
    """
    compared, expected, entries, _ = template
    if compared(buf) != expected:
        return None
    avps: list[Avp] = []
    append = avps.append
    try:
        for offset, _, shared, code, word, vendor, definition, data_at, length, padded, check, enum in entries:
            if shared is not None:
                append(shared)
                continue
            data_start = offset + data_at
            data = buf[data_start : offset + length]
            if check is None:
                value = _UNSET
            elif check is _GROUPED:
                value = check_avp(code, word, vendor, definition, buf, data_start, offset + length, dictionary, VALIDATE, 0)
            else:
                value = check(data)
                if enum is not None and value not in enum:
                    return None
            append(Avp(code, word >> 24, vendor, data, definition, buf[offset : offset + padded], dictionary, None, value, 0))
    except DecodeError:
        return None
    return avps


def template_fits(buf: bytes, template: Template, dictionary: Dictionary) -> bool:
    """``apply_template``'s verdict without building the AVPs: True when ``buf`` is laid
    out like the message the template was made from and its other values pass their
    checks again (so ``decode`` would accept it)."""
    compared, expected, _, (utf8, identities, grouped, checked) = template
    if compared(buf) != expected:
        return False
    try:
        if utf8 is not None:
            b"\0".join(utf8(buf)).decode()
        if identities is not None and b"".join(identities(buf)).translate(None, _IDENTITY_BYTES):
            return False
        for start, end, code, word, vendor, definition, valid in grouped:
            # a Grouped AVP's verdict is its data's (same header, top level): the same
            # members as one found valid before are valid (an S-CSCF repeats them)
            data = buf[start:end]
            if data not in valid:
                check_avp(code, word, vendor, definition, buf, start, end, dictionary, VALIDATE, 0)
                if len(valid) < GROUPED_KEPT:
                    valid.add(data)
        for start, end, check, enum in checked:
            value = check(buf[start:end])
            if enum is not None and value not in enum:
                return False
    except (DecodeError, UnicodeDecodeError):  # (UnicodeDecodeError: the UTF8Strings' one decode)
        return False
    return True


def check_avp(
    code: int,
    word: int,
    vendor: int,
    definition: AvpDef | None,
    buf: bytes,
    data_start: int,
    data_end: int,
    dictionary: Dictionary,
    mode: int,
    depth: int,
) -> object:
    """RFC 6733 §4.1 flag and value rules of one AVP (and its members); its value."""
    if definition is None:
        if word & 0x40000000:
            # §7.1.5 DIAMETER_AVP_UNSUPPORTED: unknown with the M bit
            raise DecodeError(
                ResultCode.DIAMETER_AVP_UNSUPPORTED, f"AVP {code} vendor {vendor} is unknown and has the M bit"
            )
        return _UNSET
    if (word >> 24) & definition.forbidden_flags or (word & 0x80000000 and not vendor):
        # §7.1.3 DIAMETER_INVALID_AVP_BITS: flags contradict the definition
        raise DecodeError(
            ResultCode.DIAMETER_INVALID_AVP_BITS, f"{definition.name}: flags 0x{word >> 24:02x} contradict its definition"
        )
    decode = definition.decode
    if decode is not None:
        if decode is _identity:
            return _UNSET  # OctetString: the value is the data
        value = decode(buf[data_start:data_end])
        enum = definition.enum
        if enum is not None and word & 0x40000000 and value not in enum:
            # §4.1: an unrecognised value of an M-bit AVP is 5004
            raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_VALUE, f"{definition.name}: {value} is not one of its values")
        return value
    if definition.grammar is not None and not definition.opaque:
        # Failed-AVP (opaque) carries offending AVPs as they came (RFC 6733 §7.5)
        # a layout is remembered with the depth it was judged at: the same members one
        # level deeper may break the nesting limit (MAX_DEPTH)
        layouts = dictionary.layouts.get((definition, data_end - data_start, depth))
        if layouts is not None:
            startswith = buf.startswith
            for layout in layouts:
                for relative, expected in layout:
                    if not startswith(expected, data_start + relative):
                        break
                else:
                    return _UNSET  # the members of a layout validated before
        try:
            layout = check_members(
                buf, data_start, data_end, dictionary, definition.grammar if mode == VALIDATE else None, depth + 1
            )
            if mode == VALIDATE:
                _remember_layout(dictionary, (definition, data_end - data_start, depth), layout)
        except DecodeError as error:
            # RFC 6733 §7.5: Failed-AVP may hold the Grouped AVP "which in turn contains
            # the single offending AVP"
            if error.failed_avp is not None:
                error.failed_avp = pack_avp(code, word >> 24, vendor, error.failed_avp)
            raise
    return _UNSET


def check_members(
    buf: bytes, start: int, end: int, dictionary: Dictionary, grammar: Grammar | None, depth: int
) -> list[tuple[int, bytes]]:
    """Apply every rule to the members of a Grouped AVP without building objects
    (``Avp.children`` builds them if anyone asks); with ``grammar``, check them against it.

    Returns the members' layout: (offset from ``start``, bytes that must be there) with
    the header of each OctetString member and the whole of every other member. Members
    that match a layout element for element get the same verdict, whatever the
    OctetString data (see ``check_avp``)."""
    layout: list[tuple[int, bytes]] = []
    if depth > MAX_DEPTH:
        raise DecodeError(ResultCode.DIAMETER_INVALID_AVP_VALUE, f"AVPs nested deeper than {MAX_DEPTH}")
    definitions = dictionary.avps
    unpack_header = AVP_HEADER.unpack_from
    signature = 0
    limit = SIGNATURE_LIMIT
    offset = start
    try:
        while offset < end:
            if end - offset < 8:
                raise _too_short(buf, offset, end, f"{end - offset} bytes left, too few for an AVP header")
            code, word = unpack_header(buf, offset)
            if word & 0x80000000:
                if end - offset < 12:
                    raise _too_short(buf, offset, end, f"AVP {code}: V bit set but no room for the Vendor-Id")
                vendor = VENDOR_ID.unpack_from(buf, offset + 8)[0]
                data_start = offset + 12
            else:
                vendor = 0
                data_start = offset + 8
            data_end = offset + (word & 0xFFFFFF)
            next_offset = (data_end + 3) & ~3
            if data_end < data_start or next_offset > end:
                raise _too_short(
                    buf, offset, min(end, max(data_end, data_start)),
                    f"AVP {code} (vendor {vendor}) says {word & 0xFFFFFF} bytes, {end - offset} remain",
                )
            definition = definitions.get((code, vendor))
            if (
                definition is None
                or definition.decode is not _identity
                or (word >> 24) & definition.forbidden_flags
                or (word & 0x80000000 and not vendor)
            ):
                check_avp(code, word, vendor, definition, buf, data_start, data_end, dictionary,
                          VALIDATE if grammar is not None else VALUES, depth)
                layout.append((offset - start, buf[offset:next_offset]))
            else:  # an OctetString with acceptable flags (AKA vectors): only its header counts
                layout.append((offset - start, buf[offset:data_start]))
            if signature < limit:
                if vendor == 10415:
                    signature = (signature << 34) | ((code << 2 | 1) + 1)
                else:
                    signature = _signature_step(signature, code, vendor)
            offset = next_offset
    except DecodeError as error:
        if error.failed_avp is None:
            error.failed_avp = buf[offset:min(end, offset + ((word & 0xFFFFFF) + 3 & ~3))]
        raise
    if grammar is not None:
        check_grammar_signature(
            signature, grammar, dictionary, lambda: parse_avps(buf, start, end, dictionary, LAZY, depth)
        )
    return layout


MAX_LAYOUTS = 4  # per (Grouped AVP, length, depth): AKA items come in very few shapes
LayoutKey = tuple["AvpDef", int, int]


def _remember_layout(dictionary: Dictionary, key: LayoutKey, layout: list[tuple[int, bytes]]) -> None:
    layouts = dictionary.layouts
    if len(layouts) >= INTERN_MAX_ENTRIES:
        layouts.clear()
    known = layouts.setdefault(key, [])
    if len(known) < MAX_LAYOUTS:
        known.append(tuple(layout))


def _lenient_children(buf: bytes, start: int, end: int, dictionary: Dictionary, depth: int) -> list[Avp]:
    try:
        return parse_avps(buf, start, end, dictionary, LAZY, depth + 1)
    except DecodeError:
        return []


def check_grammar(avps: list[Avp], grammar: Grammar, dictionary: Dictionary) -> None:
    """Grammar check of one level of decoded AVPs (members already checked), memoised."""
    signature = 0
    for avp in avps:
        signature = _signature_step(signature, avp.code, avp.vendor)
    check_grammar_signature(signature, grammar, dictionary, lambda: avps)


def check_grammar_signature(
    signature: int, grammar: Grammar, dictionary: Dictionary, materialise: Callable[[], list[Avp]]
) -> None:
    """The verdict depends only on the sequence of (code, vendor) keys, so a sequence
    seen valid before is valid again; otherwise the AVPs are built and judged in full,
    which names the offending AVP."""
    memo = (grammar, signature)
    valid = dictionary.signatures
    memoised = signature < SIGNATURE_LIMIT
    if memoised and memo in valid:
        return
    from cx_codec.validate import validate_avps

    validate_avps(materialise(), grammar, dictionary, recurse=False)
    if memoised:
        if len(valid) >= _MAX_SIGNATURES:
            valid.clear()
        valid[memo] = True


_MAX_SIGNATURES = 4096
