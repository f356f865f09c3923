"""Capabilities exchange and the other base-protocol messages (RFC 6733 §5.3-§5.5).

``LocalIdentity`` is what this node says about itself in CER/CEA/DWR/DPR; ``Capabilities``
is what a peer said in its CER or CEA; ``judge_capabilities`` decides the Result-Code of
the exchange (2001, 3010, 5010, 5017) with a reason worth logging.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from functools import lru_cache

from cx_codec import DecodeError, Message, answer_for, decode, new_request
from cx_codec.avp import Avp
from cx_codec.build import failed_avp
from cx_codec.dictionary import APPLICATION_RELAY
from cx_codec.errors import ResultCode
from cx_codec.grammar import Grammar
from cx_codec.rewrite import top_level
from cx_codec.validate import validate_avps

DIAMETER_NO_COMMON_SECURITY = 5017  # RFC 6733 §7.1.5
NO_INBAND_SECURITY = 0  # RFC 6733 §6.10
HOST_IP_ADDRESS = (257, 0)
ORIGIN_HOST = (264, 0)
ORIGIN_REALM = (296, 0)
_ORIGIN = frozenset({ORIGIN_HOST, ORIGIN_REALM})
CER = 257  # Capabilities-Exchange-Request/Answer command code (RFC 6733 §5.3)


@dataclass(frozen=True, slots=True)
class Application:
    """An application as advertised: ``vendor_id`` 0 means a plain Auth-Application-Id."""

    application_id: int
    vendor_id: int = 0


@dataclass(slots=True)
class LocalIdentity:
    origin_host: str
    origin_realm: str
    host_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    vendor_id: int = 0
    product_name: str = "cxgw"
    origin_state_id: int = 1
    firmware_revision: int | None = None
    applications: tuple[Application, ...] = ()

    @property
    def application_ids(self) -> frozenset[int]:
        return frozenset(app.application_id for app in self.applications)

    def capability_fields(self) -> dict[str, object]:
        """The CER/CEA members that describe this node (RFC 6733 §5.3.1, §5.3.2)."""
        vendor_apps = [app for app in self.applications if app.vendor_id]
        return {
            "origin_host": self.origin_host,
            "origin_realm": self.origin_realm,
            "host_ip_address": [ipaddress.ip_address(ip) for ip in self.host_ip_addresses],
            "vendor_id": self.vendor_id,
            "product_name": self.product_name,
            "origin_state_id": self.origin_state_id,
            "supported_vendor_id": sorted({app.vendor_id for app in vendor_apps}) or None,
            "auth_application_id": [app.application_id for app in self.applications if not app.vendor_id] or None,
            # advertise only what the node serves (RFC 6733 §5.3): vendor applications
            # in Vendor-Specific-Application-Id
            "vendor_specific_application_id": [
                {"vendor_id": app.vendor_id, "auth_application_id": app.application_id} for app in vendor_apps
            ]
            or None,
            "inband_security_id": NO_INBAND_SECURITY,
            "firmware_revision": self.firmware_revision,
        }


@dataclass(slots=True)
class Capabilities:
    """What a peer advertised in its CER or CEA."""

    origin_host: str
    origin_realm: str
    host_ip_addresses: list[str] = field(default_factory=list)
    vendor_id: int = 0
    product_name: str = ""
    origin_state_id: int | None = None
    application_ids: set[int] = field(default_factory=set)
    inband_security_ids: set[int] = field(default_factory=set)
    result_code: int | None = None
    warnings: list[str] = field(default_factory=list)

    def serves(self, application_id: int) -> bool:
        return application_id in self.application_ids or APPLICATION_RELAY in self.application_ids


def decode_capabilities(data: bytes) -> tuple[Message, Capabilities]:
    """Decode a CER or CEA strictly, tolerating a missing Host-IP-Address.

    Kamailio sends no Host-IP-Address on some hosts (docs/interop.md): accepted
    with a warning in ``Capabilities.warnings``. Other errors raise DecodeError.
    """
    warnings = []
    try:
        message = decode(data)
    except DecodeError as error:
        if not (error.result_code == ResultCode.DIAMETER_MISSING_AVP and _is_host_ip(error.failed_avp)):
            raise
        message = decode(data, validate=False)
        # everything else the grammar asks for is still required
        validate_avps(message.avps, _without_host_ip(message.grammar), message.dictionary)  # type: ignore[arg-type]
        warnings.append("no Host-IP-Address in its capabilities exchange (RFC 6733 §5.3.1 requires one)")
    capabilities = Capabilities(
        origin_host=str(message["Origin-Host"]),
        origin_realm=str(message["Origin-Realm"]),
        host_ip_addresses=[str(avp.value) for avp in message.find_all("Host-IP-Address")],
        vendor_id=int(message.get("Vendor-Id", 0)),  # type: ignore[call-overload]
        product_name=str(message.get("Product-Name", "")),
        origin_state_id=message.get("Origin-State-Id"),  # type: ignore[arg-type]
        result_code=message.get("Result-Code"),  # type: ignore[arg-type]
        warnings=warnings,
    )
    for avp in message.avps:
        _collect_application(avp, capabilities)
    return message, capabilities


@lru_cache(maxsize=8)
def _without_host_ip(grammar: Grammar) -> Grammar:
    """The CER/CEA grammar with Host-IP-Address optional (the one deviation tolerated)."""
    members = tuple(replace(rule, min=0) if rule.key == HOST_IP_ADDRESS else rule for rule in grammar.members)
    relaxed = replace(grammar, members=members, fixed=(), rules={}, required=(), any_avp=False)
    relaxed.resolve({rule.name: rule.key for rule in members if rule.key is not None})  # type: ignore[misc]
    return relaxed


def _is_host_ip(failed: bytes | None) -> bool:
    return failed is not None and len(failed) >= 8 and int.from_bytes(failed[:4], "big") == HOST_IP_ADDRESS[0]


def _collect_application(avp: Avp, capabilities: Capabilities) -> None:
    name = avp.name
    if name in ("Auth-Application-Id", "Acct-Application-Id"):
        capabilities.application_ids.add(int(avp.value))  # type: ignore[call-overload]
    elif name == "Vendor-Specific-Application-Id":
        for child in avp.children:
            if child.name in ("Auth-Application-Id", "Acct-Application-Id"):
                capabilities.application_ids.add(int(child.value))  # type: ignore[call-overload]
    elif name == "Inband-Security-Id":
        capabilities.inband_security_ids.add(int(avp.value))  # type: ignore[call-overload]


def judge_capabilities(local: LocalIdentity, peer: Capabilities) -> tuple[int, str]:
    """Result-Code for a peer's CER (RFC 6733 §5.3) and a reason for the log."""
    ours = local.application_ids
    theirs = peer.application_ids
    if APPLICATION_RELAY not in theirs and APPLICATION_RELAY not in ours and not ours & theirs:
        wanted = ", ".join(str(app) for app in sorted(ours)) or "none"
        offered = ", ".join(str(app) for app in sorted(theirs)) or "none"
        return (
            ResultCode.DIAMETER_NO_COMMON_APPLICATION,
            f"peer {peer.origin_host}: no common application (it offers {offered}, we serve {wanted}); "
            "add Cx (16777216, vendor 10415) to its applications",
        )
    if peer.inband_security_ids and NO_INBAND_SECURITY not in peer.inband_security_ids:
        # RFC 6733 §5.3: TLS here is negotiated by port (§13), not in band
        return (
            DIAMETER_NO_COMMON_SECURITY,
            f"peer {peer.origin_host}: asks for in-band security {sorted(peer.inband_security_ids)}; "
            "use a TLS port (RFC 6733 §13) and NO_INBAND_SECURITY",
        )
    return ResultCode.DIAMETER_SUCCESS, "ok"


# -- base-protocol messages this node sends -------------------------------------------


def build_cer(local: LocalIdentity, hop_by_hop: int, end_to_end: int) -> bytes:
    return new_request(
        "Capabilities-Exchange-Request", hop_by_hop=hop_by_hop, end_to_end=end_to_end, **local.capability_fields()
    ).encode()


def build_cea(
    local: LocalIdentity, cer: Message, result_code: int, error_message: str | None = None, failed: bytes | None = None
) -> bytes:
    fields = local.capability_fields()
    del fields["origin_host"], fields["origin_realm"]
    answer = answer_for(
        cer,
        origin_host=local.origin_host,
        origin_realm=local.origin_realm,
        result_code=result_code,
        error_message=error_message,
        failed_avp=failed_avp(failed) if failed else None,
        **fields,
    )
    if result_code >= 3000 and result_code < 4000:
        answer.flags |= 0x20  # RFC 6733 §7.1.3: protocol errors carry the E bit
    return answer.encode()


def cer_origin(data: bytes) -> tuple[str, str] | None:
    """Origin-Host and Origin-Realm of a CER read from the top-level AVP headers alone
    (the first of each), or None when they cannot be read that way: who is asking,
    before the rest of the CER is decoded (RFC 6733 §5.3.1)."""
    try:
        found = top_level(data, _ORIGIN, complete=False)
        return found[ORIGIN_HOST][0].decode(), found[ORIGIN_REALM][0].decode()
    except (DecodeError, KeyError, UnicodeDecodeError):
        return None


def cea_for_malformed(local: LocalIdentity, data: bytes, error: DecodeError) -> bytes:
    """The CEA to a CER that cannot be decoded: built from its header, with everything a
    CEA must carry (RFC 6733 §5.3.2: Host-IP-Address, Vendor-Id, Product-Name ...), the
    error's Result-Code and Failed-AVP."""
    header = data[:20].ljust(20, b"\0")
    cer = Message(
        CER, header[4], int.from_bytes(header[8:12], "big"),
        int.from_bytes(header[12:16], "big"), int.from_bytes(header[16:20], "big"),
    )
    return build_cea(local, cer, error.result_code, error.reason[:200], error.failed_avp)


def build_dwr(local: LocalIdentity, hop_by_hop: int, end_to_end: int) -> bytes:
    return new_request(
        "Device-Watchdog-Request",
        hop_by_hop=hop_by_hop,
        end_to_end=end_to_end,
        origin_host=local.origin_host,
        origin_realm=local.origin_realm,
        origin_state_id=local.origin_state_id,
    ).encode()


def build_dwa(local: LocalIdentity, dwr: Message) -> bytes:
    return answer_for(
        dwr,
        origin_host=local.origin_host,
        origin_realm=local.origin_realm,
        result_code=ResultCode.DIAMETER_SUCCESS,
        origin_state_id=local.origin_state_id,
    ).encode()


def build_dpr(local: LocalIdentity, cause: int, hop_by_hop: int, end_to_end: int) -> bytes:
    return new_request(
        "Disconnect-Peer-Request",
        hop_by_hop=hop_by_hop,
        end_to_end=end_to_end,
        origin_host=local.origin_host,
        origin_realm=local.origin_realm,
        disconnect_cause=int(cause),
    ).encode()


def build_dpa(local: LocalIdentity, dpr: Message, result_code: int = ResultCode.DIAMETER_SUCCESS) -> bytes:
    return answer_for(
        dpr, origin_host=local.origin_host, origin_realm=local.origin_realm, result_code=result_code
    ).encode()
