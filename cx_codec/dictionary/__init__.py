"""The dictionary as data, keyed by (code, vendor-id).

Each module here is one specification's table: ``VENDOR``, ``AVPS`` rows
``(code, name, type, flags)``, ``ENUMS`` (name -> {value: label}) and ``GRAMMARS``
(CCF text, RFC 6733 §3.2). ``flags`` holds "M" when the specification's AVP flag table
says the M bit MUST be set (we set it when encoding), "" when it may or must not be.

Always key by (code, vendor): DOIC's OC-* AVPs (RFC 7683, vendor 0) and Cx AVPs
(vendor 10415) share code numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType

from cx_codec.datatypes import CODECS, DataType, Decoder, Encoder
from cx_codec.grammar import Grammar, parse_ccf

APPLICATION_COMMON = 0  # RFC 6733 §2.4: the base protocol's own commands
APPLICATION_CX = 16777216  # TS 29.229 §7.2
APPLICATION_RELAY = 0xFFFFFFFF  # RFC 6733 §2.4
VENDOR_3GPP = 10415


@dataclass(slots=True, eq=False)
class AvpDef:
    code: int
    vendor: int
    name: str
    type: DataType
    mandatory: bool
    # AVP flag bits that must not be set: M where the spec says MUST NOT (3009)
    forbidden_flags: int = 0
    enum: Mapping[int, str] | None = None
    grammar: Grammar | None = None  # Grouped only
    decode: Decoder | None = None
    encode: Encoder | None = None

    @property
    def key(self) -> tuple[int, int]:
        return (self.code, self.vendor)

    @property
    def m_bit_forbidden(self) -> bool:
        return bool(self.forbidden_flags & 0x40)

    @property
    def opaque(self) -> bool:
        """Failed-AVP: members are the offending AVPs as received, never validated."""
        return self.code == 279 and self.vendor == 0

    @property
    def flags(self) -> int:
        """AVP flag byte we send: V when vendor-specific, M when the spec says MUST."""
        return (0x80 if self.vendor else 0) | (0x40 if self.mandatory else 0)


@dataclass(slots=True)
class Dictionary:
    avps: dict[tuple[int, int], AvpDef] = field(default_factory=dict)
    by_name: dict[str, AvpDef] = field(default_factory=dict)
    # (command code, application-id, is-request) -> grammar
    commands: dict[tuple[int, int, bool], Grammar] = field(default_factory=dict)
    commands_by_name: dict[str, Grammar] = field(default_factory=dict)
    applications: dict[int, str] = field(default_factory=dict)
    # raw bytes -> validated Avp, filled by cx_codec.avp.parse_avps
    interned: dict[bytes, object] = field(default_factory=dict)
    interned_old: dict[bytes, object] = field(default_factory=dict)
    seen_once: dict[bytes, None] = field(default_factory=dict)
    # (command, flags, application, length) -> message templates validated before
    templates: dict[tuple[int, int, int, int], list[tuple]] = field(default_factory=dict)
    # (Grouped AVP definition, data length, depth) -> member layouts validated before
    layouts: dict[tuple[object, int, int], list[tuple[tuple[int, bytes], ...]]] = field(default_factory=dict)
    # (grammar, signature of an AVP key sequence) -> True: sequences the grammar accepts
    signatures: dict[tuple[Grammar, int], bool] = field(default_factory=dict)

    def clear_caches(self) -> None:
        """Forget everything decoding learnt (interned AVPs, templates, layouts, grammar
        verdicts): the next decode judges every AVP from scratch. Caches only shortcut
        work, so this never changes a verdict, only the time it takes."""
        self.interned = {}
        self.interned_old = {}
        self.seen_once = {}
        self.templates = {}
        self.layouts = {}
        self.signatures = {}

    def load(self, *modules: ModuleType) -> Dictionary:
        """Load specification tables, then resolve every grammar's names."""
        for module in modules:
            vendor = module.VENDOR
            enums: Mapping[str, Mapping[int, str]] = getattr(module, "ENUMS", {})
            for row in module.AVPS:
                # rows are (code, name, type, flags) or, for an AVP of another vendor
                # that this specification's grammars name, (code, name, type, flags, vendor)
                code, name, type_name, flags = row[:4]
                row_vendor = row[4] if len(row) > 4 else vendor
                definition = self.add_avp(
                    code, row_vendor, name, DataType(type_name), "M" in flags, enums.get(name)
                )
                definition.forbidden_flags = 0x40 if "-" in flags else 0
            self.applications.update(getattr(module, "APPLICATIONS", {}))
        for module in modules:
            self.add_grammars(getattr(module, "GRAMMARS", ""))
        return self

    def add_avp(
        self,
        code: int,
        vendor: int,
        name: str,
        data_type: DataType,
        mandatory: bool,
        enum: Mapping[int, str] | None = None,
    ) -> AvpDef:
        key = (code, vendor)
        if key in self.avps:
            raise ValueError(f"AVP {name}: ({code}, {vendor}) already defined as {self.avps[key].name}")
        if name in self.by_name:
            raise ValueError(f"AVP name {name} defined twice")
        decode, encode = CODECS.get(data_type, (None, None))
        definition = AvpDef(code, vendor, name, data_type, mandatory, False, enum, None, decode, encode)
        self.avps[key] = definition
        self.by_name[name] = definition
        return definition

    def add_grammars(self, text: str) -> None:
        keys = {name: definition.key for name, definition in self.by_name.items()}
        for grammar in parse_ccf(text):
            grammar.resolve(keys)
            if grammar.kind == "avp":
                definition = self.avps.get((grammar.code, grammar.vendor))
                if definition is None or definition.name != grammar.name:
                    raise ValueError(f"grammar {grammar.name}: no Grouped AVP ({grammar.code}, {grammar.vendor})")
                if definition.type is not DataType.Grouped:
                    raise ValueError(f"grammar {grammar.name}: AVP is {definition.type.value}, not Grouped")
                definition.grammar = grammar
            else:
                self.commands[(grammar.code, grammar.application_id, grammar.request)] = grammar
                self.commands_by_name[grammar.name] = grammar

    def check_complete(self) -> list[str]:
        """Names of Grouped AVPs without a grammar (the tests require none)."""
        return [d.name for d in self.avps.values() if d.type is DataType.Grouped and d.grammar is None]

    def avp(self, name: str) -> AvpDef:
        try:
            return self.by_name[name]
        except KeyError:
            raise KeyError(f"no AVP named {name!r} in the dictionary") from None

    def command(self, name: str) -> Grammar:
        try:
            return self.commands_by_name[name]
        except KeyError:
            raise KeyError(f"no command named {name!r} in the dictionary") from None

    def grammar_for(self, code: int, application_id: int, request: bool) -> Grammar | None:
        grammar = self.commands.get((code, application_id, request))
        if grammar is None and application_id != APPLICATION_COMMON:
            # base commands keep application-id 0 whatever the session (RFC 6733 §2.4)
            grammar = self.commands.get((code, APPLICATION_COMMON, request))
        return grammar

    def names(self) -> Iterable[str]:
        return self.by_name.keys()


def _default() -> Dictionary:
    from cx_codec.dictionary import base, cx, digest, doic

    return Dictionary().load(base, digest, doic, cx)


DEFAULT_DICTIONARY: Dictionary = _default()

__all__ = [
    "APPLICATION_COMMON",
    "APPLICATION_CX",
    "APPLICATION_RELAY",
    "AvpDef",
    "DEFAULT_DICTIONARY",
    "Dictionary",
    "VENDOR_3GPP",
]
