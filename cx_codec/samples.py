"""Realistic sample messages: one builder per message kind, for tests, benchmarks and
``cxgw decode``.

The scene is step 16-21 of TR 23.781 solution 2 (see docs/architecture.md): a migrated user with
the inbound identities ``mig-0001@partner.example`` / ``sip:mig-0001@partner.example``
registers in the partner system; the partner S-CSCF, I-CSCF and HSS talk Cx, the
partner gateway ``gw.partner.example`` talks to the primary side. Every value is fixed
(identifiers, Session-Ids, vectors), so the bytes are the same on every run.

The AKA vector is TS 35.208 test set 1 (RAND, XRES = f2, CK = f3, IK = f4, and
AUTN = SQN xor AK || AMF || MAC-A); the re-synchronisation AUTS uses the same set's
f5* and MAC-S with SQN_MS = SQN.

Every builder returns a new ``Message`` (so callers may change it); ``SAMPLE_MAR`` and
``SAMPLE_MAA`` are the encoded bytes of the benchmark pair; ``all_samples()`` maps a
short name to a fresh message of every kind.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from cx_codec.build import answer_for, error_answer, new_message
from cx_codec.dictionary import APPLICATION_CX, VENDOR_3GPP
from cx_codec.errors import ResultCode
from cx_codec.message import Message

# -- the cast -------------------------------------------------------------------------
PARTNER_REALM = "partner.example"
PRIMARY_REALM = "primary.example"
SCSCF = "scscf.partner.example"
ICSCF = "icscf.partner.example"
PARTNER_HSS = "hss.partner.example"
PARTNER_GATEWAY = "gw.partner.example"
PRIMARY_GATEWAY = "gw.primary.example"
PRIMARY_HSS = "hss.primary.example"
SERVER_NAME = "sip:scscf.partner.example:6060"

IMPI = "mig-0001@partner.example"  # inbound private identity (TS 23.003 §13.3 form)
IMPU = "sip:mig-0001@partner.example"
IMPU_TEL = "tel:+4915112345678"

# Cx in Vendor-Specific-Application-Id (TS 29.229 §6.1 requires it in every command)
CX_APPLICATION = {"vendor_id": VENDOR_3GPP, "auth_application_id": APPLICATION_CX}
NO_STATE_MAINTAINED = 1  # Auth-Session-State, TS 29.229 §6.1

SCHEME_AKA = "Digest-AKAv1-MD5"  # TS 29.229 §6.3.9, RFC 3310

# TS 35.208 test set 1
RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
AUTN = bytes.fromhex("55f328b43577b9b94a9ffac354dfafb3")  # (SQN ^ AK) || AMF || MAC-A
XRES = bytes.fromhex("a54211d5e3ba50bf")
CK = bytes.fromhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")
IK = bytes.fromhex("f769bcd751044604127672711c6d3441")
AUTS = bytes.fromhex("ba853f3c123c01cfaf9ec4e871e9")  # (SQN_MS ^ AK*) || MAC-S, TS 33.102 §6.3.3

# Cx experimental result codes (TS 29.229 §6.2)
DIAMETER_FIRST_REGISTRATION = 2001
DIAMETER_ERROR_USER_UNKNOWN = 5001

USER_DATA = (
    b'<?xml version="1.0" encoding="UTF-8"?><IMSSubscription><PrivateID>' + IMPI.encode()
    + b"</PrivateID><ServiceProfile><PublicIdentity><Identity>" + IMPU.encode()
    + b"</Identity></PublicIdentity></ServiceProfile></IMSSubscription>"
)


def _session(origin_host: str, low: int) -> str:
    # RFC 6733 §8.8: <DiameterIdentity>;<high 32 bits>;<low 32 bits>
    return f"{origin_host};1700000000;{low}"


def _cx(name: str, hop_by_hop: int, end_to_end: int, **fields: object) -> Message:
    return new_message(
        name,
        hop_by_hop=hop_by_hop,
        end_to_end=end_to_end,
        vendor_specific_application_id=CX_APPLICATION,
        auth_session_state=NO_STATE_MAINTAINED,
        **fields,
    )


# -- TS 29.229 §6.1.1-6.1.2: UAR/UAA (I-CSCF -> HSS at REGISTER) --------------------------
def user_authorization_request() -> Message:
    return _cx(
        "User-Authorization-Request",
        0x2A000001,
        0x6B000001,
        session_id=_session(ICSCF, 1),
        origin_host=ICSCF,
        origin_realm=PARTNER_REALM,
        destination_realm=PARTNER_REALM,
        user_name=IMPI,
        oc_supported_features={"oc_feature_vector": 1},  # RFC 7683 OLR_DEFAULT_ALGO
        public_identity=IMPU,
        visited_network_identifier=PARTNER_REALM.encode(),
        user_authorization_type="REGISTRATION",
        uar_flags=0,
    )


def user_authorization_answer() -> Message:
    return answer_for(
        user_authorization_request(),
        origin_host=PARTNER_HSS,
        origin_realm=PARTNER_REALM,
        experimental_result=(VENDOR_3GPP, DIAMETER_FIRST_REGISTRATION),
        oc_supported_features={"oc_feature_vector": 1},
        oc_olr={
            "oc_sequence_number": 7,
            "oc_report_type": "HOST_REPORT",
            "oc_reduction_percentage": 10,
            "oc_validity_duration": 30,
        },
        load={"load_type": "HOST", "load_value": 4000, "sourceid": PARTNER_HSS},  # RFC 8583
        server_capabilities={"mandatory_capability": [1], "optional_capability": [2, 3]},
    )


# -- §6.1.3-6.1.4: SAR/SAA (S-CSCF -> HSS after authentication) ---------------------------
def server_assignment_request() -> Message:
    return _cx(
        "Server-Assignment-Request",
        0x2A000002,
        0x6B000002,
        session_id=_session(SCSCF, 2),
        origin_host=SCSCF,
        origin_realm=PARTNER_REALM,
        destination_host=PARTNER_HSS,
        destination_realm=PARTNER_REALM,
        user_name=IMPI,
        supported_features={"vendor_id": VENDOR_3GPP, "feature_list_id": 1, "feature_list": 1},
        public_identity=[IMPU],
        server_name=SERVER_NAME,
        server_assignment_type="REGISTRATION",
        user_data_already_available="USER_DATA_NOT_AVAILABLE",
        multiple_registration_indication="NOT_MULTIPLE_REGISTRATION",
    )


def server_assignment_answer() -> Message:
    return answer_for(
        server_assignment_request(),
        origin_host=PARTNER_HSS,
        origin_realm=PARTNER_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
        user_name=IMPI,
        supported_features={"vendor_id": VENDOR_3GPP, "feature_list_id": 1, "feature_list": 1},
        user_data=USER_DATA,
        charging_information={
            "primary_event_charging_function_name": "aaa://ecf.partner.example:3868;transport=tcp",
            "primary_charging_collection_function_name": "aaa://ccf.partner.example:3868;transport=tcp",
        },
        associated_identities={"user_name": [IMPI]},
        loose_route_indication="LOOSE_ROUTE_NOT_REQUIRED",
    )


# -- §6.1.5-6.1.6: LIR/LIA (I-CSCF -> HSS for a terminating request) ---------------------
def location_info_request() -> Message:
    return _cx(
        "Location-Info-Request",
        0x2A000003,
        0x6B000003,
        session_id=_session(ICSCF, 3),
        drmp=2,  # RFC 7944 PRIORITY_2
        origin_host=ICSCF,
        origin_realm=PARTNER_REALM,
        destination_realm=PARTNER_REALM,
        public_identity=IMPU_TEL,
        session_priority="PRIORITY-1",
    )


def location_info_answer() -> Message:
    return answer_for(
        location_info_request(),
        origin_host=PARTNER_HSS,
        origin_realm=PARTNER_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
        drmp=2,
        server_name=SERVER_NAME,
        lia_flags=0,
    )


# -- §6.1.7-6.1.8: MAR/MAA (S-CSCF -> HSS, step 16 and 21 of TR 23.781 sol. 2) -----------
def multimedia_auth_request() -> Message:
    """The benchmark MAR: one SIP-Auth-Data-Item naming the scheme only (360 bytes)."""
    return _cx(
        "Multimedia-Auth-Request",
        0x2A000004,
        0x6B000004,
        session_id=_session(SCSCF, 4),
        origin_host=SCSCF,
        origin_realm=PARTNER_REALM,
        destination_realm=PARTNER_REALM,  # no Destination-Host, as Kamailio sends it
        user_name=IMPI,
        public_identity=IMPU,
        sip_auth_data_item={"sip_authentication_scheme": SCHEME_AKA},
        sip_number_auth_items=1,
        server_name=SERVER_NAME,
    )


def multimedia_auth_answer() -> Message:
    """One full IMS-AKA vector (TS 29.229 §6.3.13, TS 33.203 §6.1)."""
    return answer_for(
        multimedia_auth_request(),
        origin_host=PARTNER_GATEWAY,
        origin_realm=PARTNER_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
        user_name=IMPI,
        public_identity=IMPU,
        sip_number_auth_items=1,
        sip_auth_data_item=[
            {
                "sip_item_number": 1,
                "sip_authentication_scheme": SCHEME_AKA,
                "sip_authenticate": RAND + AUTN,
                "sip_authorization": XRES,
                "confidentiality_key": CK,
                "integrity_key": IK,
            }
        ],
    )


def multimedia_auth_request_resync() -> Message:
    """Re-synchronisation MAR: SIP-Authorization = RAND (16) || AUTS (14), TS 29.228
    §6.3.3.1; relayed once (Route-Record) by a proxy that keeps state in Proxy-Info."""
    return _cx(
        "Multimedia-Auth-Request",
        0x2A000005,
        0x6B000005,
        session_id=_session(SCSCF, 5),
        origin_host=SCSCF,
        origin_realm=PARTNER_REALM,
        destination_realm=PARTNER_REALM,
        user_name=IMPI,
        public_identity=IMPU,
        sip_auth_data_item={"sip_authentication_scheme": SCHEME_AKA, "sip_authorization": RAND + AUTS},
        sip_number_auth_items=1,
        server_name=SERVER_NAME,
        proxy_info=[{"proxy_host": "dra.partner.example", "proxy_state": b"\x00\x00\x00\x2a"}],
        route_record=["dra.partner.example"],
    )


def multimedia_auth_answer_user_unknown() -> Message:
    """MAA with Experimental-Result 5001 DIAMETER_ERROR_USER_UNKNOWN (TS 29.229 §6.2.2.1),
    echoing User-Name and Public-Identity as Kamailio expects (docs/interop.md)."""
    return answer_for(
        multimedia_auth_request(),
        origin_host=PARTNER_GATEWAY,
        origin_realm=PARTNER_REALM,
        experimental_result=(VENDOR_3GPP, DIAMETER_ERROR_USER_UNKNOWN),
        user_name=IMPI,
        public_identity=IMPU,
    )


# -- §6.1.9-6.1.10: RTR/RTA (HSS -> S-CSCF, network-initiated de-registration) ------------
def registration_termination_request() -> Message:
    return _cx(
        "Registration-Termination-Request",
        0x2A000006,
        0x6B000006,
        session_id=_session(PARTNER_HSS, 6),
        origin_host=PARTNER_HSS,
        origin_realm=PARTNER_REALM,
        destination_host=SCSCF,
        destination_realm=PARTNER_REALM,
        user_name=IMPI,
        associated_identities={"user_name": [IMPI]},
        public_identity=[IMPU, IMPU_TEL],
        deregistration_reason={"reason_code": "PERMANENT_TERMINATION", "reason_info": "migration ended"},
    )


def registration_termination_answer() -> Message:
    return answer_for(
        registration_termination_request(),
        origin_host=SCSCF,
        origin_realm=PARTNER_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
        associated_identities={"user_name": [IMPI]},
    )


# -- §6.1.11-6.1.12: PPR/PPA (HSS -> S-CSCF, profile change) ------------------------------
def push_profile_request() -> Message:
    return _cx(
        "Push-Profile-Request",
        0x2A000007,
        0x6B000007,
        session_id=_session(PARTNER_HSS, 7),
        origin_host=PARTNER_HSS,
        origin_realm=PARTNER_REALM,
        destination_host=SCSCF,
        destination_realm=PARTNER_REALM,
        user_name=IMPI,
        user_data=USER_DATA,
        charging_information={
            "primary_event_charging_function_name": "aaa://ecf.partner.example:3868;transport=tcp",
        },
    )


def push_profile_answer() -> Message:
    return answer_for(
        push_profile_request(),
        origin_host=SCSCF,
        origin_realm=PARTNER_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
    )


# -- RFC 6733 §5.3, §5.4, §5.5: the peer's own messages (gateway <-> primary) ------------
def capabilities_exchange_request() -> Message:
    return new_message(
        "Capabilities-Exchange-Request",
        hop_by_hop=0x2A000008,
        end_to_end=0x6B000008,
        origin_host=PARTNER_GATEWAY,
        origin_realm=PARTNER_REALM,
        host_ip_address=["192.0.2.10"],
        vendor_id=0,
        product_name="cxgw",
        origin_state_id=1700000000,
        supported_vendor_id=[VENDOR_3GPP],
        vendor_specific_application_id=[CX_APPLICATION],  # advertise Cx only (docs/interop.md)
        firmware_revision=100,
    )


def capabilities_exchange_answer() -> Message:
    return answer_for(
        capabilities_exchange_request(),
        origin_host=PRIMARY_GATEWAY,
        origin_realm=PRIMARY_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
        host_ip_address=["198.51.100.20"],
        vendor_id=0,
        product_name="cxgw",
        origin_state_id=1700000001,
        supported_vendor_id=[VENDOR_3GPP],
        vendor_specific_application_id=[CX_APPLICATION],
        firmware_revision=100,
    )


def device_watchdog_request() -> Message:
    return new_message(
        "Device-Watchdog-Request",
        hop_by_hop=0x2A000009,
        end_to_end=0x6B000009,
        origin_host=PARTNER_GATEWAY,
        origin_realm=PARTNER_REALM,
        origin_state_id=1700000000,
    )


def device_watchdog_answer() -> Message:
    return answer_for(
        device_watchdog_request(),
        origin_host=PRIMARY_GATEWAY,
        origin_realm=PRIMARY_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
        origin_state_id=1700000001,
    )


def disconnect_peer_request() -> Message:
    return new_message(
        "Disconnect-Peer-Request",
        hop_by_hop=0x2A00000A,
        end_to_end=0x6B00000A,
        origin_host=PARTNER_GATEWAY,
        origin_realm=PARTNER_REALM,
        disconnect_cause="REBOOTING",
    )


def disconnect_peer_answer() -> Message:
    return answer_for(
        disconnect_peer_request(),
        origin_host=PRIMARY_GATEWAY,
        origin_realm=PRIMARY_REALM,
        result_code=ResultCode.DIAMETER_SUCCESS,
    )


# -- RFC 6733 §7.2: a protocol error with the E bit ---------------------------------------
def protocol_error_answer() -> Message:
    """3002 DIAMETER_UNABLE_TO_DELIVER for the MAR, from the partner gateway that could not
    reach the primary realm: answer-message format, E bit set."""
    return error_answer(
        multimedia_auth_request(),
        ResultCode.DIAMETER_UNABLE_TO_DELIVER,
        origin_host=PARTNER_GATEWAY,
        origin_realm=PARTNER_REALM,
        error_message="no peer for realm primary.example",
        error_reporting_host=PARTNER_GATEWAY,
    )


SAMPLE_MAR: bytes = multimedia_auth_request().encode()
SAMPLE_MAA: bytes = multimedia_auth_answer().encode()

BUILDERS: dict[str, Callable[[], Message]] = {
    "UAR": user_authorization_request,
    "UAA": user_authorization_answer,
    "SAR": server_assignment_request,
    "SAA": server_assignment_answer,
    "LIR": location_info_request,
    "LIA": location_info_answer,
    "MAR": multimedia_auth_request,
    "MAA": multimedia_auth_answer,
    "RTR": registration_termination_request,
    "RTA": registration_termination_answer,
    "PPR": push_profile_request,
    "PPA": push_profile_answer,
    "CER": capabilities_exchange_request,
    "CEA": capabilities_exchange_answer,
    "DWR": device_watchdog_request,
    "DWA": device_watchdog_answer,
    "DPR": disconnect_peer_request,
    "DPA": disconnect_peer_answer,
    "MAR-resync": multimedia_auth_request_resync,
    "MAA-user-unknown": multimedia_auth_answer_user_unknown,
    "error-3002": protocol_error_answer,
}


def all_samples() -> dict[str, Message]:
    """A fresh message of every kind, by short name (``"MAR"``, ``"error-3002"``, ...)."""
    return {name: build() for name, build in BUILDERS.items()}


# A fixed moment for callers that stamp samples (pcap writers, logs).
SAMPLE_TIME = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)

__all__ = [
    "BUILDERS",
    "SAMPLE_MAA",
    "SAMPLE_MAR",
    "SAMPLE_TIME",
    "all_samples",
    *(build.__name__ for build in BUILDERS.values()),
]
