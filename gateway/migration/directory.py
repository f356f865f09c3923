"""The partners file: who we are, and the partner systems the primary CM may ask for access.

TR 23.781 solution 2, steps 3 and 7: the primary configuration management server chooses a
partner system (by its identifier, or by the UE's location against the partners' coverage
areas) and asks that partner's configuration management for access. Here a partner is
reached through its provisioning API over HTTPS, authenticated by a bearer token (and, when
``client_cert`` is set, mutual TLS). One TOML file::

    [primary]                       # the identifier of our SIP database (step 7)
    realm = "primary.example"       # the Diameter realm partners send translated MARs to
    host = "gw.primary.example"     # our gateway's Diameter identity (optional)

    [[partners]]
    id = "partner-a"                # the partner_id of our agreements and outbound bindings
    api_url = "https://api.partner.example:8443"
    token_file = "partner-a.token"  # the bearer token the partner issued to us
    ca_file = "partner-ca.pem"      # optional: the CA that signed the partner's API certificate
    client_cert = "primary.pem"     # optional, with client_key: mutual TLS
    client_key = "primary.key"
    timeout = 10                    # optional: seconds per HTTPS request (default 10)
    pcscf = "sip:pcscf.partner.example:5060"  # optional: the P-CSCF the partner gives its visitors
    areas = [                       # optional: coverage areas, for the choice by location
      { lat = 48.85, lon = 2.35, radius_km = 40 },
      { polygon = [[50.0, 4.0], [50.0, 5.0], [51.0, 5.0], [51.0, 4.0]] },
    ]

Paths are relative to the file. Every error is reported at once, naming the key, the value
and the fix (the tone of gateway/config).
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.migration.coverage import (
    Area,
    Circle,
    Location,
    Polygon,
    check_latitude,
    check_longitude,
)

DEFAULT_TIMEOUT = 10.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")
PRIMARY_KEYS = ("realm", "host")
PARTNER_KEYS = ("id", "api_url", "token_file", "ca_file", "client_cert", "client_key", "timeout", "pcscf", "areas")
CIRCLE_KEYS = ("lat", "lon", "radius_km")


class DirectoryError(ValueError):
    """The partners file is unreadable or wrong; the message lists every problem."""


@dataclass(frozen=True, slots=True)
class PartnerSystem:
    """A partner MC system as the primary CM reaches it (steps 3 and 7)."""

    id: str
    api_url: str
    token_file: Path
    ca_file: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    areas: tuple[Area, ...] = ()
    # The partner's P-CSCF for the UE's initial configuration (step 13). The provisioning API
    # has no UE-configuration resource, so the address the partner published is kept here.
    pcscf: str | None = None

    def covers(self, where: Location) -> bool:
        return any(area.contains(where) for area in self.areas)

    def token(self) -> str:
        """The bearer token, read when needed (it may be rotated between runs)."""
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise DirectoryError(f"partner {self.id}: token_file {str(self.token_file)!r} cannot be read "
                                 f"({error.strerror}); write the token {self.id} issued to us there") from None
        if not token or any(c.isspace() for c in token):
            raise DirectoryError(f"partner {self.id}: token_file {str(self.token_file)!r} must hold one token "
                                 "without spaces")
        return token


@dataclass(frozen=True, slots=True)
class Directory:
    primary_realm: str
    primary_host: str | None
    partners: tuple[PartnerSystem, ...]

    def known(self) -> str:
        return ", ".join(p.id for p in self.partners) or "none"

    def by_id(self, partner_id: str) -> PartnerSystem | None:
        return next((p for p in self.partners if p.id == partner_id), None)

    def covering(self, where: Location) -> list[PartnerSystem]:
        return [p for p in self.partners if p.covers(where)]


def load_directory(path: str | Path) -> Directory:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DirectoryError(f"partners file {str(path)!r} cannot be read ({error.strerror}); "
                             "pass --partners FILE (docs/migration.md shows one)") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise DirectoryError(f"partners file {str(path)!r} is not valid TOML: {error}") from None
    reader = _Reader(path.parent)
    directory = reader.directory(data)
    if reader.errors:
        raise DirectoryError(f"{path}: " + "; ".join(reader.errors))
    assert directory is not None
    return directory


class _Reader:
    """Collects every problem of the file instead of stopping at the first."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.errors: list[str] = []

    def unknown(self, table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(allowed)}"
                self.errors.append(f"{where}{key} is not a known key{hint}")

    def text(self, table: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
        value = table.get(key)
        if value is None:
            if required:
                self.errors.append(f"{where}{key} is missing")
            return None
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            self.errors.append(f"{where}{key} = {value!r} must be a non-empty string without spaces")
            return None
        return value

    def file(self, table: dict[str, Any], key: str, where: str, *, required: bool = False) -> Path | None:
        value = self.text(table, key, where, required=required)
        return None if value is None else (self.base / value)

    def directory(self, data: dict[str, Any]) -> Directory | None:
        self.unknown(data, ("primary", "partners"), "")
        primary = data.get("primary")
        realm = host = None
        if not isinstance(primary, dict):
            self.errors.append("[primary] is missing; give realm (and host) of our SIP database's gateway")
        else:
            self.unknown(primary, PRIMARY_KEYS, "primary.")
            realm = self.text(primary, "realm", "primary.")
            host = self.text(primary, "host", "primary.", required=False)
        raw = data.get("partners", [])
        if not isinstance(raw, list) or not all(isinstance(entry, dict) for entry in raw):
            self.errors.append("partners must be an array of tables ([[partners]])")
            raw = []
        partners = [self.partner(entry, f"partners[{i}].") for i, entry in enumerate(raw)]
        seen: set[str] = set()
        for partner in partners:
            if partner is not None and partner.id in seen:
                self.errors.append(f"partner id {partner.id!r} appears twice; each partner once")
            if partner is not None:
                seen.add(partner.id)
        if self.errors:
            return None
        return Directory(realm or "", host, tuple(p for p in partners if p is not None))

    def partner(self, entry: dict[str, Any], where: str) -> PartnerSystem | None:
        before = len(self.errors)
        self.unknown(entry, PARTNER_KEYS, where)
        partner_id = self.text(entry, "id", where)
        api_url = self.text(entry, "api_url", where)
        if api_url is not None:
            parts = urlsplit(api_url)
            if parts.scheme not in ("https", "http") or not parts.hostname:
                self.errors.append(f"{where}api_url = {api_url!r} is not an http(s) URL; "
                                   "use https://HOST:PORT (the partner's provisioning API)")
            elif parts.scheme == "http" and parts.hostname not in LOOPBACK:
                self.errors.append(f"{where}api_url = {api_url!r} would send the bearer token in clear; "
                                   "use https:// (plain http is accepted on loopback only)")
        token_file = self.file(entry, "token_file", where, required=True)
        ca_file = self.file(entry, "ca_file", where)
        client_cert = self.file(entry, "client_cert", where)
        client_key = self.file(entry, "client_key", where)
        if (client_cert is None) != (client_key is None):
            self.errors.append(f"{where}client_cert and client_key go together (mutual TLS); give both or neither")
        for key, value in (("ca_file", ca_file), ("client_cert", client_cert), ("client_key", client_key)):
            if value is not None and not value.is_file():
                self.errors.append(f"{where}{key} = {str(value)!r} does not exist")
        timeout = entry.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 300:
            self.errors.append(f"{where}timeout = {timeout!r} must be seconds in (0, 300]")
            timeout = DEFAULT_TIMEOUT
        areas = entry.get("areas", [])
        if not isinstance(areas, list):
            self.errors.append(f"{where}areas must be an array of inline tables")
            areas = []
        parsed = tuple(a for a in (self.area(area, f"{where}areas[{i}].") for i, area in enumerate(areas)) if a)
        pcscf = self.text(entry, "pcscf", where, required=False)
        if pcscf is not None and not pcscf.startswith(("sip:", "sips:")):
            self.errors.append(f"{where}pcscf = {pcscf!r} is not a SIP URI; use sip:HOST[:PORT]")
        if len(self.errors) > before:
            return None
        assert partner_id and api_url and token_file
        return PartnerSystem(partner_id, api_url.rstrip("/"), token_file, ca_file, client_cert, client_key,
                             float(timeout), parsed, pcscf)

    def area(self, area: Any, where: str) -> Area | None:
        if not isinstance(area, dict):
            self.errors.append(f"{where[:-1]} must be a table: {{lat, lon, radius_km}} or {{polygon = [[lat, lon], ...]}}")
            return None
        try:
            if "polygon" in area:
                self.unknown(area, ("polygon",), where)
                vertices = area["polygon"]
                if not isinstance(vertices, list) or len(vertices) < 3 or not all(
                        isinstance(v, list) and len(v) == 2 for v in vertices):
                    raise ValueError(f"{where}polygon must list at least 3 [lat, lon] vertices")
                return Polygon(tuple(Location(check_latitude(lat, f"{where}polygon latitude"),
                                              check_longitude(lon, f"{where}polygon longitude"))
                                     for lat, lon in vertices))
            self.unknown(area, CIRCLE_KEYS, where)
            missing = [key for key in CIRCLE_KEYS if key not in area]
            if missing:
                raise ValueError(f"{where[:-1]} needs {', '.join(missing)} (a circle) or polygon")
            radius = area["radius_km"]
            if isinstance(radius, bool) or not isinstance(radius, int | float) or not 0 < radius <= 20_000:
                raise ValueError(f"{where}radius_km = {radius!r} must be a distance in km in (0, 20000]")
            centre = Location(check_latitude(area["lat"], f"{where}lat"), check_longitude(area["lon"], f"{where}lon"))
            return Circle(centre, float(radius))
        except ValueError as error:
            self.errors.append(str(error))
            return None
