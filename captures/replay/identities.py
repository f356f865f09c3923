"""The identity map: a capture from one environment replayed against another.

    [identities]                       # exact values of User-Name and Public-Identity
    "mig-sample@partner.example" = "mig-7@partner.lab"
    "sip:mig-sample@partner.example" = "sip:mig-7@partner.lab"
    [realms]                           # realms, and the domain part of hosts and identities
    "partner.example" = "partner.lab"

Applied to the top-level User-Name, Public-Identity, Origin-Host/-Realm and
Destination-Host/-Realm of each request before it is sent, and of each recorded answer
before it is compared, and to the identities in the User-Data XML of an SAA (the text of
its elements: PrivateID, Identity). An identity not in ``[identities]`` whose domain (after ``@``) is
a realm of ``[realms]`` gets the new realm; a host ``name.realm`` too. Every top-level AVP
of those keys is changed, with its flags; everything else is copied as it is.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cx_codec.avp_header import AVP_HEADER, VENDOR_ID, pack_avp
from cx_codec.header import HEADER_LENGTH

VENDOR_3GPP = 10415
USER_NAME, PUBLIC_IDENTITY = (1, 0), (601, VENDOR_3GPP)  # RFC 6733 §8.14, TS 29.229 §6.3.2
ORIGIN_HOST, ORIGIN_REALM = (264, 0), (296, 0)  # RFC 6733 §6.3, §6.4
DESTINATION_HOST, DESTINATION_REALM = (293, 0), (283, 0)  # RFC 6733 §6.5, §6.6
IDENTITY_KEYS, REALM_KEYS, HOST_KEYS = (USER_NAME, PUBLIC_IDENTITY), (ORIGIN_REALM, DESTINATION_REALM), (ORIGIN_HOST, DESTINATION_HOST)
USER_DATA = (606, VENDOR_3GPP)  # TS 29.229 §6.3.3: the IMS subscription XML of an SAA
SECTIONS = ("identities", "realms")
_ELEMENT_TEXT = re.compile(rb">([^<>]+)<")


class MapError(ValueError):
    """A map file that cannot be used; the text names the file, the entry and the fix."""


@dataclass(frozen=True, slots=True)
class IdentityMap:
    identities: dict[str, str] = field(default_factory=dict)
    realms: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.identities or self.realms)

    def identity(self, value: str) -> str:
        if value in self.identities:
            return self.identities[value]
        user, at, domain = value.rpartition("@")
        if at and domain.lower() in self.realms:
            return f"{user}@{self.realms[domain.lower()]}"
        return value

    def realm(self, value: str) -> str:
        return self.realms.get(value.lower(), value)

    def host(self, value: str) -> str:
        name, dot, domain = value.partition(".")
        while dot:
            if domain.lower() in self.realms:
                return value[: len(value) - len(domain)] + self.realms[domain.lower()]
            _, dot, domain = domain.partition(".")
        return value

    def message(self, data: bytes) -> bytes:
        """``data`` with its identities, realms and hosts mapped (a request or an answer):
        every top-level AVP of those keys (an SAR may carry several Public-Identity AVPs,
        TS 29.229 §6.1.3); a message whose AVP framing is broken is returned as it is."""
        if not self:
            return data
        changes = {key: self.identity for key in IDENTITY_KEYS} | {key: self.realm for key in REALM_KEYS} | {
            key: self.host for key in HOST_KEYS}
        parts, copied, offset, end = [], HEADER_LENGTH, HEADER_LENGTH, len(data)
        while offset + 8 <= end:
            code, word = AVP_HEADER.unpack_from(data, offset)
            length, flags = word & 0xFFFFFF, word >> 24
            vendor_size = 4 if flags & 0x80 else 0
            if length < 8 + vendor_size or offset + length > end:
                return data  # broken framing: replayed as captured, the node under test judges it
            vendor = VENDOR_ID.unpack_from(data, offset + 8)[0] if vendor_size else 0
            old = data[offset + 8 + vendor_size : offset + length]
            new = self._value((code, vendor), old, changes)
            if new != old:
                parts += (data[copied:offset], pack_avp(code, flags, vendor, new))
                copied = offset + ((length + 3) & -4)
            offset += (length + 3) & -4
        if not parts:
            return data
        body = b"".join((*parts, data[copied:]))
        return b"".join((data[:1], (HEADER_LENGTH + len(body)).to_bytes(3, "big"), data[4:HEADER_LENGTH], body))

    def _value(self, key: tuple[int, int], old: bytes, changes: dict[tuple[int, int], Callable[[str], str]]) -> bytes:
        change = changes.get(key)
        if change is not None:
            text = old.decode("utf-8", "replace")
            new = change(text)
            return new.encode() if new != text else old
        if key == USER_DATA:  # TS 29.228 Annex D: the identities are element texts of the XML
            return _ELEMENT_TEXT.sub(lambda m: b">" + self.identity(m.group(1).decode("utf-8", "replace")).encode() + b"<", old)
        return old


def load_map(path: str | Path) -> IdentityMap:
    """The map in TOML file ``path``; MapError naming what is wrong."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MapError(f"--map {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise MapError(f"--map {path}: cannot be read: {error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise MapError(f"--map {path}: not TOML: {error}") from None
    for name in data:
        if name not in SECTIONS:
            raise MapError(f"--map {path}: [{name}] is not a section of an identity map; use [identities] and [realms]")
    tables: list[dict[str, str]] = []
    for section in SECTIONS:
        table = data.get(section, {})
        if not isinstance(table, dict):
            raise MapError(f"--map {path}: {section} must be a table: [{section}] then \"old\" = \"new\" lines")
        for old, new in table.items():
            if not isinstance(new, str) or not new:
                raise MapError(f"--map {path}: [{section}] \"{old}\" = {new!r} is not a string; write \"{old}\" = \"new value\"")
        tables.append({old.lower(): new for old, new in table.items()} if section == "realms" else dict(table))
    return IdentityMap(tables[0], tables[1])


__all__ = ["IdentityMap", "MapError", "load_map"]
