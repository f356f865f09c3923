"""Checking AVP lists against their CCF grammar (RFC 6733 §3.2, result codes §7.1.5).

- a fixed member missing from its place: 5005 if absent, 5008 if elsewhere;
- a required member missing: 5005 DIAMETER_MISSING_AVP, Failed-AVP holds an example of
  the missing AVP "of correct minimum length and contain zeroes" (RFC 6733 §7.5);
- a known AVP the grammar does not list, without ``*[ AVP ]``: 5008 DIAMETER_AVP_NOT_ALLOWED;
- more occurrences than the grammar's max: 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES,
  Failed-AVP holds the first one beyond the limit (RFC 6733 §7.1.5).

Members of Grouped AVPs are checked against their own grammar, recursively.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cx_codec.avp_header import pack_avp
from cx_codec.datatypes import MINIMUM_DATA
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.grammar import Grammar, Rule

if TYPE_CHECKING:
    from cx_codec.dictionary import Dictionary


def validate_avps(avps: Sequence[Any], grammar: Grammar, dictionary: Dictionary, *, recurse: bool = True) -> None:
    """Raise DecodeError if ``avps`` (cx_codec.avp.Avp) do not follow ``grammar``; ``recurse``
    into Grouped members."""
    index = 0
    for rule in grammar.fixed:
        if index < len(avps) and avps[index].key == rule.key:
            index += 1
            continue
        misplaced = next((avp for avp in avps if avp.key == rule.key), None)
        if misplaced is None and rule.min == 0:
            continue
        if misplaced is not None:
            raise DecodeError(
                ResultCode.DIAMETER_AVP_NOT_ALLOWED,
                f"{grammar.name}: {rule.name} must come at position {index + 1}",
                misplaced.encode(),
            )
        raise _missing(grammar, rule, dictionary)

    rules = grammar.rules
    any_avp = grammar.any_avp
    counts: dict[tuple[int, int], int] = {}
    for avp in avps:
        key = (avp.code, avp.vendor)
        rule = rules.get(key)
        if rule is None:
            if not any_avp and avp.definition is not None:
                raise DecodeError(
                    ResultCode.DIAMETER_AVP_NOT_ALLOWED,
                    f"{grammar.name} does not allow {avp.name}",
                    avp.encode(),
                )
        else:
            count = counts.get(key, 0) + 1
            counts[key] = count
            if rule.max is not None and count > rule.max:
                raise DecodeError(
                    ResultCode.DIAMETER_AVP_OCCURS_TOO_MANY_TIMES,
                    f"{grammar.name} allows {rule.name} at most {rule.max} time(s)",
                    avp.encode(),
                )
        definition = avp.definition
        if recurse and definition is not None and definition.grammar is not None and not definition.opaque:
            validate_avps(avp.children, definition.grammar, dictionary)
    for rule in grammar.required:
        if counts.get(rule.key, 0) < rule.min:  # type: ignore[arg-type]
            raise _missing(grammar, rule, dictionary)


def _missing(grammar: Grammar, rule: Rule, dictionary: Dictionary) -> DecodeError:
    definition = dictionary.avps[rule.key]  # type: ignore[index]
    example = pack_avp(definition.code, definition.flags, definition.vendor, MINIMUM_DATA.get(definition.type, b""))
    return DecodeError(
        ResultCode.DIAMETER_MISSING_AVP, f"{grammar.name} needs {rule.name}", example
    )
