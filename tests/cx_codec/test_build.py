"""Builders: AVPs and messages from named fields, answers as RFC 6733 §6.2 says, and error
answers as §7 says (3xxx: answer-message with the E bit; others: the command's answer)."""

from __future__ import annotations

import pytest

from cx_codec.avp import Avp, pack_avp
from cx_codec.build import (
    answer_for,
    avp,
    avp_bytes,
    error_answer,
    failed_avp,
    grouped,
    new_message,
    new_request,
    snake,
)
from cx_codec.errors import DecodeError, EncodeError
from cx_codec.header import Flags
from cx_codec.message import decode, decode_lazy

CX = 16777216
PROXY_INFO = [
    {"proxy_host": "dra1.home.net", "proxy_state": b"first"},
    {"proxy_host": "dra2.home.net", "proxy_state": b"second"},
]


def mar(**overrides):
    fields = {
        "session_id": "scscf.home.net;1;2",
        "vendor_specific_application_id": {"vendor_id": 10415, "auth_application_id": CX},
        "auth_session_state": "NO_STATE_MAINTAINED",
        "origin_host": "scscf.home.net",
        "origin_realm": "home.net",
        "destination_realm": "hss.net",
        "user_name": "alice@home.net",
        "public_identity": "sip:alice@home.net",
        "sip_auth_data_item": {"sip_authentication_scheme": "Digest-AKAv1-MD5"},
        "sip_number_auth_items": 1,
        "server_name": "sip:scscf.home.net",
        "proxy_info": PROXY_INFO,
    }
    fields.update(overrides)
    request = new_request(
        "Multimedia-Auth-Request", hop_by_hop=0xAABBCCDD, end_to_end=0x11223344, **fields
    )
    return decode(request.encode())


def names(message):
    return [a.name for a in message.avps]


# -- AVPs --------------------------------------------------------------------------------------


def test_snake():
    assert snake("SIP-Auth-Data-Item") == "sip_auth_data_item"
    assert snake("Origin-Host") == "origin_host"


def test_avp_flags_come_from_the_dictionary():
    assert avp("Public-Identity", "sip:a").flags == 0xC0
    assert avp("Origin-Host", "h.net").flags == 0x40
    assert avp("Error-Message", "x").flags == 0x00
    assert avp("Origin-Host", "h.net", flags=0x00).flags == 0x00


def test_enumerated_by_label_or_number():
    assert (
        avp("Auth-Session-State", "NO_STATE_MAINTAINED").encode()
        == avp("Auth-Session-State", 1).encode()
    )
    with pytest.raises(EncodeError, match="NO_SUCH"):
        avp("Auth-Session-State", "NO_SUCH")


def test_grouped_members_in_grammar_order_whatever_the_mapping_order():
    built = avp("Vendor-Specific-Application-Id", {"auth_application_id": CX, "vendor_id": 10415})
    assert built.encode() == bytes.fromhex(
        "00000104400000200000010a4000000c000028af000001024000000c01000000"
    )
    assert (
        grouped("Vendor-Specific-Application-Id", auth_application_id=CX, vendor_id=10415) == built
    )
    from_list = avp(
        "Vendor-Specific-Application-Id", [avp("Vendor-Id", 10415), avp("Auth-Application-Id", CX)]
    )
    assert from_list.encode() == built.encode()


def test_extra_members_go_to_the_wildcard():
    unknown = Avp(4242, 0, 0, b"x")
    item = avp(
        "SIP-Auth-Data-Item",
        {"extra": [unknown], "sip_item_number": 1, "line_identifier": [b"a", b"b"]},
    )
    assert [child.code for child in item.children] == [613, 500, 500, 4242]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Vendor-Specific-Application-Id", {"no_such_field": 1}, "no_such_field"),
        ("Vendor-Specific-Application-Id", 5, "Grouped"),
        ("Vendor-Specific-Application-Id", [1, 2], "Avp"),
        ("Result-Code", "2001", "Result-Code"),
        ("Origin-Host", "has space", "Origin-Host"),
    ],
)
def test_avp_encode_errors_name_the_avp(name, value, message):
    with pytest.raises(EncodeError, match=message):
        avp(name, value)


def test_unknown_avp_name():
    with pytest.raises(KeyError):
        avp("No-Such-AVP", 1)


def test_avp_bytes_and_failed_avp():
    assert avp_bytes("Result-Code", 2001) == bytes.fromhex("0000010c4000000c000007d1")
    assert (
        avp_bytes("Experimental-Result", {"vendor_id": 10415, "experimental_result_code": 2001})
        == avp(
            "Experimental-Result", {"vendor_id": 10415, "experimental_result_code": 2001}
        ).encode()
    )
    offending = bytes.fromhex("0000109240000009") + b"x"  # 9 bytes, as received without padding
    wrapped = failed_avp(offending)
    assert wrapped.encode() == pack_avp(279, 0x40, 0, offending + bytes(3))


# -- requests --------------------------------------------------------------------------------------


def test_request_flags_and_order():
    request = new_request(
        "Multimedia-Auth-Request",
        server_name="sip:s",
        session_id="s",
        origin_host="h.net",
        origin_realm="net",
        route_record=["r1.net", "r2.net"],
        destination_realm="hss.net",
        user_name="u",
        public_identity="sip:u",
        sip_auth_data_item={},
        sip_number_auth_items=1,
        auth_session_state=1,
        vendor_specific_application_id={"vendor_id": 10415, "auth_application_id": CX},
        destination_host=None,  # None means absent
    )
    assert request.flags == Flags.REQUEST | Flags.PROXIABLE
    assert (request.command_code, request.application_id) == (303, CX)
    assert names(request) == [
        "Session-Id",
        "Vendor-Specific-Application-Id",
        "Auth-Session-State",
        "Origin-Host",
        "Origin-Realm",
        "Destination-Realm",
        "User-Name",
        "Public-Identity",
        "SIP-Auth-Data-Item",
        "SIP-Number-Auth-Items",
        "Server-Name",
        "Route-Record",
        "Route-Record",
    ]
    decode(request.encode())


def test_base_request_flags():
    dwr = new_message("Device-Watchdog-Request", origin_host="h.net", origin_realm="net")
    assert dwr.flags == Flags.REQUEST and dwr.application_id == 0
    dwa = new_message(
        "Device-Watchdog-Answer", result_code=2001, origin_host="h.net", origin_realm="net"
    )
    assert dwa.flags == 0
    assert (
        new_message("Device-Watchdog-Request", flags=0x90, origin_host="h", origin_realm="n").flags
        == 0x90
    )


def test_unknown_field_and_command():
    with pytest.raises(EncodeError, match="user_nam"):
        new_message("Device-Watchdog-Request", user_nam="x")
    with pytest.raises(KeyError):
        new_message("No-Such-Request")


# -- answer_for -------------------------------------------------------------------------------------


def test_answer_copies_ids_session_id_first_and_p_bit():
    request = mar()
    answer = answer_for(
        request, origin_host="hss1.hss.net", origin_realm="hss.net", result_code=2001
    )
    assert (answer.command_code, answer.application_id) == (303, CX)
    assert (answer.hop_by_hop, answer.end_to_end) == (0xAABBCCDD, 0x11223344)
    assert answer.flags == Flags.PROXIABLE
    assert names(answer)[0] == "Session-Id"
    assert answer.avps[0].encode() == request.avps[0].encode()
    assert (
        answer.find("Vendor-Specific-Application-Id").encode()
        == request.find("Vendor-Specific-Application-Id").encode()
    )
    assert answer["Auth-Session-State"] == 1
    assert answer.result_code == 2001 and answer.experimental_result is None
    decoded = decode(answer.encode())
    assert decoded.name == "Multimedia-Auth-Answer"


def test_answer_copies_proxy_info_in_order():
    request = mar()
    answer = answer_for(
        request, origin_host="hss1.hss.net", origin_realm="hss.net", result_code=2001
    )
    copied = [a.encode() for a in answer.find_all("Proxy-Info")]
    assert copied == [a.encode() for a in request.find_all("Proxy-Info")]
    assert [a.get("Proxy-State") for a in answer.find_all("Proxy-Info")] == [b"first", b"second"]


def test_answer_does_not_copy_r_or_t_bits_and_keeps_p_clear_when_clear():
    request = mar()
    request.flags |= Flags.RETRANSMIT
    answer = answer_for(request, origin_host="h.net", origin_realm="net", result_code=2001)
    assert answer.flags == Flags.PROXIABLE
    request.flags &= ~Flags.PROXIABLE  # several stacks leave the P bit clear
    assert answer_for(request, origin_host="h.net", origin_realm="net", result_code=2001).flags == 0


def test_experimental_result_instead_of_result_code():
    request = mar()
    answer = answer_for(
        request, origin_host="h.net", origin_realm="net", experimental_result=(10415, 2001)
    )
    assert answer.result_code is None
    assert answer.experimental_result == (10415, 2001)
    assert "Result-Code" not in answer
    decoded = decode(answer.encode())
    assert decoded.experimental_result == (10415, 2001)
    assert decoded.find("Experimental-Result").encode() == bytes.fromhex(
        "00000129400000200000010a4000000c000028af0000012a4000000c000007d1"
    )


def test_answer_fields_and_override():
    request = mar()
    answer = answer_for(
        request,
        origin_host="h.net",
        origin_realm="net",
        result_code=2001,
        session_id="other",
        sip_number_auth_items=1,
        sip_auth_data_item=[
            {"sip_item_number": 1, "confidentiality_key": bytes(16), "integrity_key": bytes(16)}
        ],
    )
    assert answer["Session-Id"] == "other"
    item = answer.find("SIP-Auth-Data-Item")
    assert item.get("Confidentiality-Key") == bytes(16)
    assert decode(answer.encode()).encode() == answer.encode()


def test_answer_for_a_base_request():
    cer = new_message(
        "Capabilities-Exchange-Request",
        hop_by_hop=5,
        end_to_end=6,
        origin_host="gw.net",
        origin_realm="net",
        host_ip_address=["127.0.0.1"],
        vendor_id=0,
        product_name="gw",
    )
    cea = answer_for(
        cer,
        origin_host="hss.net",
        origin_realm="net",
        result_code=2001,
        host_ip_address=["127.0.0.2"],
        vendor_id=0,
        product_name="hss",
    )
    assert (cea.flags, cea.hop_by_hop, cea.end_to_end, cea.command_code) == (0, 5, 6, 257)
    assert names(cea)[:3] == ["Result-Code", "Origin-Host", "Origin-Realm"]
    decode(cea.encode())


def test_answer_for_an_unknown_command_is_an_encode_error():
    request = decode_lazy(
        bytes.fromhex("0100001480002710000000000000000100000002")  # command 10000
    )
    with pytest.raises(EncodeError):
        answer_for(request, origin_host="h", origin_realm="n", result_code=2001)


# -- error_answer -------------------------------------------------------------------------------------


def test_protocol_error_uses_the_answer_message_with_e_bit():
    request = mar()
    offending = request.find("Origin-Host").encode()
    answer = error_answer(
        request,
        3009,
        origin_host="dra.home.net",
        origin_realm="home.net",
        error_message="bad bits",
        error_reporting_host="dra.home.net",
        failed=offending,
    )
    assert answer.flags == Flags.ERROR | Flags.PROXIABLE
    assert (answer.command_code, answer.application_id) == (303, CX)
    assert (answer.hop_by_hop, answer.end_to_end) == (0xAABBCCDD, 0x11223344)
    assert names(answer) == [
        "Session-Id",
        "Origin-Host",
        "Origin-Realm",
        "Result-Code",
        "Error-Message",
        "Error-Reporting-Host",
        "Failed-AVP",
        "Proxy-Info",
        "Proxy-Info",
        # echoed through the answer-message's *[ AVP ] (the S-CSCF reads User-Name)
        "User-Name",
        "Public-Identity",
    ]
    assert answer.result_code == 3009
    assert [child.encode() for child in answer.find("Failed-AVP").children] == [offending]
    decoded = decode(answer.encode())
    assert decoded.grammar.name == "Answer-Message"
    assert "Vendor-Specific-Application-Id" not in decoded  # not part of the answer-message


def test_protocol_error_keeps_p_clear_when_the_request_has_it_clear():
    cer = new_message(
        "Capabilities-Exchange-Request",
        origin_host="gw.net",
        origin_realm="net",
        host_ip_address=["127.0.0.1"],
        vendor_id=0,
        product_name="gw",
    )
    answer = error_answer(cer, 3008, origin_host="h.net", origin_realm="net")
    assert answer.flags == Flags.ERROR
    assert "Session-Id" not in answer
    decode(answer.encode())


def test_other_errors_use_the_commands_answer():
    request = mar()
    offending = request.find("User-Name").encode()
    answer = error_answer(
        request,
        5004,
        origin_host="hss1.hss.net",
        origin_realm="hss.net",
        error_message="bad",
        failed=offending,
    )
    assert answer.flags == Flags.PROXIABLE  # no E bit
    assert answer.result_code == 5004
    assert names(answer)[0] == "Session-Id"
    assert "Vendor-Specific-Application-Id" in answer and "Auth-Session-State" in answer
    assert "Error-Message" not in answer  # the MAA grammar has none
    assert [child.encode() for child in answer.find("Failed-AVP").children] == [offending]
    assert len(answer.find_all("Proxy-Info")) == 2
    decoded = decode(answer.encode())
    assert decoded.name == "Multimedia-Auth-Answer"


def test_base_command_error_keeps_error_message():
    dpr = new_message(
        "Disconnect-Peer-Request", origin_host="a.net", origin_realm="net", disconnect_cause=0
    )
    answer = error_answer(
        dpr, 5005, origin_host="b.net", origin_realm="net", error_message="missing"
    )
    assert answer.flags == 0
    assert answer["Error-Message"] == "missing"
    assert decode(answer.encode()).name == "Disconnect-Peer-Answer"


def test_error_answer_for_an_unknown_command_uses_the_answer_message_avps():
    request = decode_lazy(bytes.fromhex("01000014c0002710000000000000000100000002"))
    answer = error_answer(request, 5001, origin_host="h.net", origin_realm="net")
    # RFC 6733 §3, §7.1: E only for protocol errors (3xxx); the §7.2 AVPs without it
    assert answer.flags == Flags.PROXIABLE
    assert answer.command_code == 10000
    assert [avp.name for avp in answer.avps] == ["Origin-Host", "Origin-Realm", "Result-Code"]
    decode(answer.encode())
    protocol = error_answer(request, 3001, origin_host="h.net", origin_realm="net")
    assert protocol.flags == Flags.ERROR | Flags.PROXIABLE
    decode(protocol.encode())


@pytest.mark.parametrize("mutation", ["unknown-m", "missing", "bad-value", "too-many"])
def test_decode_error_to_error_answer(mutation):
    """The whole path: a malformed MAR -> DecodeError -> an answer carrying its Failed-AVP."""
    request = mar()
    avps = [a.encode() for a in request.avps]
    if mutation == "unknown-m":
        avps.append(pack_avp(4242, 0x40, 0, b"x"))
    elif mutation == "missing":
        avps = [a for a in avps if a[:4] != (1).to_bytes(4, "big")]
    elif mutation == "bad-value":
        avps[6] = pack_avp(1, 0x40, 0, b"\xff")
    else:
        avps.insert(6, avps[6])
    body = b"".join(avps)
    data = bytes([1]) + (20 + len(body)).to_bytes(3, "big") + request.encode()[4:20] + body
    with pytest.raises(DecodeError) as caught:
        decode(data)
    error = caught.value
    answer = error_answer(
        decode_lazy(data),
        error.result_code,
        origin_host="hss.net",
        origin_realm="net",
        failed=error.failed_avp,
    )
    decoded = decode(answer.encode())
    assert decoded.result_code == error.result_code
    (reported,) = decoded.find("Failed-AVP").children
    assert reported.encode() == error.failed_avp
