"""gateway.peer.capabilities: the capabilities exchange (RFC 6733 §5.3) and the base messages
this node builds (CER, CEA, DWR, DWA, DPR, DPA), decoded strictly by cx_codec."""

from __future__ import annotations

import ipaddress

import pytest

from cx_codec import DecodeError, decode, new_request
from cx_codec.build import avp_bytes
from cx_codec.errors import ResultCode
from cx_codec.samples import (
    capabilities_exchange_answer,
    capabilities_exchange_request,
    device_watchdog_request,
    disconnect_peer_request,
)
from gateway.peer.capabilities import (
    DIAMETER_NO_COMMON_SECURITY,
    Application,
    Capabilities,
    LocalIdentity,
    build_cea,
    build_cer,
    build_dpa,
    build_dpr,
    build_dwa,
    build_dwr,
    decode_capabilities,
    judge_capabilities,
)

CX = 16777216
RELAY = 0xFFFFFFFF
LOCAL = LocalIdentity("gw.partner.example", "partner.example", applications=(Application(CX, 10415),))


def peer_caps(applications=(CX,), inband=()):
    return Capabilities("hss.primary.example", "primary.example", application_ids=set(applications),
                        inband_security_ids=set(inband))


def cer_bytes(**fields):
    base = {
        "origin_host": "scscf.partner.example",
        "origin_realm": "partner.example",
        "host_ip_address": ["192.0.2.7"],
        "vendor_id": 0,
        "product_name": "Kamailio",
        "auth_application_id": [CX],
    }
    base.update(fields)
    base = {key: value for key, value in base.items() if value is not None}
    return new_request("Capabilities-Exchange-Request", hop_by_hop=0x11, end_to_end=0x22, **base).encode()


# -- judge_capabilities --------------------------------------------------------------


def test_common_application_is_2001():
    assert judge_capabilities(LOCAL, peer_caps()) == (ResultCode.DIAMETER_SUCCESS, "ok")


def test_no_common_application_is_5010_with_a_reason_naming_both_sides():
    code, reason = judge_capabilities(LOCAL, peer_caps(applications=(4,)))
    assert code == ResultCode.DIAMETER_NO_COMMON_APPLICATION == 5010
    assert "peer hss.primary.example" in reason
    assert "it offers 4" in reason
    assert f"we serve {CX}" in reason


def test_peer_offering_nothing_is_5010():
    code, reason = judge_capabilities(LOCAL, peer_caps(applications=()))
    assert code == 5010
    assert "it offers none" in reason


def test_relay_application_of_the_peer_is_accepted():
    assert judge_capabilities(LOCAL, peer_caps(applications=(RELAY,)))[0] == 2001


def test_local_relay_accepts_any_application():
    relay = LocalIdentity("dra.example", "example", applications=(Application(RELAY),))
    assert judge_capabilities(relay, peer_caps(applications=(4,)))[0] == 2001


def test_inband_security_tls_only_is_5017():
    code, reason = judge_capabilities(LOCAL, peer_caps(inband=(1,)))
    assert code == DIAMETER_NO_COMMON_SECURITY == 5017
    assert "use a TLS port" in reason


@pytest.mark.parametrize("inband", [(0,), (0, 1), ()])
def test_no_inband_security_offered_or_absent_is_accepted(inband):
    assert judge_capabilities(LOCAL, peer_caps(inband=inband))[0] == 2001


def test_no_common_application_is_judged_before_security():
    assert judge_capabilities(LOCAL, peer_caps(applications=(4,), inband=(1,)))[0] == 5010


def test_capabilities_serves():
    caps = peer_caps(applications=(CX,))
    assert caps.serves(CX) and not caps.serves(4)
    assert peer_caps(applications=(RELAY,)).serves(4)


# -- decode_capabilities ----------------------------------------------------------------


def test_decode_capabilities_of_a_full_cer():
    message, caps = decode_capabilities(capabilities_exchange_request().encode())
    assert message.command_code == 257 and message.is_request
    assert caps.origin_host == "gw.partner.example"
    assert caps.origin_realm == "partner.example"
    assert caps.host_ip_addresses == ["192.0.2.10"]
    assert caps.product_name == "cxgw"
    assert caps.origin_state_id == 1700000000
    assert caps.application_ids == {CX}  # from Vendor-Specific-Application-Id
    assert caps.result_code is None
    assert caps.warnings == []


def test_decode_capabilities_of_a_cea_has_its_result_code():
    _, caps = decode_capabilities(capabilities_exchange_answer().encode())
    assert caps.result_code == 2001
    assert caps.origin_host == "gw.primary.example"


def test_decode_capabilities_collects_auth_acct_and_inband_ids():
    data = cer_bytes(acct_application_id=[3], inband_security_id=[0, 1])
    _, caps = decode_capabilities(data)
    assert caps.application_ids == {CX, 3}
    assert caps.inband_security_ids == {0, 1}


def test_missing_host_ip_address_is_tolerated_with_a_warning():
    # Kamailio (docs/interop.md)
    data = cer_bytes(host_ip_address=None)
    with pytest.raises(DecodeError):
        decode(data)
    message, caps = decode_capabilities(data)
    assert caps.origin_host == "scscf.partner.example"
    assert caps.host_ip_addresses == []
    assert caps.application_ids == {CX}
    assert len(caps.warnings) == 1
    assert "no Host-IP-Address" in caps.warnings[0]
    assert "RFC 6733 §5.3.1" in caps.warnings[0]


def test_missing_origin_realm_is_an_error():
    with pytest.raises(DecodeError) as caught:
        decode_capabilities(cer_bytes(origin_realm=None))
    assert caught.value.result_code == ResultCode.DIAMETER_MISSING_AVP
    assert "Origin-Realm" in caught.value.reason


def test_other_errors_still_raise():
    data = cer_bytes()
    extra = avp_bytes("Origin-Realm", "other.example")
    data = data[:1] + (len(data) + len(extra)).to_bytes(3, "big") + data[4:] + extra
    with pytest.raises(DecodeError) as caught:
        decode_capabilities(data)
    assert caught.value.result_code == ResultCode.DIAMETER_AVP_OCCURS_TOO_MANY_TIMES


def test_missing_host_ip_does_not_hide_other_missing_avps():
    data = cer_bytes(host_ip_address=None, vendor_id=None, product_name=None)
    with pytest.raises(DecodeError) as caught:
        decode_capabilities(data)
    assert caught.value.result_code == ResultCode.DIAMETER_MISSING_AVP


# -- builders: what we send decodes strictly -----------------------------------------


def test_cer_decodes_strictly_and_advertises_only_cx():
    message = decode(build_cer(LOCAL, 0x01020304, 0x05060708))
    assert message.command_code == 257 and message.is_request
    assert (message.hop_by_hop, message.end_to_end) == (0x01020304, 0x05060708)
    assert message["Origin-Host"] == "gw.partner.example"
    assert message["Origin-Realm"] == "partner.example"
    assert message["Host-IP-Address"] == ipaddress.ip_address("127.0.0.1")
    assert message["Inband-Security-Id"] == 0
    assert message["Supported-Vendor-Id"] == 10415
    assert message.find("Auth-Application-Id") is None
    vsai = message.find_all("Vendor-Specific-Application-Id")
    assert len(vsai) == 1
    assert {child.name: child.value for child in vsai[0].children} == {"Vendor-Id": 10415, "Auth-Application-Id": CX}
    # and we accept ourselves
    _, caps = decode_capabilities(build_cer(LOCAL, 1, 2))
    assert judge_capabilities(LOCAL, caps)[0] == 2001


def test_cer_of_a_relay_uses_auth_application_id():
    relay = LocalIdentity("dra.example", "example", applications=(Application(RELAY),))
    message = decode(build_cer(relay, 1, 2))
    assert message["Auth-Application-Id"] == RELAY
    assert message.find("Vendor-Specific-Application-Id") is None
    assert message.find("Supported-Vendor-Id") is None


@pytest.mark.parametrize(
    ("code", "e_bit"), [(2001, False), (3010, True), (5010, False), (5017, False)]
)
def test_cea_decodes_strictly_with_e_bit_only_on_protocol_errors(code, e_bit):
    cer = capabilities_exchange_request()
    message = decode(build_cea(LOCAL, cer, code, "because" if code != 2001 else None))
    assert message.command_code == 257 and not message.is_request
    assert message.result_code == code
    assert message.is_error is e_bit
    assert (message.hop_by_hop, message.end_to_end) == (cer.hop_by_hop, cer.end_to_end)
    assert message["Origin-Host"] == "gw.partner.example"
    if code != 2001:
        assert message["Error-Message"] == "because"
    else:
        assert message.find("Error-Message") is None


def test_dwr_and_dwa_decode_strictly():
    dwr = decode(build_dwr(LOCAL, 7, 8))
    assert dwr.command_code == 280 and dwr.is_request
    assert dwr["Origin-State-Id"] == 1
    request = device_watchdog_request()
    dwa = decode(build_dwa(LOCAL, request))
    assert dwa.command_code == 280 and not dwa.is_request
    assert dwa.result_code == 2001
    assert (dwa.hop_by_hop, dwa.end_to_end) == (request.hop_by_hop, request.end_to_end)


@pytest.mark.parametrize("cause", [0, 1, 2])
def test_dpr_carries_the_disconnect_cause(cause):
    dpr = decode(build_dpr(LOCAL, cause, 9, 10))
    assert dpr.command_code == 282 and dpr.is_request
    assert dpr["Disconnect-Cause"] == cause
    assert dpr["Origin-Host"] == "gw.partner.example"


def test_dpa_decodes_strictly():
    request = disconnect_peer_request()
    dpa = decode(build_dpa(LOCAL, request))
    assert dpa.command_code == 282 and not dpa.is_request
    assert dpa.result_code == 2001
    assert dpa.hop_by_hop == request.hop_by_hop
