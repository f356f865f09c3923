"""Command Code Format grammars (RFC 6733 §3.2) as data, and the dictionary that binds them."""

from __future__ import annotations

import pytest

from cx_codec.datatypes import DataType
from cx_codec.dictionary import APPLICATION_CX, DEFAULT_DICTIONARY, VENDOR_3GPP, Dictionary
from cx_codec.grammar import INFINITY, Grammar, Rule, parse_ccf

D = DEFAULT_DICTIONARY

SAMPLE = """
<Test-Request> ::= < Diameter Header: 4242, REQ, PXY, 16777216 >
                < Session-Id >
                { Origin-Host }
             1* { Host-IP-Address }
              * [ Route-Record ]
            0*1 [ User-Name ]
             2*5 { Class }
                [ Origin-State-Id ]
              * [ AVP ]

<Test-Answer> ::= < Diameter Header: 4242, ERR >
                { Result-Code }

<Test-Group> ::= < AVP Header: 612 10415 >
                [ SIP-Item-Number ]
"""


def test_parse_ccf_reads_every_qualifier():
    request, answer, group = parse_ccf(SAMPLE)
    assert (request.name, request.kind, request.code, request.application_id) == (
        "Test-Request",
        "command",
        4242,
        16777216,
    )
    assert (request.request, request.proxiable, request.error) == (True, True, False)
    assert [(r.name, r.min, r.max, r.fixed) for r in request.members] == [
        ("Session-Id", 1, 1, True),
        ("Origin-Host", 1, 1, False),
        ("Host-IP-Address", 1, INFINITY, False),
        ("Route-Record", 0, INFINITY, False),
        ("User-Name", 0, 1, False),
        ("Class", 2, 5, False),
        ("Origin-State-Id", 0, 1, False),
        ("AVP", 0, INFINITY, False),
    ]
    assert request.members[-1].is_wildcard
    assert (answer.request, answer.proxiable, answer.error, answer.application_id) == (
        False,
        False,
        True,
        0,
    )
    assert (group.kind, group.code, group.vendor) == ("avp", 612, 10415)


def test_star_on_a_required_member_means_at_least_one():
    (grammar,) = parse_ccf("<X> ::= < AVP Header: 1 >\n * { User-Name }\n")
    assert (grammar.members[0].min, grammar.members[0].max) == (1, INFINITY)


@pytest.mark.parametrize(
    "text",
    [
        "<X> ::= < Diameter Header: 1, REQ >\n { User-Name ]\n",  # mismatched brackets
        "<X> ::= < Diameter Header: 1, REQ, FOO >\n { User-Name }\n",  # unknown flag
        "<X> ::= < Diameter Header: 1 >\n { User-Name }\n garbage here\n",  # unparsed text
    ],
)
def test_bad_ccf_is_a_value_error(text):
    with pytest.raises(ValueError):
        parse_ccf(text)


def test_resolve_binds_names_to_code_and_vendor():
    (grammar,) = parse_ccf(SAMPLE.split("<Test-Answer>")[0])
    grammar.resolve({name: d.key for name, d in D.by_name.items()})
    assert grammar.any_avp
    assert [rule.name for rule in grammar.fixed] == ["Session-Id"]
    assert grammar.rules[(263, 0)].fixed
    assert {rule.name for rule in grammar.required} == {
        "Session-Id",
        "Origin-Host",
        "Host-IP-Address",
        "Class",
    }
    assert grammar.position((264, 0)) == 1
    assert grammar.position((4242, 0)) == 7  # unknown AVPs go where *[ AVP ] is
    assert grammar.position((1, 0)) == 4


def test_position_without_wildcard_is_the_end():
    (grammar,) = parse_ccf("<X> ::= < AVP Header: 1 >\n { User-Name }\n [ Class ]\n")
    grammar.resolve({"User-Name": (1, 0), "Class": (25, 0)})
    assert grammar.position((999, 0)) == 2
    assert not grammar.any_avp


def test_resolve_names_the_unknown_avp():
    (grammar,) = parse_ccf("<X> ::= < AVP Header: 1 >\n { No-Such-Avp }\n")
    with pytest.raises(KeyError, match="No-Such-Avp"):
        grammar.resolve({})


def test_rule_is_a_value():
    assert Rule("AVP", 0, None, False).is_wildcard
    assert not Rule("User-Name", 1, 1, False, (1, 0)).is_wildcard
    assert Rule("User-Name", 1, 1, False) == Rule("User-Name", 1, 1, False)


# -- the default dictionary ---------------------------------------------------------------------


def test_cx_command_headers():
    mar = D.command("Multimedia-Auth-Request")
    maa = D.command("Multimedia-Auth-Answer")
    assert (mar.code, mar.application_id, mar.request, mar.proxiable) == (
        303,
        APPLICATION_CX,
        True,
        True,
    )
    assert (maa.code, maa.application_id, maa.request, maa.proxiable) == (
        303,
        APPLICATION_CX,
        False,
        True,
    )
    assert D.grammar_for(303, APPLICATION_CX, True) is mar
    assert D.grammar_for(303, APPLICATION_CX, False) is maa
    assert [rule.name for rule in mar.fixed] == ["Session-Id"]


def test_mar_grammar_as_in_ts_29_229():
    mar = D.command("Multimedia-Auth-Request")
    required = {rule.name for rule in mar.required}
    assert required == {
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
    }
    assert mar.any_avp
    assert mar.rules[D.avp("Proxy-Info").key].max is INFINITY


def test_base_commands_keep_application_zero():
    cer = D.command("Capabilities-Exchange-Request")
    assert (cer.code, cer.application_id, cer.request, cer.proxiable) == (257, 0, True, False)
    assert D.grammar_for(257, APPLICATION_CX, True) is cer  # RFC 6733 §2.4 fallback
    assert D.grammar_for(257, 0, False) is D.command("Capabilities-Exchange-Answer")
    assert D.grammar_for(9999, 0, True) is None


def test_answer_message_grammar():
    answer = D.command("Answer-Message")
    assert answer.error and answer.proxiable
    session = answer.rules[(263, 0)]
    assert (session.min, session.max, session.fixed) == (0, 1, True)
    assert {rule.name for rule in answer.required} == {"Origin-Host", "Origin-Realm", "Result-Code"}


def test_grouped_avps_have_their_grammar():
    assert D.check_complete() == []
    item = D.avp("SIP-Auth-Data-Item")
    assert item.key == (612, VENDOR_3GPP)
    assert item.grammar.any_avp
    assert item.grammar.required == ()
    vsai = D.avp("Vendor-Specific-Application-Id").grammar
    assert not vsai.any_avp
    assert [rule.name for rule in vsai.required] == ["Vendor-Id"]


def test_avps_are_keyed_by_code_and_vendor():
    # DOIC (vendor 0) and Cx (vendor 10415) share code numbers
    assert D.avps[(621, 0)].name == "OC-Supported-Features"
    assert D.avps[(621, VENDOR_3GPP)].name != "OC-Supported-Features"
    assert D.avps[(625, VENDOR_3GPP)].name == "Confidentiality-Key"
    assert D.avps[(625, 0)].name == "OC-Validity-Duration"


def test_dictionary_refuses_duplicates_and_bad_grammars():
    dictionary = Dictionary()
    dictionary.add_avp(1, 0, "A", DataType.Unsigned32, True)
    with pytest.raises(ValueError):
        dictionary.add_avp(1, 0, "B", DataType.Unsigned32, True)
    with pytest.raises(ValueError):
        dictionary.add_avp(2, 0, "A", DataType.Unsigned32, True)
    with pytest.raises(ValueError, match="not Grouped"):
        dictionary.add_grammars("<A> ::= < AVP Header: 1 >\n [ A ]\n")
    with pytest.raises(ValueError):
        dictionary.add_grammars("<G> ::= < AVP Header: 77 >\n [ A ]\n")
    with pytest.raises(KeyError):
        dictionary.avp("Nope")
    with pytest.raises(KeyError):
        dictionary.command("Nope")


def test_dictionary_flags_we_send():
    assert D.avp("Public-Identity").flags == 0xC0
    assert D.avp("Result-Code").flags == 0x40
    assert D.avp("Product-Name").flags == 0x00
    assert D.avp("Product-Name").m_bit_forbidden


def test_grammar_objects_hash_by_identity():
    grammar = Grammar("X", "avp", 1)
    assert {grammar: 1}[grammar] == 1
    assert grammar != Grammar("X", "avp", 1)
