"""Diameter messages: decoding (lazy or full), field access and encoding.

A decoded ``Message`` keeps its AVP bytes; ``encode()`` of an unchanged message returns
the input byte for byte (the header is re-packed from its fields, which hold every bit).
Changing AVPs goes through methods that drop the kept bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from cx_codec.avp import (
    LAZY,
    VALIDATE,
    VALUES,
    Avp,
    Template,
    TemplateEntry,
    apply_template,
    make_template,
    parse_avps,
    template_fits,
)
from cx_codec.dictionary import DEFAULT_DICTIONARY, Dictionary
from cx_codec.header import HEADER, HEADER_LENGTH, Flags, check_flags, unpack_header

if TYPE_CHECKING:
    from cx_codec.grammar import Grammar


class Message:
    """A Diameter message: header fields and a tuple of top-level AVPs."""

    __slots__ = (
        "version",
        "flags",
        "command_code",
        "application_id",
        "hop_by_hop",
        "end_to_end",
        "avps",
        "dictionary",
        "_body",
    )

    def __init__(
        self,
        command_code: int,
        flags: int,
        application_id: int,
        hop_by_hop: int = 0,
        end_to_end: int = 0,
        avps: Iterable[Avp] = (),
        dictionary: Dictionary = DEFAULT_DICTIONARY,
        *,
        version: int = 1,
        body: bytes | None = None,
    ) -> None:
        self.version = version
        self.flags = flags
        self.command_code = command_code
        self.application_id = application_id
        self.hop_by_hop = hop_by_hop
        self.end_to_end = end_to_end
        self.avps: tuple[Avp, ...] = tuple(avps)
        self.dictionary = dictionary
        self._body = body

    # -- header ---------------------------------------------------------------------
    @property
    def is_request(self) -> bool:
        return bool(self.flags & Flags.REQUEST)

    @property
    def is_proxiable(self) -> bool:
        return bool(self.flags & Flags.PROXIABLE)

    @property
    def is_error(self) -> bool:
        return bool(self.flags & Flags.ERROR)

    @property
    def is_retransmit(self) -> bool:
        return bool(self.flags & Flags.RETRANSMIT)

    @property
    def grammar(self) -> Grammar | None:
        flags = self.flags
        if flags & 0x20:  # E bit: RFC 6733 §7.2 answer-message
            return self.dictionary.commands_by_name.get("Answer-Message")
        return self.dictionary.grammar_for(self.command_code, self.application_id, bool(flags & 0x80))

    @property
    def name(self) -> str:
        grammar = self.dictionary.grammar_for(self.command_code, self.application_id, self.is_request)
        if grammar is not None:
            return grammar.name
        return f"{'Request' if self.is_request else 'Answer'}({self.command_code}, app {self.application_id})"

    # -- reading AVPs ---------------------------------------------------------------
    def find(self, name: str) -> Avp | None:
        """First top-level AVP with that name, or None."""
        key = self.dictionary.avp(name).key
        for avp in self.avps:
            if avp.code == key[0] and avp.vendor == key[1]:
                return avp
        return None

    def find_all(self, name: str) -> list[Avp]:
        key = self.dictionary.avp(name).key
        return [avp for avp in self.avps if (avp.code, avp.vendor) == key]

    def get(self, name: str, default: object = None) -> object:
        avp = self.find(name)
        return default if avp is None else avp.value

    def __getitem__(self, name: str) -> object:
        avp = self.find(name)
        if avp is None:
            raise KeyError(f"{self.name} has no {name}")
        return avp.value

    def __contains__(self, name: str) -> bool:
        return self.find(name) is not None

    def __iter__(self) -> Iterator[Avp]:
        return iter(self.avps)

    @property
    def result_code(self) -> int | None:
        """Result-Code (base, RFC 6733 §7.1) or None. See ``experimental_result``."""
        value = self.get("Result-Code")
        return value  # type: ignore[return-value]

    @property
    def experimental_result(self) -> tuple[int, int] | None:
        """(Vendor-Id, Experimental-Result-Code) or None. Same numbers, other meanings."""
        avp = self.find("Experimental-Result")
        if avp is None:
            return None
        return (avp.get("Vendor-Id", 0), avp.get("Experimental-Result-Code", 0))  # type: ignore[return-value]

    # -- changing AVPs ----------------------------------------------------------------
    def replace_avps(self, avps: Iterable[Avp]) -> None:
        self.avps = tuple(avps)
        self._body = None

    def set(self, avp: Avp) -> None:
        """Replace the first AVP with the same key, or insert in grammar order."""
        avps = list(self.avps)
        for index, current in enumerate(avps):
            if current.key == avp.key:
                avps[index] = avp
                break
        else:
            grammar = self.grammar
            position = grammar.position(avp.key) if grammar is not None else len(avps)
            insert_at = len(avps)
            for index, current in enumerate(avps):
                if grammar is not None and grammar.position(current.key) > position:
                    insert_at = index
                    break
            avps.insert(insert_at, avp)
        self.replace_avps(avps)

    def append(self, avp: Avp) -> None:
        self.replace_avps((*self.avps, avp))

    def remove(self, name: str) -> None:
        key = self.dictionary.avp(name).key
        self.replace_avps(avp for avp in self.avps if avp.key != key)

    # -- bytes ------------------------------------------------------------------------
    def encode(self) -> bytes:
        body = self._body
        if body is None:
            body = self._body = b"".join([avp.encode() for avp in self.avps])
        return self._with_header(body)

    def pack(self) -> bytes:
        """Serialise every AVP from its fields, ignoring kept bytes (canonical padding)."""
        return self._with_header(b"".join([avp.pack() for avp in self.avps]))

    def _with_header(self, body: bytes) -> bytes:
        return (
            HEADER.pack(
                (self.version << 24) | (HEADER_LENGTH + len(body)),
                (self.flags << 24) | self.command_code,
                self.application_id,
                self.hop_by_hop,
                self.end_to_end,
            )
            + body
        )

    def validate(self) -> None:
        """Check the AVPs against the command grammar (and Grouped members)."""
        from cx_codec.validate import validate_avps

        grammar = self.grammar
        if grammar is not None:
            validate_avps(self.avps, grammar, self.dictionary)

    def __repr__(self) -> str:
        return (
            f"<Message {self.name} flags=0x{self.flags:02x} hbh=0x{self.hop_by_hop:08x} "
            f"e2e=0x{self.end_to_end:08x} avps={len(self.avps)}>"
        )


def decode(data: bytes, dictionary: Dictionary = DEFAULT_DICTIONARY, *, validate: bool = True) -> Message:
    """Full decode: every AVP, every value, every Grouped member, and the grammar.

    Raises DecodeError carrying the RFC 6733 result code and Failed-AVP bytes.
    """
    data = bytes(data)
    version, length, flags, code, application_id, hop_by_hop, end_to_end = unpack_header(data)
    check_flags(flags)
    grammar = None
    if validate:
        if flags & 0x20:  # E bit: RFC 6733 §7.2 answer-message
            grammar = dictionary.commands_by_name.get("Answer-Message")
        else:
            grammar = dictionary.grammar_for(code, application_id, bool(flags & 0x80))
    if not validate:
        avps = parse_avps(data, HEADER_LENGTH, length, dictionary, VALUES, 0)
    else:
        # messages of one kind and length are usually laid out alike (same AVPs, same
        # lengths, only some values differ): try the layouts validated before
        key = (code, flags, application_id, length)
        templates = dictionary.templates.get(key)
        avps = None
        if templates:
            for index, known in enumerate(templates):
                avps = apply_template(data, known, dictionary)
                if avps is not None:
                    if index:  # most recently used first: layouts drift as counters grow
                        templates.insert(0, templates.pop(index))
                    break
        if avps is None:
            template: list[TemplateEntry] = []
            avps = parse_avps(data, HEADER_LENGTH, length, dictionary, VALIDATE, 0, grammar, template)
            _remember_template(dictionary, key, templates, make_template(data, template))
    return Message(
        code, flags, application_id, hop_by_hop, end_to_end, avps, dictionary,
        version=version, body=data[HEADER_LENGTH:],
    )


def strict_layout(data: bytes, dictionary: Dictionary = DEFAULT_DICTIONARY) -> tuple[TemplateEntry, ...]:
    """The top-level layout of a message that passes ``decode``: the entries of the
    template it fits (per AVP: offset, header word, vendor, ...; avp.TemplateEntry), found
    without building AVPs when a message laid out alike was validated before, else by
    ``decode`` itself (which raises its DecodeError, or records the layout). The same
    verdict as ``decode(data)``, for a translating fast path that needs the verdict and
    where each AVP is, not the objects."""
    if len(data) >= HEADER_LENGTH and data[0] == 1:
        word0, word1, application_id = _HEAD_WORDS.unpack_from(data)  # RFC 6733 §3
        length = word0 & 0xFFFFFF
        key = (word1 & 0xFFFFFF, word1 >> 24, application_id, length)
        templates = dictionary.templates.get(key)
        if templates and length == len(data):
            for template in templates:
                if template_fits(data, template, dictionary):
                    return template[2]
    message = decode(data, dictionary)  # DecodeError, or the layout is now the first template
    key = (message.command_code, message.flags, message.application_id, len(data))
    return dictionary.templates[key][0][2]


_HEAD_WORDS = struct.Struct(">III")  # version | length, flags | command, application
MAX_TEMPLATES = 4  # per (command, flags, application, length)


def _remember_template(dictionary: Dictionary, key: tuple[int, int, int, int], known: list | None, template: Template) -> None:
    """Keep the layout just validated, first; the least recently used one goes when a key
    has MAX_TEMPLATES (one length, several layouts: a Session-Id counter gains a digit
    as a user name loses one, and the old layouts stop recurring)."""
    if known is None:
        if len(dictionary.templates) >= 4096:
            dictionary.templates.clear()
        known = dictionary.templates[key] = []
    known.insert(0, template)
    if len(known) > MAX_TEMPLATES:
        known.pop()


def decode_lazy(data: bytes, dictionary: Dictionary = DEFAULT_DICTIONARY) -> Message:
    """Header and top-level AVP boundaries only; values are decoded when asked for.

    Framing errors still raise DecodeError; values, flags and grammar are not checked.
    """
    data = bytes(data)
    version, length, flags, code, application_id, hop_by_hop, end_to_end = unpack_header(data)
    avps = parse_avps(data, HEADER_LENGTH, length, dictionary, LAZY, 0)
    return Message(
        code, flags, application_id, hop_by_hop, end_to_end, avps, dictionary,
        version=version, body=data[HEADER_LENGTH:],
    )
