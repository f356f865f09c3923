"""Cx (TS 29.228, TS 29.229) as the applications use it: codes, what they read from a
request, and the answers they build. No I/O, no store: tests drive it without a reactor.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from cx_codec import Message, answer_for
from cx_codec.avp import pack_avp
from cx_codec.build import grammar_fields
from cx_codec.rewrite import AvpKey, top_level
from hss_store.aka import AkaVector

CX = 16777216  # TS 29.229 §6.1: the Cx application
VENDOR_3GPP = 10415

# AVP keys (code, vendor) the translation touches on the wire
SESSION_ID = (263, 0)
USER_NAME = (1, 0)
ORIGIN_HOST = (264, 0)
ORIGIN_REALM = (296, 0)
DESTINATION_HOST = (293, 0)
DESTINATION_REALM = (283, 0)
ROUTE_RECORD = (282, 0)
PUBLIC_IDENTITY = (601, VENDOR_3GPP)
SERVER_NAME = (602, VENDOR_3GPP)


class Command(IntEnum):
    """TS 29.229 §6.1 command codes."""

    UAR = 300
    SAR = 301
    LIR = 302
    MAR = 303
    RTR = 304
    PPR = 305


class CxResult(IntEnum):
    """Experimental-Result-Code values of TS 29.229 §6.2 (vendor 10415): not the base
    protocol's Result-Code, whose numbers mean other things."""

    FIRST_REGISTRATION = 2001
    SUBSEQUENT_REGISTRATION = 2002
    UNREGISTERED_SERVICE = 2003
    SUCCESS_SERVER_NAME_NOT_STORED = 2004
    ERROR_USER_UNKNOWN = 5001
    ERROR_IDENTITIES_DONT_MATCH = 5002
    ERROR_IDENTITY_NOT_REGISTERED = 5003
    ERROR_ROAMING_NOT_ALLOWED = 5004
    ERROR_IDENTITY_ALREADY_REGISTERED = 5005
    ERROR_AUTH_SCHEME_NOT_SUPPORTED = 5006
    ERROR_IN_ASSIGNMENT_TYPE = 5007
    ERROR_TOO_MUCH_DATA = 5008
    ERROR_NOT_SUPPORTED_USER_DATA = 5009
    ERROR_FEATURE_UNSUPPORTED = 5011


# TS 29.229 §6.3.9: schemes whose credentials bind the user name (HA1 = MD5(user:realm:
# password)): they cannot survive a translation of the user name, unlike IMS-AKA, whose
# RAND, AUTN, XRES, CK and IK depend on K and SQN only.
DIGEST_SCHEMES = frozenset(
    scheme.casefold()
    for scheme in ("SIP Digest", "Digest-MD5", "Digest", "HTTP_DIGEST_MD5", "NASS-Bundled", "Early-IMS-Security", "Early-IMS")
)
UNKNOWN_SCHEME = "Unknown"  # TS 29.229 §6.3.9: the HSS picks the subscriber's scheme


def is_digest(scheme: str) -> bool:
    return scheme.casefold() in DIGEST_SCHEMES


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """What a MAR asks (TS 29.229 §6.1.7, TS 29.228 §6.3.1)."""

    impi: str
    impu: str
    scheme: str
    count: int
    rand_auts: bytes | None  # SIP-Authorization of a re-synchronisation: RAND || AUTS
    server_name: str


def auth_request(message: Message) -> AuthRequest:
    """The fields of a strictly decoded MAR (its grammar guarantees each one is there)."""
    item = message.find("SIP-Auth-Data-Item")
    scheme = str(item.get("SIP-Authentication-Scheme", UNKNOWN_SCHEME)) if item is not None else UNKNOWN_SCHEME
    authorization = item.get("SIP-Authorization") if item is not None else None
    return AuthRequest(
        impi=str(message["User-Name"]),
        impu=str(message["Public-Identity"]),
        scheme=scheme,
        count=int(message.get("SIP-Number-Auth-Items", 1)),  # type: ignore[call-overload]
        rand_auts=bytes(authorization) if authorization else None,  # type: ignore[arg-type]
        server_name=str(message.get("Server-Name", "")),
    )


def identities(message: Message) -> tuple[str | None, list[str]]:
    """User-Name and the Public-Identity values of a request (SAR may carry several)."""
    user = message.get("User-Name")
    return (str(user) if user is not None else None), [str(avp.value) for avp in message.find_all("Public-Identity")]


# -- answers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Local:
    """Who answers: the Origin-Host and Origin-Realm of this node."""

    host: str
    realm: str


def multimedia_auth_answer(
    request: Message | bytes, local: Local, impi: str, impu: str, scheme: str, vectors: Sequence[AkaVector],
    copied: Mapping[AvpKey, list[bytes]] | None = None,
) -> bytes:
    """MAA 2001 with one SIP-Auth-Data-Item per vector (TS 29.229 §6.3.13: RAND || AUTN in
    SIP-Authenticate, XRES in SIP-Authorization, CK and IK), echoing the identities the
    S-CSCF stores them under, in the order of the §6.1.8 grammar. Packed directly: this
    answer is made for every registration, and the general builder costs ten times more
    (tests decode it strictly). ``copied``: the request's ``MAA_COPIED`` AVPs where the
    caller has them (``fastpath.MarLayout.copied``), else they are looked up here."""
    raw = request.encode() if isinstance(request, Message) else request  # (bytes: a request decode() accepts)
    if copied is None:
        copied = top_level(raw, MAA_COPIED)
    scheme_avp = _SCHEME_AVPS.get(scheme)
    if scheme_avp is None:
        scheme_avp = _vendor_avp(608, scheme.encode())
        if len(_SCHEME_AVPS) < 64:
            _SCHEME_AVPS[scheme] = scheme_avp
    known = _ORIGINS.get(id(local))
    if known is None or known[0] is not local:  # Origin-Host, Origin-Realm (RFC 6733 §6.3), once per Local
        if len(_ORIGINS) >= 64:
            _ORIGINS.clear()
        known = _ORIGINS[id(local)] = (local, pack_avp(264, FLAG_M, 0, local.host.encode())
                                       + pack_avp(296, FLAG_M, 0, local.realm.encode()))
    origin = known[1]
    items = b"".join(
        _vendor_avp(612, b"".join((
            _ITEM_NUMBER_HEAD, _U32.pack(vector.sip_item_number),
            scheme_avp,
            _AUTHENTICATE_HEAD, vector.rand, vector.autn,
            _XRES_HEAD_8 + vector.xres if len(vector.xres) == 8 else _vendor_avp(610, vector.xres),  # (4 to 16 octets)
            _CK_HEAD, vector.ck,
            _IK_HEAD, vector.ik,
        )))
        for vector in vectors
    )
    body = b"".join((
        pack_avp(263, FLAG_M, 0, copied[SESSION_ID][0]),
        *(pack_avp(260, FLAG_M, 0, data) for data in copied.get(_VSAI, ())),
        _RESULT_2001,
        *(pack_avp(277, FLAG_M, 0, data) for data in copied.get(_AUTH_SESSION_STATE, ())),
        origin,
        pack_avp(1, FLAG_M, 0, impi.encode()),
        _vendor_avp(601, impu.encode()),
        _ITEMS_AVPS[len(vectors)] if len(vectors) < len(_ITEMS_AVPS) else _vendor_avp(607, _U32.pack(len(vectors))),
        items,
        *(pack_avp(284, FLAG_M, 0, data) for data in copied.get(_PROXY_INFO, ())),
    ))
    flags = raw[4] & FLAG_M  # RFC 6733 §6.2: the P bit as in the request; R clear
    return _HEADER.pack(0x01000000 | (20 + len(body)), flags << 24 | Command.MAR) + raw[8:20] + body


def _vendor_avp(code: int, data: bytes) -> bytes:
    """A 3GPP AVP with V and M set (TS 29.229 table 6.3.1)."""
    return pack_avp(code, FLAG_V | FLAG_M, VENDOR_3GPP, data)


FLAG_V, FLAG_M = 0x80, 0x40  # RFC 6733 §4.1 (as header flags, the 0x40 of a command is P)
_VSAI, _AUTH_SESSION_STATE, _PROXY_INFO = (260, 0), (277, 0), (284, 0)
# the request's AVPs an MAA carries (TS 29.229 §6.1.8: Session-Id, Vendor-Specific-Application-Id,
# Auth-Session-State; RFC 6733 §6.7.2: Proxy-Info)
MAA_COPIED = frozenset({SESSION_ID, _VSAI, _AUTH_SESSION_STATE, _PROXY_INFO})
_HEADER = struct.Struct(">II")  # version | length, flags | command code
_U32 = struct.Struct(">I")
_RESULT_2001 = pack_avp(268, FLAG_M, 0, _U32.pack(2001))
# the headers of a SIP-Auth-Data-Item's fixed-size members (TS 29.229 §6.3.13-§6.3.19; TS
# 33.203: RAND 16 + AUTN 16, CK 16, IK 16 octets), packed once
_ITEM_NUMBER_HEAD = _vendor_avp(613, bytes(4))[:12]
_AUTHENTICATE_HEAD = _vendor_avp(609, bytes(32))[:12]
_CK_HEAD = _vendor_avp(625, bytes(16))[:12]
_IK_HEAD = _vendor_avp(626, bytes(16))[:12]
_XRES_HEAD_8 = _vendor_avp(610, bytes(8))[:12]  # XRES of 8 octets, the usual f2 (no padding)
_ITEMS_AVPS = tuple(_vendor_avp(607, _U32.pack(n)) for n in range(17))  # SIP-Number-Auth-Items, by count
_SCHEME_AVPS: dict[str, bytes] = {}  # SIP-Authentication-Scheme AVP by scheme
_ORIGINS: dict[int, tuple[Local, bytes]] = {}  # id(Local) -> it, its Origin-Host and Origin-Realm AVPs


def experimental_answer(request: Message, local: Local, code: int, message: str | None = None) -> bytes:
    """An answer with Experimental-Result (vendor 10415), echoing User-Name and
    Public-Identity where the answer grammar has them: Kamailio reads User-Name before
    the result (docs/interop.md)."""
    fields: dict[str, object] = {}
    user, impus = identities(request)
    grammar_fields = _answer_fields(request)
    if user is not None and "user_name" in grammar_fields:
        fields["user_name"] = user
    if impus and "public_identity" in grammar_fields:
        fields["public_identity"] = impus[0]
    if message and "error_message" in grammar_fields:
        fields["error_message"] = message[:200]
    return answer_for(
        request, origin_host=local.host, origin_realm=local.realm,
        experimental_result=(VENDOR_3GPP, int(code)), **fields,
    ).encode()


def _answer_fields(request: Message) -> frozenset[str]:
    grammar = request.dictionary.grammar_for(request.command_code, request.application_id, False)
    return frozenset(grammar_fields(grammar)) if grammar is not None else frozenset()


def server_assignment_answer(request: Message, local: Local, impi: str, impus: Sequence[str], with_profile: bool) -> bytes:
    """SAA 2001 (TS 29.229 §6.1.4) with an IMS user profile in User-Data where the
    assignment asks for one (TS 29.228 §6.1.2: registration types without
    USER_DATA_ALREADY_AVAILABLE)."""
    fields: dict[str, object] = {"user_name": impi}
    if with_profile:
        fields["user_data"] = ims_subscription(impi, impus)
    return answer_for(request, origin_host=local.host, origin_realm=local.realm, result_code=2001, **fields).encode()


def user_authorization_answer(request: Message, local: Local, code: int, server_name: str | None) -> bytes:
    """UAA (TS 29.229 §6.1.2) with Experimental-Result FIRST/SUBSEQUENT_REGISTRATION and
    the S-CSCF's name where one is assigned."""
    fields: dict[str, object] = {}
    if server_name:
        fields["server_name"] = server_name
    return answer_for(
        request, origin_host=local.host, origin_realm=local.realm,
        experimental_result=(VENDOR_3GPP, int(code)), **fields,
    ).encode()


def location_info_answer(request: Message, local: Local, server_name: str | None) -> bytes:
    """LIA (TS 29.229 §6.1.6): the S-CSCF serving the user, or 5003 when none is."""
    if not server_name:
        return experimental_answer(request, local, CxResult.ERROR_IDENTITY_NOT_REGISTERED)
    return answer_for(
        request, origin_host=local.host, origin_realm=local.realm, result_code=2001, server_name=server_name
    ).encode()


def ims_subscription(impi: str, impus: Sequence[str]) -> bytes:
    """A minimal IMS user profile (TS 29.228 Annex E, the CxDataType schema): the private
    identity and one service profile with every public identity, barring off."""
    public = "".join(
        f"<PublicIdentity><BarringIndication>0</BarringIndication><Identity>{_xml(impu)}</Identity></PublicIdentity>"
        for impu in impus
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><IMSSubscription>'
        f"<PrivateID>{_xml(impi)}</PrivateID><ServiceProfile>{public}</ServiceProfile>"
        "</IMSSubscription>"
    ).encode()


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
