"""The records the store hands out: subscribers, migration bindings, agreements.

Plain frozen dataclasses; the secrets (K, OPc) stay out of ``repr`` so that a record
printed in a log line does not leak them.
"""

from __future__ import annotations

import enum
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from hss_store import sqn as sqnmod
from hss_store.aka import AkaVector
from hss_store.errors import InvalidKey, InvalidRequest
from hss_store.identities import validate_impi, validate_impu, validate_realm
from hss_store.milenage import compute_opc

# SIP-Authentication-Scheme values (TS 29.229 §6.3.9, TS 33.203 §6.1).
SCHEME_AKA_V1 = "Digest-AKAv1-MD5"
SCHEME_AKA_V2 = "Digest-AKAv2-SHA-256"
KNOWN_SCHEMES = (SCHEME_AKA_V1, SCHEME_AKA_V2, "SIP Digest", "Digest-MD5", "NASS-Bundled", "Early-IMS-Security")
# Schemes whose credentials are AKA vectors (TS 33.203 §6.1; AKAv2 derives its password from
# the same RES, CK and IK, RFC 4169): the only ones this HSS can answer a MAR for.
AKA_SCHEMES = (SCHEME_AKA_V1, SCHEME_AKA_V2)
# TS 29.229 §6.3.9: "Unknown" in a MAR asks the HSS to choose the scheme.
SCHEME_UNKNOWN = "Unknown"
DEFAULT_SCHEMES = (SCHEME_AKA_V1,)
DEFAULT_AMF = b"\x80\x00"  # TS 33.102 Annex H: separation bit 0 set for E-UTRAN; 8000 is customary


def _key(name: str, value: bytes | str | None, length: int) -> bytes:
    if isinstance(value, str):
        digits = value.strip()
        if digits and all(c in string.hexdigits for c in digits) and len(digits) != length * 2:
            # a length error is the likelier mistake (a digit dropped, the wrong field pasted)
            raise InvalidKey(
                f"{name} must be {length} bytes ({length * 2} hex digits); {value!r} has {len(digits)} hex digits"
            )
        try:
            value = bytes.fromhex(digits)
        except ValueError:
            raise InvalidKey(f"{name} {value!r} is not hexadecimal; give {length * 2} hex digits") from None
    if not isinstance(value, bytes | bytearray) or len(value) != length:
        size = len(value) if isinstance(value, bytes | bytearray) else "none"
        raise InvalidKey(f"{name} must be {length} bytes ({length * 2} hex digits), got {size}")
    return bytes(value)


def _token(kind: str, value: str) -> str:
    if not isinstance(value, str) or not value or any(c.isspace() or c == "," for c in value):
        raise InvalidRequest(f"{kind} {value!r} must be a non-empty name without spaces or commas")
    return value


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A subscriber of the primary SIP database (the HSS role)."""

    impi: str
    impus: tuple[str, ...]  # the implicit registration set, first one is the default
    k: bytes = field(repr=False)
    opc: bytes = field(repr=False)
    amf: bytes = DEFAULT_AMF
    sqn: int = 0  # last SQN issued (TS 33.102 Annex C: SEQ || IND)
    schemes: tuple[str, ...] = DEFAULT_SCHEMES
    scscf_name: str | None = None
    groups: tuple[str, ...] = ()

    @classmethod
    def new(
        cls,
        impi: str,
        impus: Iterable[str],
        k: bytes | str,
        *,
        opc: bytes | str | None = None,
        op: bytes | str | None = None,
        amf: bytes | str = DEFAULT_AMF,
        sqn: int = 0,
        schemes: Iterable[str] = DEFAULT_SCHEMES,
        groups: Iterable[str] = (),
    ) -> Subscriber:
        """A validated subscriber; OPc is derived from OP when only OP is given (TS 35.206 §4.1)."""
        validate_impi(impi)
        impus = tuple(dict.fromkeys(validate_impu(u) for u in impus))
        if not impus:
            raise InvalidRequest(f"subscriber {impi!r} needs at least one IMPU (its implicit registration set)")
        k = _key("K", k, 16)
        if (opc is None) == (op is None):
            raise InvalidKey(f"subscriber {impi!r}: give exactly one of OPc or OP (16 bytes each)")
        opc = _key("OPc", opc, 16) if opc is not None else compute_opc(k, _key("OP", op, 16))
        schemes = tuple(dict.fromkeys(_scheme(s) for s in schemes))
        if not schemes:
            raise InvalidRequest(f"subscriber {impi!r} needs at least one authentication scheme")
        return cls(
            impi=impi,
            impus=impus,
            k=k,
            opc=opc,
            amf=_key("AMF", amf, 2),
            sqn=sqnmod.check_sqn(sqn),
            schemes=schemes,
            groups=tuple(dict.fromkeys(_token("group", g) for g in groups)),
        )

    def allows_scheme(self, scheme: str) -> bool:
        return scheme.casefold() in (s.casefold() for s in self.schemes)

    def has_impu(self, impu: str) -> bool:
        return impu in self.impus


def _scheme(scheme: str) -> str:
    if not isinstance(scheme, str) or not scheme.strip() or "," in scheme:
        raise InvalidRequest(f"authentication scheme {scheme!r} is empty or contains a comma")
    for known in KNOWN_SCHEMES:
        if known.casefold() == scheme.casefold():
            return known
    return scheme


@dataclass(frozen=True, slots=True)
class PrimaryDatabase:
    """The identifier of a primary SIP database: Diameter realm and optional host (TR 23.781)."""

    realm: str
    host: str | None = None

    def __post_init__(self) -> None:
        validate_realm(self.realm)
        if self.host is not None:
            validate_realm(self.host)

    def __str__(self) -> str:
        return f"{self.host}@{self.realm}" if self.host else self.realm


@dataclass(frozen=True, slots=True)
class InboundBinding:
    """Partner side (TR 23.781 steps 9-11): inbound identity -> the user's primary identities."""

    inbound_impi: str
    inbound_impu: str
    primary: PrimaryDatabase
    primary_impi: str
    primary_impu: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None

    @property
    def primary_realm(self) -> str:
        return self.primary.realm

    @property
    def primary_host(self) -> str | None:
        return self.primary.host

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class OutboundBinding:
    """Primary side (TR 23.781 steps 4-6): outbound identity -> real identity, per partner."""

    outbound_impi: str
    outbound_impu: str
    real_impi: str
    real_impu: str
    partner_id: str
    created_at: int
    expires_at: int | None = None
    revoked_at: int | None = None

    def is_active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


AGREEMENT_SCOPES = ("all", "user", "group")


@dataclass(frozen=True, slots=True)
class Agreement:
    """Partner ``partner_id`` may migrate: every user, one user (IMPI) or one group."""

    partner_id: str
    scope: str  # one of AGREEMENT_SCOPES
    value: str = ""  # the IMPI for "user", the group name for "group", "" for "all"

    def __post_init__(self) -> None:
        _token("partner id", self.partner_id)
        if self.scope not in AGREEMENT_SCOPES:
            raise InvalidRequest(f"agreement scope {self.scope!r} is unknown; use one of {', '.join(AGREEMENT_SCOPES)}")
        if self.scope == "all" and self.value:
            raise InvalidRequest("an agreement for all users takes no value")
        if self.scope == "user":
            validate_impi(self.value)
        if self.scope == "group":
            _token("group", self.value)

    def covers(self, impi: str, groups: Iterable[str]) -> bool:
        if self.scope == "all":
            return True
        if self.scope == "user":
            return self.value == impi
        return self.value in tuple(groups)


def check_partner_id(partner_id: str) -> str:
    return _token("partner id", partner_id)


class AuthResult(NamedTuple):
    """The HSS side of a Multimedia-Auth-Answer (TS 29.228 §6.3.1, TS 29.229 §6.1.8).

    A NamedTuple because it is built once per MAR on the hot path.
    """

    scheme: str  # the SIP-Authentication-Scheme used, as provisioned ("Unknown" resolved)
    vectors: list[AkaVector]  # SIP-Auth-Data-Items, numbered 1.. (SQNs committed already)
    impi: str
    impu: str  # the Public-Identity of the MAR, or the subscriber's default IMPU if it had none


class ServerAssignmentType(enum.IntEnum):
    """Server-Assignment-Type values (TS 29.229 §6.3.15)."""

    NO_ASSIGNMENT = 0
    REGISTRATION = 1
    RE_REGISTRATION = 2
    UNREGISTERED_USER = 3
    TIMEOUT_DEREGISTRATION = 4
    USER_DEREGISTRATION = 5
    TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME = 6
    USER_DEREGISTRATION_STORE_SERVER_NAME = 7
    ADMINISTRATIVE_DEREGISTRATION = 8
    AUTHENTICATION_FAILURE = 9
    AUTHENTICATION_TIMEOUT = 10
    DEREGISTRATION_TOO_MUCH_DATA = 11
    AAA_USER_DATA_REQUEST = 12
    PGW_UPDATE = 13
    RESTORATION = 14


SAT = ServerAssignmentType
# TS 29.228 §6.1.2.1: what an SAR of each type does to the stored S-CSCF name. Registrations
# store the SAR's Server-Name; de-registrations clear it, except the two "_STORE_SERVER_NAME"
# ones, for which the HSS may keep it (this one does). Every other type leaves it as it is.
STORES_SERVER_NAME = frozenset({SAT.REGISTRATION, SAT.RE_REGISTRATION, SAT.UNREGISTERED_USER})
CLEARS_SERVER_NAME = frozenset({
    SAT.TIMEOUT_DEREGISTRATION,
    SAT.USER_DEREGISTRATION,
    SAT.ADMINISTRATIVE_DEREGISTRATION,
    SAT.DEREGISTRATION_TOO_MUCH_DATA,
})


def server_assignment_type(value: int) -> ServerAssignmentType:
    """The Server-Assignment-Type of a value, or InvalidRequest naming the valid ones."""
    try:
        if isinstance(value, bool):
            raise ValueError(value)
        return ServerAssignmentType(value)
    except ValueError:
        raise InvalidRequest(
            f"Server-Assignment-Type {value!r} is not one of TS 29.229 §6.3.15 "
            f"(0 NO_ASSIGNMENT to 14 RESTORATION); the S-CSCF sent a value this HSS does not know"
        ) from None


# what str.isspace() calls white space (re's \s for str patterns is the same set; checked for
# every code point in tests/hss_store/test_records.py); one search, not a loop per character
_WHITESPACE = re.compile(r"\s")


def check_server_name(server_name: str) -> str:
    """A Server-Name (SIP URI of an S-CSCF, TS 29.229 §6.3.3) fit to store."""
    if not isinstance(server_name, str) or not server_name or _WHITESPACE.search(server_name):
        raise InvalidRequest(f"S-CSCF name {server_name!r} must be a SIP URI without spaces")
    return server_name


BINDING_EVENTS = ("allocated", "revoked")


class BindingEvent(NamedTuple):
    """One entry of the migration bindings' change log (``binding_events``).

    Written in the transaction that allocates or revokes the binding, so a gateway that
    polls :meth:`HssStore.binding_events_since` learns of a revocation made by another
    process (``cxgw provision ... revoke``) without re-reading every binding.
    """

    id: int  # increasing; poll with the last one seen
    direction: str  # "inbound" or "outbound"
    impi: str  # the migration IMPI (inbound_impi / outbound_impi)
    impu: str  # the migration IMPU bound to it
    event: str  # one of BINDING_EVENTS
    at: int  # Unix time of the change


AGREEMENT_EVENTS = ("added", "removed")


class AgreementEvent(NamedTuple):
    """One entry of the agreements' change log (``agreement_events``).

    Written in the transaction that adds or removes an agreement, so a primary gateway
    that keeps a partner's agreements in memory learns of a change made by another process
    (``cxgw provision agreement remove``, the provisioning API) by polling
    :meth:`HssStore.agreement_events_since`, as the bindings' log is polled.
    """

    id: int  # increasing; poll with the last one seen
    partner_id: str  # the partner whose agreements changed
    event: str  # one of AGREEMENT_EVENTS
    at: int  # Unix time of the change
