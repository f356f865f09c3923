"""Grammar validation (RFC 6733 §3.2) and its result codes (§7.1.5) with Failed-AVP (§7.5):
5005 missing (an example AVP of minimum length, zeroed), 5008 not allowed or misplaced,
5009 too many (the first occurrence beyond the limit)."""

from __future__ import annotations

import pytest

from cx_codec.avp import Avp, pack_avp
from cx_codec.build import avp
from cx_codec.dictionary import DEFAULT_DICTIONARY
from cx_codec.errors import DecodeError
from cx_codec.grammar import parse_ccf
from cx_codec.validate import validate_avps

D = DEFAULT_DICTIONARY
MAR = D.command("Multimedia-Auth-Request")
CER = D.command("Capabilities-Exchange-Request")
ANSWER = D.command("Answer-Message")
VSAI = D.avp("Vendor-Specific-Application-Id").grammar


def mar_fields():
    return {
        "Session-Id": "scscf.home.net;1;2",
        "Vendor-Specific-Application-Id": {"vendor_id": 10415, "auth_application_id": 16777216},
        "Auth-Session-State": 1,
        "Origin-Host": "scscf.home.net",
        "Origin-Realm": "home.net",
        "Destination-Realm": "hss.net",
        "User-Name": "alice@home.net",
        "Public-Identity": "sip:alice@home.net",
        "SIP-Auth-Data-Item": {"sip_authentication_scheme": "Digest-AKAv1-MD5"},
        "SIP-Number-Auth-Items": 1,
        "Server-Name": "sip:scscf.home.net",
    }


def mar_avps(**replace):
    fields = mar_fields()
    for name, value in replace.items():
        fields[name.replace("_", "-")] = value
    return [avp(name, value) for name, value in fields.items() if value is not None]


def unknown(code, flags=0x00, data=b"?"):
    return Avp(code, flags, 0, data)


def invalid(avps, grammar, **kwargs):
    with pytest.raises(DecodeError) as caught:
        validate_avps(avps, grammar, D, **kwargs)
    assert not caught.value.fatal
    return caught.value


def test_a_complete_mar_is_valid():
    validate_avps(mar_avps(), MAR, D)


def test_optional_and_repeated_members_are_valid():
    avps = mar_avps()
    avps.insert(1, avp("DRMP", 3))
    avps += [avp("Proxy-Info", {"proxy_host": f"p{i}.net", "proxy_state": b"s"}) for i in range(3)]
    avps += [avp("Route-Record", "r1.net"), avp("Route-Record", "r2.net"), unknown(4242)]
    validate_avps(avps, MAR, D)


# -- 5005 DIAMETER_MISSING_AVP ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "example_hex"),
    [
        ("User-Name", "0000000140000008"),  # UTF8String: minimum length 0
        ("Session-Id", "0000010740000008"),  # the fixed member
        ("Public-Identity", "00000259c000000c000028af"),  # vendor AVP: V bit, Vendor-Id
        ("SIP-Number-Auth-Items", "0000025fc0000010000028af00000000"),  # Unsigned32: 4 zeros
        ("Auth-Session-State", "000001154000000c00000000"),  # Enumerated: 4 zeros
        ("SIP-Auth-Data-Item", "00000264c000000c000028af"),  # Grouped: no members
    ],
)
def test_missing_avp_is_5005_with_an_example(name, example_hex):
    error = invalid(mar_avps(**{name: None}), MAR)
    assert error.result_code == 5005
    assert error.failed_avp == bytes.fromhex(example_hex)
    assert name in error.reason


def test_missing_address_example_has_the_minimum_ipv4_length():
    avps = [
        avp("Origin-Host", "a.net"),
        avp("Origin-Realm", "a"),
        avp("Vendor-Id", 0),
        avp("Product-Name", "x"),
    ]
    error = invalid(avps, CER)
    assert error.result_code == 5005
    # family 1 and four zero bytes: the smallest valid Address
    assert error.failed_avp == pack_avp(257, 0x40, 0, bytes.fromhex("000100000000"))


def test_missing_member_of_a_grouped_avp():
    group = avp("Vendor-Specific-Application-Id", [avp("Auth-Application-Id", 16777216)])
    error = invalid(mar_avps(**{"Vendor-Specific-Application-Id": group}), MAR)
    assert error.result_code == 5005
    assert error.failed_avp == bytes.fromhex("0000010a4000000c00000000")


def test_minimum_count_above_one():
    (grammar,) = parse_ccf("<X> ::= < AVP Header: 1 >\n 2*3 { Class }\n")
    grammar.resolve({"Class": (25, 0)})
    validate_avps([avp("Class", b"1"), avp("Class", b"2")], grammar, D)
    error = invalid([avp("Class", b"1")], grammar)
    assert error.result_code == 5005
    assert error.failed_avp == bytes.fromhex("0000001940000008")


# -- 5008 DIAMETER_AVP_NOT_ALLOWED ---------------------------------------------------------------


def test_misplaced_fixed_avp_is_5008():
    avps = mar_avps()
    session = avps.pop(0)
    avps.insert(3, session)
    error = invalid(avps, MAR)
    assert error.result_code == 5008
    assert error.failed_avp == session.encode()


def test_known_avp_outside_a_closed_grammar_is_5008():
    intruder = avp("Session-Id", "x")
    group = avp("Vendor-Specific-Application-Id", [avp("Vendor-Id", 10415), intruder])
    error = invalid(mar_avps(**{"Vendor-Specific-Application-Id": group}), MAR)
    assert (error.result_code, error.failed_avp) == (5008, intruder.encode())
    error = invalid(group.children, VSAI)
    assert error.result_code == 5008
    assert error.failed_avp == intruder.encode()


def test_unknown_avp_without_m_bit_is_tolerated_even_in_a_closed_grammar():
    # RFC 6733 §4.1: an unrecognised AVP without the M bit is ignored
    validate_avps([avp("Vendor-Id", 10415), unknown(4242)], VSAI, D)


def test_grouped_members_are_checked_only_when_asked():
    group = avp("Vendor-Specific-Application-Id", [avp("Vendor-Id", 1), avp("Vendor-Id", 2)])
    avps = mar_avps(**{"Vendor-Specific-Application-Id": group})
    error = invalid(avps, MAR)
    assert error.result_code == 5009
    validate_avps(avps, MAR, D, recurse=False)


def test_failed_avp_members_are_not_judged():
    answer = [
        avp("Origin-Host", "a.net"),
        avp("Origin-Realm", "a.net"),
        avp("Result-Code", 5008),
        avp("Failed-AVP", [avp("Session-Id", "x"), avp("Session-Id", "y"), unknown(1234, 0x40)]),
    ]
    validate_avps(answer, ANSWER, D)


# -- 5009 DIAMETER_AVP_OCCURS_TOO_MANY_TIMES ------------------------------------------------------


def test_second_origin_host_is_5009_and_named():
    avps = mar_avps()
    first_extra = avp("Origin-Host", "second.home.net")
    second_extra = avp("Origin-Host", "third.home.net")
    avps += [first_extra, second_extra]
    error = invalid(avps, MAR)
    assert error.result_code == 5009
    assert error.failed_avp == first_extra.encode()


def test_second_session_id_is_5009():
    avps = mar_avps()
    extra = avp("Session-Id", "again")
    avps.append(extra)
    error = invalid(avps, MAR)
    assert (error.result_code, error.failed_avp) == (5009, extra.encode())


def test_maximum_count_above_one():
    (grammar,) = parse_ccf("<X> ::= < AVP Header: 1 >\n 2*3 { Class }\n")
    grammar.resolve({"Class": (25, 0)})
    classes = [avp("Class", bytes([i])) for i in range(5)]
    validate_avps(classes[:3], grammar, D)
    error = invalid(classes, grammar)
    assert (error.result_code, error.failed_avp) == (5009, classes[3].encode())


# -- the answer-message ----------------------------------------------------------------------------


def answer_message(*first):
    return [
        *first,
        avp("Origin-Host", "a.net"),
        avp("Origin-Realm", "a.net"),
        avp("Result-Code", 3008),
    ]


def test_answer_message_session_id_is_optional():
    validate_avps(answer_message(), ANSWER, D)
    validate_avps(answer_message(avp("Session-Id", "s")), ANSWER, D)


def test_answer_message_session_id_elsewhere_is_5008():
    session = avp("Session-Id", "s")
    avps = answer_message()
    avps.insert(2, session)
    error = invalid(avps, ANSWER)
    assert (error.result_code, error.failed_avp) == (5008, session.encode())
