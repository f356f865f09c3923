"""Where identities are translated: pure functions on message bytes (TR 23.781 solution 2,
steps 17-20), driven by tests without a reactor.

A translated request is rewritten in one walk of its top-level AVPs (cx_codec.rewrite):
User-Name and Public-Identity become the other system's identities, Destination-Realm and
Destination-Host name where it goes and, with topology hiding (on by default on the
inter-operator leg), Session-Id, Origin-Host and Origin-Realm become the gateway's own and
Route-Records are dropped, so that neither operator sees the other's internal host names.
What was replaced is kept in a ``Restore`` and put back on the answer, whoever generated
it (the other system, or this node's own 3002 for a request that got no answer).
Everything else passes byte for byte: RAND, AUTN, XRES, CK and IK of the
SIP-Auth-Data-Items, Proxy-Info, vendors' AVPs.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cx_codec.avp import pack_avp
from cx_codec.commands import new_session_id
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.message import strict_layout
from cx_codec.rewrite import rewrite, top_level
from cx_codec.splice import Entry, Splice
from gateway.applications.cx import (
    DESTINATION_HOST,
    DESTINATION_REALM,
    ORIGIN_HOST,
    ORIGIN_REALM,
    PUBLIC_IDENTITY,
    ROUTE_RECORD,
    SERVER_NAME,
    SESSION_ID,
    USER_NAME,
    VENDOR_3GPP,
    Local,
)

_U32 = struct.Struct(">I")
_REMOVE_ROUTE_RECORDS = frozenset({ROUTE_RECORD})
_SESSION = frozenset({SESSION_ID})
_DESTINATION_HOST = frozenset({DESTINATION_HOST})
FLAG_V, FLAG_M = 0x80, 0x40  # RFC 6733 §4.1


@dataclass(frozen=True, slots=True)
class Identities:
    """A private and a public identity (IMPI, IMPU)."""

    impi: str
    impu: str


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a translated request goes: a realm, and a host when one is named."""

    realm: str
    host: str | None = None


@dataclass(frozen=True, slots=True)
class Restore:
    """What the answer must carry again on the way back: the identities, the Session-Id
    and the End-to-End id the requester sent."""

    identities: Identities
    session_id: bytes | None  # None: the Session-Id was not replaced
    end_to_end: bytes | None = None  # None: the End-to-End id was not replaced


def translate_request(
    request: bytes, to: Identities, destination: Destination | None, local: Local, *, hide_topology: bool,
    end_to_end: int | None = None,
) -> bytes:
    """The request with ``to``'s identities, for ``destination`` (None: as it was);
    with topology hiding, from this node (Origin-Host/Realm, a Session-Id of ours, a
    Server-Name naming this node, no Route-Record) and with ``end_to_end``, an id of this
    node: RFC 6733 §3 makes an End-to-End id unique per Origin-Host only, and duplicate
    detection (§6.1.3) goes by the pair, so requests of several S-CSCFs sent on under one
    Origin-Host need ids of that host's."""
    values: dict[tuple[int, int], bytes] = {USER_NAME: to.impi.encode(), PUBLIC_IDENTITY: to.impu.encode()}
    absent: dict[tuple[int, int], bytes] = {}
    remove: frozenset[tuple[int, int]] = frozenset()
    if destination is not None:
        values[DESTINATION_REALM] = destination.realm.encode()
        if destination.host is not None:
            host = values[DESTINATION_HOST] = destination.host.encode()
            absent[DESTINATION_HOST] = pack_avp(293, FLAG_M, 0, host)  # RFC 6733 §6.5
        else:
            remove = _DESTINATION_HOST
    if hide_topology:
        values[SESSION_ID] = new_session_id(local.host).encode()
        values[ORIGIN_HOST] = local.host.encode()
        values[ORIGIN_REALM] = local.realm.encode()
        values[SERVER_NAME] = f"sip:{local.host}".encode()
        remove = remove | _REMOVE_ROUTE_RECORDS
    translated = rewrite(request, values, optional=(SERVER_NAME, PUBLIC_IDENTITY), absent=absent, remove=remove)
    if end_to_end is not None:
        translated = translated[:16] + _U32.pack(end_to_end) + translated[20:]
    return translated


def restore_of(request: bytes, original: Identities, hide_topology: bool) -> Restore:
    """What to put back on the answer of ``request`` (before it was translated)."""
    if not hide_topology:
        return Restore(original, None)
    session_id = top_level(request, _SESSION, complete=False).get(SESSION_ID, [None])[0]
    return Restore(original, session_id, request[16:20])


class InvalidAnswer(Exception):
    """The answer from the other side fails strict decoding (RFC 6733 §7): what this node
    would send back as its own answer must pass it, so the requester gets 5012 instead."""

    def __init__(self, error: DecodeError) -> None:
        super().__init__(f"{error.result_code} {error.reason}")
        self.error = error


FLAG_E = 0x20  # RFC 6733 §3: the E bit of the command flags


class AnswerLayout:
    """What an answer's strict layout (the codec's template entries, kept: ``is``) tells
    once: where its Result-Code's data starts (None: it has none) and its top-level AVPs as
    ``cx_codec.splice.Entry``."""

    __slots__ = ("entries", "result_code_at", "layout")

    def __init__(self, entries: tuple[Any, ...]) -> None:
        self.entries = entries
        self.result_code_at = next((offset + 8 for offset, _, _, code, word, vendor, *_ in entries  # no V bit
                                    if code == 268 and vendor == 0 and not word & 0x80000000), None)
        self.layout = splice_layout(entries)


def splice_layout(entries: tuple[Any, ...]) -> tuple[Entry, ...]:
    """A strict layout's entries (the codec's ``avp.TemplateEntry``) as ``cx_codec.splice``
    takes them: (offset, code, vendor, header word) per top-level AVP."""
    return tuple((entry[0], entry[3], entry[5], entry[4]) for entry in entries)


_ANSWER_LAYOUTS: dict[int, AnswerLayout] = {}  # id(entries) -> the AnswerLayout (entries kept in it)


def check_answer(answer: bytes) -> AnswerLayout:
    """InvalidAnswer unless ``answer`` passes strict decoding (the codec's verdict, from the
    layouts it validated before: ``cx_codec.message.strict_layout``) and has the E bit if
    and only if its Result-Code is a protocol error, 3xxx (RFC 6733 §7.1, §7.2); its layout."""
    try:
        entries = strict_layout(answer)
    except DecodeError as error:
        raise InvalidAnswer(error) from None
    known = _ANSWER_LAYOUTS.get(id(entries))
    if known is None or known.entries is not entries:
        if len(_ANSWER_LAYOUTS) >= 4096:
            _ANSWER_LAYOUTS.clear()
        known = _ANSWER_LAYOUTS[id(entries)] = AnswerLayout(entries)
    at = known.result_code_at
    protocol_error = at is not None and 3000 <= int.from_bytes(answer[at : at + 4], "big") < 4000
    if protocol_error != bool(answer[4] & FLAG_E):
        raise InvalidAnswer(DecodeError(ResultCode.DIAMETER_INVALID_HDR_BITS, "the E bit contradicts the Result-Code"))
    return known


def translate_answer(answer: bytes, restore: Restore, local: Local, *, hide_topology: bool) -> bytes:
    """The answer with the requester's identities (added where the answer lacked them:
    Kamailio reads User-Name before the result, docs/interop.md) and Session-Id; with
    topology hiding, from this node. SIP-Auth-Data-Items and results untouched.
    InvalidAnswer when ``answer`` fails strict decoding (``check_answer``)."""
    check_answer(answer)
    who = restore.identities
    impi, impu = who.impi.encode(), who.impu.encode()
    values: dict[tuple[int, int], bytes] = {USER_NAME: impi, PUBLIC_IDENTITY: impu}
    absent = {  # flags as TS 29.229 §6.3 and RFC 6733 §8.14 give them
        USER_NAME: pack_avp(1, FLAG_M, 0, impi),
        PUBLIC_IDENTITY: pack_avp(601, FLAG_V | FLAG_M, VENDOR_3GPP, impu),
    }
    remove: frozenset[tuple[int, int]] = frozenset()
    if restore.session_id is not None:
        values[SESSION_ID] = restore.session_id
    if hide_topology:
        values[ORIGIN_HOST] = local.host.encode()
        values[ORIGIN_REALM] = local.realm.encode()
        remove = _REMOVE_ROUTE_RECORDS
    translated = rewrite(answer, values, optional=(SESSION_ID, ORIGIN_HOST, ORIGIN_REALM), absent=absent, remove=remove)
    if restore.end_to_end is not None:  # RFC 6733 §6.2: the answer carries the request's id
        translated = translated[:16] + restore.end_to_end + translated[20:]
    return translated


# -- the same, compiled per layout (gateway.applications.fastpath) --------------------------
_REQUEST_CONSTANTS = (ORIGIN_HOST, ORIGIN_REALM, SERVER_NAME)
_REQUEST_OPTIONAL = (SERVER_NAME, PUBLIC_IDENTITY)
_ANSWER_OPTIONAL = (SESSION_ID, ORIGIN_HOST, ORIGIN_REALM)
_ANSWER_ABSENT = {USER_NAME: FLAG_M, PUBLIC_IDENTITY: FLAG_V | FLAG_M}  # as translate_answer packs them


class RequestTranslator:
    """``translate_request`` for requests of a layout seen before (``cx_codec.splice``):
    the same bytes, made from slices of the request, one Splice per (layout, whether a
    Destination-Host is named). ``layout``: the request's top-level AVPs as
    ``cx_codec.splice.Entry``, e.g. from the codec's validated template."""

    def __init__(self, local: Local, hide_topology: bool) -> None:
        self.local, self.hide_topology = local, hide_topology
        self._constants = {ORIGIN_HOST: local.host.encode(), ORIGIN_REALM: local.realm.encode(),
                           SERVER_NAME: f"sip:{local.host}".encode()} if hide_topology else {}
        self._splices: dict[tuple[int, bool], tuple[object, Splice | None]] = {}

    def splice(self, layout: Sequence[Entry], with_host: bool) -> Splice | None:
        """None: ``translate_request`` would raise (a key it needs is missing)."""
        key = (id(layout), with_host)
        known = self._splices.get(key)
        if known is not None and known[0] is layout:
            return known[1]
        keys = [USER_NAME, PUBLIC_IDENTITY, DESTINATION_REALM] + ([DESTINATION_HOST] if with_host else [])
        remove = set() if with_host else {DESTINATION_HOST}
        if self.hide_topology:
            keys += [SESSION_ID, *_REQUEST_CONSTANTS]
            remove.add(ROUTE_RECORD)
        try:
            splice: Splice | None = Splice(layout, keys, constants=self._constants, optional=_REQUEST_OPTIONAL,
                                           absent={DESTINATION_HOST: FLAG_M}, remove=remove)
        except DecodeError:
            splice = None
        if len(self._splices) >= 1024:
            self._splices.clear()
        self._splices[key] = (layout, splice)
        return splice

    def translate(self, request: bytes, splice: Splice, to: Identities, destination: Destination,
                  hop_by_hop: bytes, end_to_end: int | None) -> bytes:
        """translate_request(request, to, destination, ...) with ``hop_by_hop`` in it."""
        return self.translate_to(request, splice, to.impi, to.impu, destination.realm, destination.host,
                                 hop_by_hop, end_to_end)

    def translate_to(self, request: bytes, splice: Splice, impi: str, impu: str, realm: str, host: str | None,
                     hop_by_hop: bytes, end_to_end: int | None) -> bytes:
        """``translate`` with the identities and the destination as strings (no objects made
        per request on the fast path)."""
        values = (impi.encode(), impu.encode(), realm.encode()) + (() if host is None else (host.encode(),))
        return self.translate_values(request, splice, values, hop_by_hop, end_to_end)

    def translate_values(self, request: bytes, splice: Splice, values: tuple[bytes, ...], hop_by_hop: bytes,
                         end_to_end: int | None) -> bytes:
        """``translate_to`` with the identities and the destination as UTF-8 bytes, in its
        order (IMPI, IMPU, realm[, host]: ``caches.ActiveBinding.values``); with topology
        hiding, a Session-Id of this node's is added here."""
        if self.hide_topology:
            values = (*values, new_session_id(self.local.host).encode())
        return splice.apply(request, values, hop_by_hop, None if end_to_end is None else _U32.pack(end_to_end))


class AnswerTranslator:
    """``translate_answer`` for answers of a layout seen before: one Splice per strict
    layout (``check_answer``'s: the answer's top-level AVPs, validated) and whether the
    Session-Id is put back."""

    def __init__(self, local: Local, hide_topology: bool) -> None:
        self.local, self.hide_topology = local, hide_topology
        self._constants = {ORIGIN_HOST: local.host.encode(), ORIGIN_REALM: local.realm.encode()} if hide_topology else {}
        # without, with the Session-Id put back: id(AnswerLayout) -> (it, its Splice)
        self._splices: tuple[dict[int, tuple[AnswerLayout, Splice]], ...] = ({}, {})

    def translate(self, answer: bytes, restore: Restore, hop_by_hop: bytes | None = None) -> bytes:
        """translate_answer(answer, restore, ...) with ``hop_by_hop`` in it; DecodeError as it raises."""
        return self.translate_with(answer, self.values(restore), restore.end_to_end, hop_by_hop)

    @staticmethod
    def values(restore: Restore) -> list[bytes]:
        """What ``translate_with`` puts back: the IMPI and IMPU, and the Session-Id when replaced."""
        who = restore.identities
        values = [who.impi.encode(), who.impu.encode()]
        if restore.session_id is not None:
            values.append(restore.session_id)
        return values

    def translate_with(self, answer: bytes, values: list[bytes], end_to_end: bytes | None,
                       hop_by_hop: bytes | None = None) -> bytes:
        """``translate`` with what the Restore holds as bytes (``values``: the requester's
        IMPI and IMPU as it sent them, and its Session-Id when it was replaced), and the
        End-to-End id to put back (None: as it is). InvalidAnswer as ``translate_answer``."""
        layout = check_answer(answer)
        with_session = len(values) == 3
        splices = self._splices[with_session]
        known = splices.get(id(layout))
        if known is None or known[0] is not layout:
            keys = [USER_NAME, PUBLIC_IDENTITY] + ([SESSION_ID] if with_session else [])
            if self.hide_topology:
                keys += [ORIGIN_HOST, ORIGIN_REALM]
            splice = Splice(layout.layout, keys, constants=self._constants, optional=_ANSWER_OPTIONAL,
                            absent=_ANSWER_ABSENT, remove=_REMOVE_ROUTE_RECORDS if self.hide_topology else ())
            if len(splices) >= 1024:
                splices.clear()
            known = splices[id(layout)] = (layout, splice)
        return known[1].apply(answer, values, hop_by_hop, end_to_end)
