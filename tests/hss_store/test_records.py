from __future__ import annotations

import sys

import pytest

from hss_store.errors import InvalidKey, InvalidRequest
from hss_store.records import PrimaryDatabase, Subscriber, check_server_name

K, OP, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cdc202d5123e20f62b6d676ac72cb318", "cd63cb71954a9f4e48a5994e37a02baf"


def test_new_derives_opc_and_hides_keys():
    sub = Subscriber.new("a@x.net", ["sip:a@x.net", "sip:a@x.net"], K, op=OP, schemes=["digest-akav1-md5"])
    assert sub.opc.hex() == OPC and sub.impus == ("sip:a@x.net",) and sub.schemes == ("Digest-AKAv1-MD5",)
    assert K not in repr(sub) and OPC not in repr(sub)
    assert sub.allows_scheme("DIGEST-AKAV1-MD5") and not sub.allows_scheme("SIP Digest") and sub.has_impu("sip:a@x.net")


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({"opc": OPC, "op": OP}, InvalidKey, "exactly one"),
        ({}, InvalidKey, "exactly one"),
        ({"opc": OPC[:-2]}, InvalidKey, "OPc must be 16 bytes"),
        ({"opc": OPC, "amf": "800"}, InvalidKey, "AMF"),
        ({"opc": OPC, "sqn": -1}, InvalidRequest, "48-bit"),
        ({"opc": OPC, "schemes": []}, InvalidRequest, "scheme"),
        ({"opc": OPC, "groups": ["a b"]}, InvalidRequest, "group"),
    ],
)
def test_new_rejects(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        Subscriber.new("a@x.net", ["sip:a@x.net"], K, **kwargs)


def test_needs_an_impu():
    with pytest.raises(InvalidRequest, match="at least one IMPU"):
        Subscriber.new("a@x.net", [], K, opc=OPC)


def test_primary_database():
    assert str(PrimaryDatabase("primary.example", "hss1.primary.example")) == "hss1.primary.example@primary.example"
    assert str(PrimaryDatabase("primary.example")) == "primary.example"


def test_server_name_refuses_exactly_what_isspace_calls_white_space():
    """check_server_name's regular expression and str.isspace() agree on every code point."""
    refused = set()
    for code in range(sys.maxunicode + 1):
        try:
            check_server_name(f"sip:scscf{chr(code)}.example")
        except InvalidRequest:
            refused.add(code)
    assert refused == {code for code in range(sys.maxunicode + 1) if chr(code).isspace()}
