"""Command Code Format (RFC 6733 §3.2) grammars as data, and validation against them.

Grammars are written as the CCF text of the specifications, so code and spec read side
by side::

    <Multimedia-Auth-Request> ::= < Diameter Header: 303, REQ, PXY, 16777216 >
                                  < Session-Id >
                                  { Origin-Host }
                                  *[ AVP ]

``parse_ccf`` turns the text into ``Grammar`` objects; names are resolved to
(code, vendor-id) keys by the dictionary once every AVP is known.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

INFINITY = None  # max of "*": no upper bound

_DEFINITION = re.compile(r"^\s*<\s*([A-Za-z0-9-]+)\s*>\s*::=\s*<\s*(Diameter|AVP)\s+Header\s*:\s*([^>]*)>", re.M)
_MEMBER = re.compile(r"(\d*)(\*?)(\d*)\s*([<{\[])\s*([A-Za-z0-9-]+)\s*([>}\]])")
_CLOSE = {"<": ">", "{": "}", "[": "]"}


@dataclass(frozen=True, slots=True)
class Rule:
    """One member of a grammar: ``[min]*[max] <fixed> | {required} | [optional]``."""

    name: str
    min: int
    max: int | None
    fixed: bool
    key: tuple[int, int] | None = None  # (code, vendor-id); None for the *[ AVP ] wildcard

    @property
    def is_wildcard(self) -> bool:
        return self.name == "AVP"


@dataclass(slots=True, eq=False)
class Grammar:
    """A command (``kind == "command"``) or Grouped AVP (``kind == "avp"``) grammar."""

    name: str
    kind: str
    code: int
    # commands: application-id; grouped AVPs: vendor-id
    application_id: int = 0
    vendor: int = 0
    request: bool = False
    proxiable: bool = False
    error: bool = False
    members: tuple[Rule, ...] = ()
    # filled by resolve():
    fixed: tuple[Rule, ...] = ()
    rules: dict[tuple[int, int], Rule] = field(default_factory=dict)
    required: tuple[Rule, ...] = ()
    any_avp: bool = False

    def resolve(self, keys: dict[str, tuple[int, int]]) -> None:
        """Bind member names to (code, vendor) keys; KeyError names an unknown AVP."""
        resolved = []
        for rule in self.members:
            if rule.is_wildcard:
                self.any_avp = True
                resolved.append(rule)
                continue
            try:
                key = keys[rule.name]
            except KeyError:
                raise KeyError(f"grammar {self.name}: no AVP named {rule.name!r} in the dictionary") from None
            resolved.append(Rule(rule.name, rule.min, rule.max, rule.fixed, key))
        self.members = tuple(resolved)
        # Fixed members at the head of the message (RFC 6733 §3.2 "fixed"): every
        # grammar of RFC 6733 and TS 29.229 puts them first (Session-Id).
        head = []
        for rule in self.members:
            if not rule.fixed:
                break
            head.append(rule)
        self.fixed = tuple(head)
        self.rules = {rule.key: rule for rule in self.members if rule.key is not None}
        self.required = tuple(rule for rule in self.members if rule.min > 0 and rule.key is not None)

    def position(self, key: tuple[int, int]) -> int:
        """Order of a member in the grammar, for encoding AVPs in CCF order."""
        for index, rule in enumerate(self.members):
            if rule.key == key:
                return index
        for index, rule in enumerate(self.members):
            if rule.is_wildcard:
                return index
        return len(self.members)


def _header(kind: str, text: str, name: str) -> dict[str, object]:
    parts = [part for part in re.split(r"[\s,]+", text.strip()) if part]
    if kind == "AVP":
        # < AVP Header: code [vendor] >
        return {"kind": "avp", "code": int(parts[0]), "vendor": int(parts[1]) if len(parts) > 1 else 0}
    flags = {part.upper() for part in parts[1:] if not part.isdigit()}
    unknown = flags - {"REQ", "PXY", "ERR"}
    if unknown:
        raise ValueError(f"grammar {name}: unknown header flags {sorted(unknown)}")
    numbers = [int(part) for part in parts[1:] if part.isdigit()]
    return {
        "kind": "command",
        "code": int(parts[0]),
        "application_id": numbers[0] if numbers else 0,
        "request": "REQ" in flags,
        "proxiable": "PXY" in flags,
        "error": "ERR" in flags,
    }


def parse_ccf(text: str) -> list[Grammar]:
    """Parse one or more CCF definitions (RFC 6733 §3.2)."""
    grammars = []
    starts = list(_DEFINITION.finditer(text))
    for index, match in enumerate(starts):
        name, kind, header_text = match.group(1), match.group(2), match.group(3)
        end = starts[index + 1].start() if index + 1 < len(starts) else len(text)
        body = text[match.end() : end]
        members = []
        for member in _MEMBER.finditer(body):
            low, star, high, opening, avp_name, closing = member.groups()
            if _CLOSE[opening] != closing:
                raise ValueError(f"grammar {name}: {member.group(0)!r} has mismatched brackets")
            default_min = 0 if opening == "[" else 1
            if star:
                minimum = int(low) if low else default_min
                maximum = int(high) if high else INFINITY
            else:
                minimum, maximum = default_min, 1
            members.append(Rule(avp_name, minimum, maximum, opening == "<"))
        leftover = _MEMBER.sub("", body).strip()
        if leftover:
            raise ValueError(f"grammar {name}: cannot parse {leftover[:40]!r}")
        grammars.append(Grammar(name=name, members=tuple(members), **_header(kind, header_text, name)))
    return grammars


__all__ = ["Grammar", "INFINITY", "Rule", "parse_ccf"]
