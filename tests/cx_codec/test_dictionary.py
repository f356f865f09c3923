"""The dictionary as data: completeness, keys, flag rules and spot checks against the
specifications (TS 29.229 table 6.3.1 and §6.1, RFC 7683 §7, RFC 6733 §4.5), plus the
samples built from it (each must decode strictly and re-encode byte for byte)."""

from __future__ import annotations

import pytest

from cx_codec import decode
from cx_codec.datatypes import DataType
from cx_codec.dictionary import (
    APPLICATION_CX,
    DEFAULT_DICTIONARY,
    VENDOR_3GPP,
    Dictionary,
    cx,
    doic,
)
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.samples import SAMPLE_MAA, SAMPLE_MAR, all_samples

D = DEFAULT_DICTIONARY

CX_COMMANDS = {
    "User-Authorization": 300,
    "Server-Assignment": 301,
    "Location-Info": 302,
    "Multimedia-Auth": 303,
    "Registration-Termination": 304,
    "Push-Profile": 305,
}


def test_no_duplicate_code_vendor_or_name_across_modules():
    seen: dict[tuple[int, int], str] = {}
    names: set[str] = set()
    from cx_codec.dictionary import base, digest

    for module in (base, digest, doic, cx):
        for row in module.AVPS:
            key = (row[0], row[4] if len(row) > 4 else module.VENDOR)
            assert key not in seen, f"{row[1]} and {seen.get(key)} share {key}"
            assert row[1] not in names, f"{row[1]} defined twice"
            seen[key] = row[1]
            names.add(row[1])
    assert len(seen) == len(D.avps)


def test_every_grouped_avp_has_a_grammar():
    assert D.check_complete() == []


def test_loading_twice_is_refused():
    # the loader itself rejects duplicates: a table edit that repeats a key fails loudly
    from cx_codec.dictionary import base

    with pytest.raises(ValueError, match="already defined"):
        Dictionary().load(base, base)


@pytest.mark.parametrize(("stem", "code"), sorted(CX_COMMANDS.items(), key=lambda item: item[1]))
@pytest.mark.parametrize("request_", [True, False], ids=["request", "answer"])
def test_cx_commands_present_with_code_flags_and_application(stem, code, request_):
    name = f"{stem}-{'Request' if request_ else 'Answer'}"
    grammar = D.command(name)
    assert grammar.code == code
    assert grammar.application_id == APPLICATION_CX == 16777216
    assert grammar.request is request_
    assert grammar.proxiable is True  # TS 29.229 §6.1: every Cx command has PXY
    assert grammar.error is False
    assert D.grammar_for(code, APPLICATION_CX, request_) is grammar
    # TS 29.229 §6.1.x: Session-Id fixed first, then the Cx header AVPs
    assert grammar.fixed[0].name == "Session-Id"
    members = [rule.name for rule in grammar.members]
    assert members[:3] == ["Session-Id", "DRMP", "Vendor-Specific-Application-Id"]
    tail = ["AVP", "Proxy-Info", "Route-Record"] if request_ else ["AVP", "Failed-AVP", "Proxy-Info", "Route-Record"]
    assert members[-len(tail) :] == tail
    for required in ("Vendor-Specific-Application-Id", "Auth-Session-State", "Origin-Host", "Origin-Realm"):
        rule = next(rule for rule in grammar.members if rule.name == required)
        assert (rule.min, rule.max) == (1, 1), required
    if not request_:
        assert {"Result-Code", "Experimental-Result", "Failed-AVP"} <= set(members)
        assert "Supported-Features" in members


def _rule(command: str, avp: str):
    return next(rule for rule in D.command(command).members if rule.name == avp)


@pytest.mark.parametrize(
    ("command", "avp", "minimum", "maximum"),
    [
        # TS 29.229 §6.1.1
        ("User-Authorization-Request", "Visited-Network-Identifier", 1, 1),
        ("User-Authorization-Request", "UAR-Flags", 0, 1),
        ("User-Authorization-Request", "OC-Supported-Features", 0, 1),
        # §6.1.2
        ("User-Authorization-Answer", "OC-OLR", 0, 1),
        ("User-Authorization-Answer", "Load", 0, None),
        ("User-Authorization-Answer", "Server-Capabilities", 0, 1),
        # §6.1.3
        ("Server-Assignment-Request", "Public-Identity", 0, None),
        ("Server-Assignment-Request", "User-Name", 0, 1),
        ("Server-Assignment-Request", "Server-Assignment-Type", 1, 1),
        ("Server-Assignment-Request", "User-Data-Already-Available", 1, 1),
        ("Server-Assignment-Request", "Failed-PCSCF", 0, 1),
        # §6.1.4
        ("Server-Assignment-Answer", "SCSCF-Restoration-Info", 0, None),
        ("Server-Assignment-Answer", "Priviledged-Sender-Indication", 0, 1),
        ("Server-Assignment-Answer", "Allowed-WAF-WWSF-Identities", 0, 1),
        # §6.1.5-6
        ("Location-Info-Request", "Originating-Request", 0, 1),
        ("Location-Info-Request", "Public-Identity", 1, 1),
        ("Location-Info-Answer", "LIA-Flags", 0, 1),
        # §6.1.7-8
        ("Multimedia-Auth-Request", "SIP-Auth-Data-Item", 1, 1),
        ("Multimedia-Auth-Request", "SIP-Number-Auth-Items", 1, 1),
        ("Multimedia-Auth-Request", "Server-Name", 1, 1),
        ("Multimedia-Auth-Request", "Destination-Host", 0, 1),
        ("Multimedia-Auth-Answer", "SIP-Auth-Data-Item", 0, None),
        ("Multimedia-Auth-Answer", "Public-Identity", 0, 1),
        # §6.1.9-10
        ("Registration-Termination-Request", "Destination-Host", 1, 1),
        ("Registration-Termination-Request", "Deregistration-Reason", 1, 1),
        ("Registration-Termination-Request", "RTR-Flags", 0, 1),
        ("Registration-Termination-Answer", "Identity-with-Emergency-Registration", 0, None),
        # §6.1.11-12
        ("Push-Profile-Request", "Destination-Host", 1, 1),
        ("Push-Profile-Request", "SIP-Auth-Data-Item", 0, 1),
        ("Push-Profile-Answer", "Supported-Features", 0, None),
    ],
)
def test_command_grammar_spot_checks(command, avp, minimum, maximum):
    rule = _rule(command, avp)
    assert (rule.min, rule.max) == (minimum, maximum)


def test_mar_grammar_order_is_the_specs():
    # TS 29.229 §6.1.7, in order
    assert [rule.name for rule in D.command("Multimedia-Auth-Request").members] == [
        "Session-Id", "DRMP", "Vendor-Specific-Application-Id", "Auth-Session-State", "Origin-Host",
        "Origin-Realm", "Destination-Realm", "Destination-Host", "User-Name", "OC-Supported-Features",
        "Supported-Features", "Public-Identity", "SIP-Auth-Data-Item", "SIP-Number-Auth-Items",
        "Server-Name", "AVP", "Proxy-Info", "Route-Record",
    ]  # fmt: skip


def test_doic_and_cx_codes_621_to_627_are_distinct_avps():
    for code in range(621, 628):
        assert D.avps[(code, 0)].name.startswith("OC-"), code
    cx_names = {
        621: "Primary-Charging-Collection-Function-Name",
        622: "Secondary-Charging-Collection-Function-Name",
        623: "User-Authorization-Type",
        624: "User-Data-Already-Available",
        625: "Confidentiality-Key",
        626: "Integrity-Key",
    }
    for code, name in cx_names.items():
        definition = D.avps[(code, VENDOR_3GPP)]
        assert definition.name == name
        assert definition is not D.avps[(code, 0)]
        assert definition.flags == 0xC0  # V and M
    assert (627, VENDOR_3GPP) not in D.avps  # removed from TS 29.229 (was User-Data-Request-Type)
    # RFC 8583 Load (650, vendor 0) vs Cx Session-Priority (650, 10415), RFC 8581 vs Cx 648
    assert D.avps[(650, 0)].name == "Load"
    assert D.avps[(650, VENDOR_3GPP)].name == "Session-Priority"
    assert D.avps[(648, 0)].name == "OC-Peer-Algo"
    assert D.avps[(648, VENDOR_3GPP)].name == "Multiple-Registration-Indication"


@pytest.mark.parametrize("code", [code for code in range(600, 667) if code != 627])  # 627 was removed from TS 29.229
def test_cx_avp_range_is_complete(code):
    definition = D.avps[(code, VENDOR_3GPP)]
    assert definition.flags & 0x80
    # table 6.3.1: 600-626 and 633 MUST set M, 628 MAY, the others MUST NOT
    if code <= 626 or code == 633:
        assert definition.mandatory and not definition.m_bit_forbidden
    elif code == 628:
        assert not definition.mandatory and not definition.m_bit_forbidden
    else:
        assert not definition.mandatory and definition.m_bit_forbidden, definition.name


@pytest.mark.parametrize(
    ("name", "code", "vendor", "data_type"),
    [
        # TS 29.229 table 6.3.1, checked against Wireshark TGPP.xml and python-diameter
        ("Visited-Network-Identifier", 600, VENDOR_3GPP, DataType.OctetString),
        ("Public-Identity", 601, VENDOR_3GPP, DataType.UTF8String),
        ("Server-Name", 602, VENDOR_3GPP, DataType.UTF8String),
        ("User-Data", 606, VENDOR_3GPP, DataType.OctetString),
        ("SIP-Number-Auth-Items", 607, VENDOR_3GPP, DataType.Unsigned32),
        ("SIP-Authentication-Scheme", 608, VENDOR_3GPP, DataType.UTF8String),
        ("SIP-Authenticate", 609, VENDOR_3GPP, DataType.OctetString),
        ("SIP-Authorization", 610, VENDOR_3GPP, DataType.OctetString),
        ("SIP-Auth-Data-Item", 612, VENDOR_3GPP, DataType.Grouped),
        ("SIP-Item-Number", 613, VENDOR_3GPP, DataType.Unsigned32),
        ("Primary-Event-Charging-Function-Name", 619, VENDOR_3GPP, DataType.DiameterURI),
        ("Wildcarded-Public-Identity", 634, VENDOR_3GPP, DataType.UTF8String),
        ("Wildcarded-IMPU", 636, VENDOR_3GPP, DataType.UTF8String),
        ("UAR-Flags", 637, VENDOR_3GPP, DataType.Unsigned32),
        ("Loose-Route-Indication", 638, VENDOR_3GPP, DataType.Enumerated),
        ("Path", 640, VENDOR_3GPP, DataType.OctetString),
        ("Session-Priority", 650, VENDOR_3GPP, DataType.Enumerated),
        ("Priviledged-Sender-Indication", 652, VENDOR_3GPP, DataType.Enumerated),
        ("WebRTC-Web-Server-Function-Name", 658, VENDOR_3GPP, DataType.UTF8String),
        ("RTR-Flags", 659, VENDOR_3GPP, DataType.Unsigned32),
        ("Registration-Time-Out", 661, VENDOR_3GPP, DataType.Time),
        ("PCSCF-IP-Address", 666, VENDOR_3GPP, DataType.Address),
        # RFC 4590 codes, TS 29.229 §6.3.37-41 types
        ("Digest-Realm", 104, 0, DataType.UTF8String),
        ("Digest-HA1", 121, 0, DataType.UTF8String),
        # RFC 7683 §7, RFC 8581
        ("OC-Feature-Vector", 622, 0, DataType.Unsigned64),
        ("OC-Sequence-Number", 624, 0, DataType.Unsigned64),
        ("OC-Validity-Duration", 625, 0, DataType.Unsigned32),
        ("OC-Report-Type", 626, 0, DataType.Enumerated),
        ("OC-Peer-Algo", 648, 0, DataType.Unsigned64),
        # RFC 7155 §4.4.10, ETSI ES 283 034
        ("Framed-Interface-Id", 96, 0, DataType.Unsigned64),
        ("Line-Identifier", 500, 13019, DataType.OctetString),
    ],
)
def test_avp_codes_and_types(name, code, vendor, data_type):
    definition = D.avp(name)
    assert (definition.code, definition.vendor, definition.type) == (code, vendor, data_type)


def test_doic_m_bit_must_not_be_set():
    # RFC 7683 §7.7: M MUST NOT; we neither send it nor accept it
    for code in range(621, 628):
        definition = D.avps[(code, 0)]
        assert definition.flags == 0 and definition.m_bit_forbidden, definition.name


def test_digest_avps_must_set_m_not_v():
    for code in range(103, 122):
        definition = D.avps[(code, 0)]
        assert definition.flags == 0x40, definition.name


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("Server-Assignment-Type", {0: "NO_ASSIGNMENT", 1: "REGISTRATION", 9: "AUTHENTICATION_FAILURE", 14: "RESTORATION"}),
        ("Reason-Code", {0: "PERMANENT_TERMINATION", 3: "REMOVE_S-CSCF"}),
        ("User-Authorization-Type", {0: "REGISTRATION", 1: "DE_REGISTRATION", 2: "REGISTRATION_AND_CAPABILITIES"}),
        ("User-Data-Already-Available", {0: "USER_DATA_NOT_AVAILABLE", 1: "USER_DATA_ALREADY_AVAILABLE"}),
        ("Originating-Request", {0: "ORIGINATING"}),
        ("Loose-Route-Indication", {0: "LOOSE_ROUTE_NOT_REQUIRED", 1: "LOOSE_ROUTE_REQUIRED"}),
        ("Multiple-Registration-Indication", {0: "NOT_MULTIPLE_REGISTRATION", 1: "MULTIPLE_REGISTRATION"}),
        ("Session-Priority", {0: "PRIORITY-0", 4: "PRIORITY-4"}),
        ("Priviledged-Sender-Indication", {0: "NOT_PRIVILEDGED_SENDER", 1: "PRIVILEDGED_SENDER"}),
        ("OC-Report-Type", {0: "HOST_REPORT", 1: "REALM_REPORT", 2: "PEER_REPORT"}),
    ],
)
def test_enumerated_values(name, values):
    enum = D.avp(name).enum
    for number, label in values.items():
        assert enum[number] == label
    assert sorted(enum) == list(range(len(enum)))  # every table is dense from 0


def test_every_enumerated_avp_has_a_value_table():
    missing = [d.name for d in D.avps.values() if d.type is DataType.Enumerated and not d.enum]
    assert missing == []


def test_server_assignment_type_has_all_fifteen_values():
    assert len(D.avp("Server-Assignment-Type").enum) == 15  # TS 29.229 §6.3.15, 0..14


def test_grouped_grammar_spot_checks():
    sip_item = D.avp("SIP-Auth-Data-Item").grammar
    assert [rule.name for rule in sip_item.members][:7] == [
        "SIP-Item-Number", "SIP-Authentication-Scheme", "SIP-Authenticate", "SIP-Authorization",
        "SIP-Authentication-Context", "Confidentiality-Key", "Integrity-Key",
    ]  # fmt: skip
    restoration = {rule.name: (rule.min, rule.max) for rule in D.avp("SCSCF-Restoration-Info").grammar.members}
    assert restoration["User-Name"] == (1, 1)
    assert restoration["Restoration-Info"] == (1, None)
    olr = D.avp("OC-OLR").grammar
    assert [rule.name for rule in olr.fixed] == ["OC-Sequence-Number", "OC-Report-Type"]
    digest = {rule.name: rule.min for rule in D.avp("SIP-Digest-Authenticate").grammar.members}
    assert digest["Digest-Realm"] == digest["Digest-Qop"] == digest["Digest-HA1"] == 1


def test_flag_bit_tables_name_only_bit_zero():
    assert set(cx.FLAG_BITS) == {"UAR-Flags", "LIA-Flags", "SAR-Flags", "RTR-Flags"}


# -- samples ---------------------------------------------------------------------------
SAMPLES = all_samples()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_decodes_strictly_and_reencodes_identically(name):
    data = SAMPLES[name].encode()
    message = decode(data)
    assert message.encode() == data
    # a fresh build gives the same bytes (samples are deterministic)
    assert all_samples()[name].encode() == data


def test_sample_set_covers_every_command_both_ways():
    kinds = {(m.command_code, m.application_id, m.is_request) for m in SAMPLES.values() if not m.is_error}
    for code in CX_COMMANDS.values():
        assert (code, APPLICATION_CX, True) in kinds and (code, APPLICATION_CX, False) in kinds
    for code in (257, 280, 282):
        assert (code, 0, True) in kinds and (code, 0, False) in kinds


def test_sample_mar_and_maa_contents():
    mar = decode(SAMPLE_MAR)
    assert 300 <= len(SAMPLE_MAR) <= 400
    item = mar.find("SIP-Auth-Data-Item")
    assert item.get("SIP-Authentication-Scheme") == "Digest-AKAv1-MD5"
    maa = decode(SAMPLE_MAA)
    (item,) = maa.find_all("SIP-Auth-Data-Item")
    assert item.get("SIP-Item-Number") == 1
    assert len(item.get("SIP-Authenticate")) == 32
    assert 8 <= len(item.get("SIP-Authorization")) <= 16
    assert len(item.get("Confidentiality-Key")) == len(item.get("Integrity-Key")) == 16
    assert maa.hop_by_hop == mar.hop_by_hop and maa.end_to_end == mar.end_to_end


def test_special_samples():
    resync = SAMPLES["MAR-resync"]
    authorization = resync.find("SIP-Auth-Data-Item").get("SIP-Authorization")
    assert len(authorization) == 16 + 14  # RAND || AUTS
    unknown = SAMPLES["MAA-user-unknown"]
    assert unknown.experimental_result == (VENDOR_3GPP, 5001) and unknown.result_code is None
    error = SAMPLES["error-3002"]
    assert error.is_error and error.is_proxiable and error.result_code == ResultCode.DIAMETER_UNABLE_TO_DELIVER
    assert error.grammar.name == "Answer-Message"


def test_m_bit_on_a_must_not_avp_is_refused():
    # Feature-List-ID with M set (as python-diameter's dictionary would send it): 3009
    message = SAMPLES["SAR"]
    data = bytearray(message.encode())
    marker = (629).to_bytes(4, "big") + bytes([0x80])
    at = bytes(data).index(marker)
    data[at + 4] = 0xC0
    with pytest.raises(DecodeError) as caught:
        decode(bytes(data))
    assert caught.value.result_code == ResultCode.DIAMETER_INVALID_AVP_BITS


# -- codec bugs found while building the dictionary, fixed in the codec --
def test_drmp_and_load_m_bit_must_not_be_set():
    assert D.avp("DRMP").m_bit_forbidden
    assert D.avp("Load").m_bit_forbidden


def test_field_given_an_avp_of_another_definition_is_refused():
    from cx_codec.build import avp, new_message
    from cx_codec.errors import EncodeError

    with pytest.raises(EncodeError):
        new_message(
            "Device-Watchdog-Request",
            origin_host=avp("Destination-Realm", "partner.example"),
            origin_realm="partner.example",
        )
