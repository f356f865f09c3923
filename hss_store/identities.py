"""Validation of IMS identities.

- IMPI: a Network Access Identifier ``username@realm`` (TS 23.003 §13.3, RFC 4282 §2.1).
- IMPU: a SIP URI (RFC 3261 §19.1) or a tel URI (RFC 3966), TS 23.003 §13.4.

Identities are stored exactly as given (no case folding): the S-CSCF keys its state on
the exact strings of the Cx answer, so the store must hand back what it was given.
"""

from __future__ import annotations

import hashlib
import re

from hss_store.errors import InvalidIdentity

MAX_IDENTITY_LENGTH = 255

# RFC 1035 §2.3.1 host names, as relaxed by RFC 1123 §2.1 (labels may start with a digit).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_REALM = rf"{_LABEL}(?:\.{_LABEL})*"
_REALM_RE = re.compile(rf"^{_REALM}$")
# RFC 4282 §2.1 username: printable ASCII without the separators that would confuse us.
_NAI_USER_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.]+$")
_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_IPV6_REF = r"\[[0-9A-Fa-f:.]+\]"
# RFC 3261 §25.1: userinfo is unreserved / escaped / user-unreserved; we accept the usual set.
_SIP_RE = re.compile(
    rf"^(?:sip|sips):(?:(?P<user>[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+)@)?"
    rf"(?P<host>{_REALM}|{_IPV4}|{_IPV6_REF})(?::\d{{1,5}})?(?:;[^\s;<>\"]+)*$",
    re.IGNORECASE,
)
# RFC 3966 §3: global numbers start with '+', local ones need ;phone-context.
_TEL_RE = re.compile(r"^tel:(?P<number>\+?[0-9A-Fa-f*#.()\-]+)(?P<params>(?:;[^\s;<>\"]+)*)$", re.IGNORECASE)


def _check_common(kind: str, value: object, example: str) -> str:
    if not isinstance(value, str):
        raise InvalidIdentity(f"{kind} {value!r} is not a string; give it as text, e.g. {example}")
    if not value:
        raise InvalidIdentity(f"{kind} is empty; give one, e.g. {example}")
    if len(value) > MAX_IDENTITY_LENGTH:
        raise InvalidIdentity(
            f"{kind} {value[:40]!r}... is {len(value)} characters long; "
            f"the limit is {MAX_IDENTITY_LENGTH}"
        )
    if value != value.strip() or any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidIdentity(f"{kind} {value!r} contains white space or control characters; remove them")
    return value


def validate_realm(realm: str) -> str:
    """A Diameter realm / DNS domain (RFC 6733 §4.3.1 DiameterIdentity); returns it unchanged."""
    _check_common("realm", realm, "ims.example.net")
    if not _REALM_RE.match(realm):
        raise InvalidIdentity(f"realm {realm!r} is not a domain name; expected e.g. ims.example.net")
    return realm


def validate_impi(impi: str) -> str:
    """An IMPI ``username@realm`` (TS 23.003 §13.3); returns it unchanged or raises InvalidIdentity."""
    _check_common("IMPI", impi, "alice@ims.example.net")
    user, sep, realm = impi.rpartition("@")
    if not sep or not user or not realm:
        raise InvalidIdentity(
            f"IMPI {impi!r} is not of the form user@realm (TS 23.003 §13.3); e.g. alice@ims.example.net"
        )
    if not _NAI_USER_RE.match(user) or user.startswith(".") or user.endswith(".") or ".." in user:
        raise InvalidIdentity(
            f"IMPI {impi!r} has an invalid user part {user!r} (RFC 4282 §2.1); "
            "use letters, digits and - _ . + only"
        )
    if not _REALM_RE.match(realm):
        raise InvalidIdentity(f"IMPI {impi!r} has an invalid realm {realm!r}; expected e.g. ims.example.net")
    return impi


def validate_impu(impu: str) -> str:
    """An IMPU: ``sip:``/``sips:`` URI or ``tel:`` URI (TS 23.003 §13.4); returns it unchanged."""
    _check_common("IMPU", impu, "sip:alice@ims.example.net")
    scheme = impu.split(":", 1)[0].lower()
    if scheme in ("sip", "sips"):
        if not _SIP_RE.match(impu):
            raise InvalidIdentity(
                f"IMPU {impu!r} is not a valid SIP URI (RFC 3261 §19.1); e.g. sip:alice@ims.example.net"
            )
        return impu
    if scheme == "tel":
        match = _TEL_RE.match(impu)
        if not match or not any(c.isdigit() for c in match.group("number")):
            raise InvalidIdentity(f"IMPU {impu!r} is not a valid tel URI (RFC 3966); e.g. tel:+4930123456")
        if not match.group("number").startswith("+") and "phone-context=" not in match.group("params").lower():
            raise InvalidIdentity(
                f"IMPU {impu!r} is a local number without ;phone-context (RFC 3966 §5.1.5); "
                "use the global form tel:+<country code><number>"
            )
        return impu
    raise InvalidIdentity(
        f"IMPU {impu!r} must be a sip:, sips: or tel: URI (TS 23.003 §13.4); e.g. sip:alice@ims.example.net"
    )


def impi_realm(impi: str) -> str:
    """The realm of a valid IMPI (the part after the last '@')."""
    return validate_impi(impi).rpartition("@")[2]


def identity_key(identity: str) -> int:
    """A signed 64-bit hash of an identity, for compact indexes (see hss_store.schema)."""
    digest = hashlib.blake2b(identity.encode(), digest_size=8, person=b"cxgw-identity").digest()
    return int.from_bytes(digest, "big", signed=True)
