"""Building messages and AVPs from named, typed fields.

Field names are the AVP names of the grammar in snake_case (``user_name`` for
User-Name, ``sip_auth_data_item`` for SIP-Auth-Data-Item). AVPs are written in the
grammar's order, with flags from the dictionary (V for vendor AVPs, M where the spec
says MUST). Answers are built from their request as RFC 6733 §6.2 says.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import time
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache

from cx_codec.avp import AVP_HEADER, LAZY, VALIDATE, Avp, check_avp, pack_avp, parse_avps
from cx_codec.datatypes import DataType
from cx_codec.dictionary import APPLICATION_CX, DEFAULT_DICTIONARY, VENDOR_3GPP, AvpDef, Dictionary
from cx_codec.errors import DecodeError, EncodeError, ResultCode
from cx_codec.grammar import Grammar
from cx_codec.header import HEADER, HEADER_LENGTH, Flags
from cx_codec.message import Message, decode_lazy

FieldValue = object


def snake(name: str) -> str:
    """AVP name -> field name: SIP-Auth-Data-Item -> sip_auth_data_item."""
    return name.replace("-", "_").lower()


@lru_cache(maxsize=256)
def _fields(grammar: Grammar) -> dict[str, str]:
    return {snake(rule.name): rule.name for rule in grammar.members if not rule.is_wildcard}


def grammar_fields(grammar: Grammar) -> dict[str, str]:
    """The field names a grammar names (``user_name`` -> ``User-Name``), wildcards aside."""
    return _fields(grammar)


def avp(name: str, value: FieldValue, dictionary: Dictionary = DEFAULT_DICTIONARY, *, flags: int | None = None) -> Avp:
    """One AVP from its name and a typed value.

    Grouped values may be a list of Avps or a mapping of member fields
    (``{"vendor_id": 10415, "auth_application_id": 16777216}``).
    """
    definition = dictionary.avp(name)
    return _avp(definition, value, dictionary, flags)


def _avp(definition: AvpDef, value: FieldValue, dictionary: Dictionary, flags: int | None) -> Avp:
    if isinstance(value, Avp):
        if value.key != definition.key:
            raise EncodeError(f"{definition.name}: given an {value.name} AVP; build a {definition.name} instead")
        return value
    flags = definition.flags if flags is None else flags
    if definition.type is DataType.Grouped:
        if isinstance(value, Mapping):
            children = _members(definition.grammar, value, dictionary)  # type: ignore[arg-type]
        elif isinstance(value, Iterable) and not isinstance(value, (str, bytes)):
            children = list(value)
            if not all(isinstance(child, Avp) for child in children):
                raise EncodeError(f"{definition.name}: members must be Avp objects or a mapping")
        else:
            raise EncodeError(f"{definition.name} is Grouped: give a mapping of its members")
        data = b"".join(child.encode() for child in children)
        return Avp(definition.code, flags, definition.vendor, data, definition, None, dictionary, children)
    if definition.type is DataType.Enumerated and isinstance(value, str):
        value = _enum_value(definition, value)
    try:
        data = definition.encode(value)  # type: ignore[misc]
    except EncodeError as error:
        raise EncodeError(f"{definition.name}: {error}") from None
    return Avp(definition.code, flags, definition.vendor, data, definition, None, dictionary, None, value)


def _enum_value(definition: AvpDef, label: str) -> int:
    for number, name in (definition.enum or {}).items():
        if name == label:
            return number
    raise EncodeError(f"{definition.name}: no value named {label!r}; known: {sorted((definition.enum or {}).values())}")


def _members(grammar: Grammar, fields: Mapping[str, FieldValue], dictionary: Dictionary) -> list[Avp]:
    """AVPs for named fields, in grammar order; list values for repeated members."""
    names = _fields(grammar)
    built: list[tuple[int, int, Avp]] = []
    for sequence, (field, value) in enumerate(fields.items()):
        if value is None:
            continue
        if field == "extra":  # AVPs outside the grammar (the *[ AVP ] part)
            for extra in value:  # type: ignore[attr-defined]
                built.append((grammar.position(extra.key), sequence, extra))
            continue
        name = names.get(field)
        if name is None:
            raise EncodeError(f"{grammar.name} has no field {field!r}; fields: {sorted(names)}")
        definition = dictionary.avp(name)
        values = value if isinstance(value, list) else [value]
        for item in values:
            created = _avp(definition, item, dictionary, None)
            built.append((grammar.position(definition.key), sequence, created))
    built.sort(key=lambda entry: (entry[0], entry[1]))
    return [entry[2] for entry in built]


def grouped(name: str, dictionary: Dictionary = DEFAULT_DICTIONARY, **fields: FieldValue) -> Avp:
    """A Grouped AVP from member fields: ``grouped("Experimental-Result", vendor_id=10415, ...)``."""
    return avp(name, fields, dictionary)


def new_message(
    name: str,
    *,
    hop_by_hop: int = 0,
    end_to_end: int = 0,
    flags: int | None = None,
    dictionary: Dictionary = DEFAULT_DICTIONARY,
    **fields: FieldValue,
) -> Message:
    """A request or answer of the named command, AVPs in grammar order."""
    grammar = dictionary.command(name)
    if flags is None:
        flags = (Flags.REQUEST if grammar.request else 0) | (Flags.PROXIABLE if grammar.proxiable else 0)
    avps = _members(grammar, fields, dictionary)
    return Message(grammar.code, int(flags), grammar.application_id, hop_by_hop, end_to_end, avps, dictionary)


new_request = new_message

# RFC 6733 §6.2: AVPs an answer takes from its request when its grammar has them.
_CARRIED_FROM_REQUEST = ("Session-Id", "Vendor-Specific-Application-Id", "Auth-Session-State")


def answer_for(
    request: Message,
    *,
    origin_host: str,
    origin_realm: str,
    result_code: int | None = None,
    experimental_result: tuple[int, int] | None = None,
    **fields: FieldValue,
) -> Message:
    """The answer to ``request``: same command, application, hop-by-hop and end-to-end
    ids, P bit as in the request, Session-Id first, Proxy-Info copied in order
    (RFC 6733 §6.2 steps 1-4)."""
    dictionary = request.dictionary
    grammar = dictionary.grammar_for(request.command_code, request.application_id, False)
    if grammar is None:
        raise EncodeError(f"no answer grammar for command {request.command_code}, application {request.application_id}")
    names = _fields(grammar)
    carried: dict[str, FieldValue] = {}
    for name in _CARRIED_FROM_REQUEST:
        if snake(name) in names and snake(name) not in fields:
            found = request.find(name)
            if found is not None:
                carried[snake(name)] = found
    if "proxy_info" in names and "proxy_info" not in fields:
        proxy_info = request.find_all("Proxy-Info")
        if proxy_info:
            carried["proxy_info"] = proxy_info
    if experimental_result is not None:
        vendor_id, code = experimental_result
        carried["experimental_result"] = {"vendor_id": vendor_id, "experimental_result_code": code}
    carried.update(result_code=result_code, origin_host=origin_host, origin_realm=origin_realm)
    carried.update(fields)
    avps = _members(grammar, carried, dictionary)
    flags = request.flags & Flags.PROXIABLE
    return Message(
        request.command_code, flags, request.application_id, request.hop_by_hop, request.end_to_end, avps, dictionary
    )


def failed_avp(offending: bytes, dictionary: Dictionary = DEFAULT_DICTIONARY) -> Avp:
    """Failed-AVP (RFC 6733 §7.5) around the raw bytes of the offending AVP."""
    definition = dictionary.avp("Failed-AVP")
    data = offending + b"\0" * (-len(offending) % 4)
    return Avp(definition.code, definition.flags, definition.vendor, data, definition, None, dictionary)


_session_high = int(time.time()) & 0xFFFFFFFF
_session_low = itertools.count(int.from_bytes(os.urandom(3), "big"))


def new_session_id(origin_host: str, optional: str | None = None) -> str:
    """A Session-Id unique in time and space (RFC 6733 §8.8):
    ``<DiameterIdentity>;<high 32 bits>;<low 32 bits>[;<optional value>]``."""
    low = next(_session_low) & 0xFFFFFFFF
    session = f"{origin_host};{_session_high};{low}"
    return f"{session};{optional}" if optional else session


# RFC 6733 §6.2 and TS 29.229 §6.1: what an error answer carries over from its request
# where its grammar names it. User-Name and Public-Identity also go in through the
# grammar's *[ AVP ] (RFC 6733 §7.2 answer-message included): the S-CSCF reads the
# User-Name of an MAA before its Result-Code.
_ECHOED = ("Session-Id", "Vendor-Specific-Application-Id", "Auth-Session-State", "User-Name", "Public-Identity")
_ECHOED_THROUGH_WILDCARD = frozenset({"User-Name", "Public-Identity"})

# The vendor of an application, for a Vendor-Specific-Application-Id the request lacks
# (TS 29.229 §6.1: Cx is 3GPP's, 10415).
_APPLICATION_VENDOR = {APPLICATION_CX: VENDOR_3GPP}
NO_STATE_MAINTAINED = 1  # TS 29.229 §6.1: Cx sessions keep no state


def _own_session_id(request: Message, origin_host: str) -> FieldValue:
    return new_session_id(origin_host)


def _application_id(request: Message, origin_host: str) -> FieldValue:
    vendor = _APPLICATION_VENDOR.get(request.application_id, 0)
    return {"vendor_id": vendor, "auth_application_id": request.application_id}


# Required answer AVPs the request could not supply (absent, or not valid themselves):
# a Session-Id of our own (RFC 6733 §8.8 form), the application of the header, and
# NO_STATE_MAINTAINED.
_REQUIRED_DEFAULTS: dict[str, Callable[[Message, str], FieldValue]] = {
    "Session-Id": _own_session_id,
    "Vendor-Specific-Application-Id": _application_id,
    "Auth-Session-State": lambda request, origin_host: NO_STATE_MAINTAINED,
}


def _valid(avp: Avp | None, dictionary: Dictionary) -> Avp | None:
    """The AVP if it passes strict checks on its own (flags, value, members), else None:
    an answer echoes only what it can send validly."""
    if avp is None or avp.definition is None:
        return None
    raw = avp.encode()
    code, word = AVP_HEADER.unpack_from(raw)
    try:
        check_avp(code, word, avp.vendor, avp.definition, raw, 12 if word & 0x80000000 else 8,
                  word & 0xFFFFFF, dictionary, VALIDATE, 0)
    except DecodeError:
        return None
    return avp


def error_answer(
    request: Message,
    result_code: int,
    *,
    origin_host: str,
    origin_realm: str,
    error_message: str | None = None,
    failed: bytes | None = None,
    error_reporting_host: str | None = None,
) -> Message:
    """An error answer (RFC 6733 §7) that passes strict decoding, for any request.

    Protocol errors (3xxx, §7.1.3) set the E bit and use the answer-message of §7.2.
    Transient (4xxx) and permanent (5xxx) failures are answered without E in the
    command's own answer format (§7.1.4, §7.1.5; the §7.2 AVPs without E for a command
    the dictionary does not know). Session-Id, Vendor-Specific-Application-Id,
    Auth-Session-State, User-Name, Public-Identity and Proxy-Info are copied from the
    request where the answer grammar has them and they are valid; required ones the
    request cannot supply get defaults (``_REQUIRED_DEFAULTS``). Error-Message,
    Error-Reporting-Host and Failed-AVP go in where the grammar names them.
    """
    dictionary = request.dictionary
    protocol_error = 3000 <= result_code < 4000
    grammar = None if protocol_error else dictionary.grammar_for(request.command_code, request.application_id, False)
    target = grammar or _answer_message(dictionary)
    allowed = _fields(target)
    members: dict[str, FieldValue] = {}
    extra: list[Avp] = []
    for name in _ECHOED:
        field = snake(name)
        wildcard = name in _ECHOED_THROUGH_WILDCARD and target.any_avp
        if name not in dictionary.by_name or (field not in allowed and not wildcard):
            continue
        copied = _valid(request.find(name), dictionary)
        if copied is None:
            continue
        if field in allowed:
            members[field] = copied
        else:
            extra.append(copied)
    for rule in target.required:
        default = _REQUIRED_DEFAULTS.get(rule.name)
        if default is not None and snake(rule.name) not in members:
            members[snake(rule.name)] = default(request, origin_host)
    if "proxy_info" in allowed:  # RFC 6733 §6.2: Proxy-Info in the same order
        proxy_info = [avp for avp in request.find_all("Proxy-Info") if _valid(avp, dictionary) is not None]
        members["proxy_info"] = proxy_info or None
    members.update(origin_host=origin_host, origin_realm=origin_realm, result_code=result_code)
    optional = {
        "error_message": error_message,
        "error_reporting_host": error_reporting_host,
        "failed_avp": failed_avp(failed, dictionary) if failed is not None else None,
    }
    members.update((field, value) for field, value in optional.items() if value is not None and field in allowed)
    if extra:
        members["extra"] = extra
    avps = _members(target, members, dictionary)
    flags = (Flags.ERROR if protocol_error else 0) | (request.flags & Flags.PROXIABLE)
    return Message(
        request.command_code, int(flags), request.application_id, request.hop_by_hop, request.end_to_end, avps, dictionary
    )


def readable_request(data: bytes, dictionary: Dictionary = DEFAULT_DICTIONARY) -> Message:
    """A request as far as it can be read, to answer it: ``decode_lazy``, or else its
    header (zero-filled if cut short) with the top-level AVPs before the first one that
    does not fit (RFC 6733 §7: the answer echoes what it can, the Session-Id first)."""
    with contextlib.suppress(DecodeError):
        return decode_lazy(data, dictionary)
    data = bytes(data)
    header = data[:HEADER_LENGTH].ljust(HEADER_LENGTH, b"\0")
    word0, word1, application_id, hop_by_hop, end_to_end = HEADER.unpack(header)
    return Message(
        word1 & 0xFFFFFF, word1 >> 24, application_id, hop_by_hop, end_to_end,
        _leading_avps(data, dictionary), dictionary,
    )


def _leading_avps(data: bytes, dictionary: Dictionary) -> list[Avp]:
    """Top-level AVPs that fit (RFC 6733 §4.1 framing), up to the first that does not."""
    avps: list[Avp] = []
    end = len(data)
    offset = HEADER_LENGTH
    while end - offset >= 8:
        _, word = AVP_HEADER.unpack_from(data, offset)
        length = word & 0xFFFFFF
        if length < 8 + ((word >> 29) & 4) or offset + length > end:
            break
        padded = (length + 3) & -4
        chunk = data[offset : offset + padded].ljust(padded, b"\0")  # padding may be cut off
        avps.extend(parse_avps(chunk, 0, padded, dictionary, LAZY, 0))
        offset += padded
    return avps


def error_answer_bytes(
    request: bytes,
    result_code: int,
    *,
    origin_host: str,
    origin_realm: str,
    error_message: str | None = None,
    failed: bytes | None = None,
    error_reporting_host: str | None = None,
    dictionary: Dictionary = DEFAULT_DICTIONARY,
) -> bytes:
    """``error_answer`` to request bytes however broken (``readable_request``), encoded."""
    return error_answer(
        readable_request(request, dictionary),
        result_code,
        origin_host=origin_host,
        origin_realm=origin_realm,
        error_message=error_message,
        failed=failed,
        error_reporting_host=error_reporting_host,
    ).encode()


def _answer_message(dictionary: Dictionary) -> Grammar:
    return dictionary.command("Answer-Message")


def avp_bytes(name: str, value: FieldValue, dictionary: Dictionary = DEFAULT_DICTIONARY) -> bytes:
    """Encoded AVP bytes for a name and value (for byte-level rewriting)."""
    definition = dictionary.avp(name)
    if definition.encode is None:
        return avp(name, value, dictionary).encode()
    return pack_avp(definition.code, definition.flags, definition.vendor, definition.encode(value))


__all__ = [
    "ResultCode",
    "answer_for",
    "avp",
    "avp_bytes",
    "error_answer",
    "error_answer_bytes",
    "failed_avp",
    "grouped",
    "new_message",
    "new_request",
    "readable_request",
    "snake",
]
