from __future__ import annotations

import pytest

from hss_store.errors import InvalidIdentity
from hss_store.identities import impi_realm, validate_impi, validate_impu, validate_realm


@pytest.mark.parametrize(
    "impi", ["alice@ims.example.net", "001010000000001@ims.mnc001.mcc001.3gppnetwork.org", "a.b+c_d-e@x", "mig-abc@partner.example"]
)
def test_valid_impi(impi):
    assert validate_impi(impi) == impi


@pytest.mark.parametrize(
    "impi, fragment",
    [
        ("", "empty"),
        ("alice", "user@realm"),
        ("@realm.net", "user@realm"),
        ("alice@", "user@realm"),
        ("alice@bad_realm", "invalid realm"),
        ("alice@-x.net", "invalid realm"),
        ("ali ce@x.net", "white space"),
        (" alice@x.net", "white space"),
        ("al<ice@x.net", "invalid user"),
        (".alice@x.net", "invalid user"),
        ("a" * 300 + "@x.net", "limit"),
        ("sip:alice@x.net", "invalid user"),
    ],
)
def test_invalid_impi(impi, fragment):
    with pytest.raises(InvalidIdentity, match=fragment):
        validate_impi(impi)


@pytest.mark.parametrize(
    "impu",
    [
        "sip:alice@ims.example.net",
        "sips:alice@ims.example.net",
        "sip:+4930123456@ims.example.net;user=phone",
        "sip:ims.example.net",
        "sip:bob@10.0.0.1:5060",
        "tel:+4930123456",
        "tel:+1-201-555-0123",
        "tel:7042;phone-context=example.com",
    ],
)
def test_valid_impu(impu):
    assert validate_impu(impu) == impu


@pytest.mark.parametrize(
    "impu, fragment",
    [
        ("alice@ims.example.net", "sip:, sips: or tel:"),
        ("http://x", "sip:, sips: or tel:"),
        ("sip:", "not a valid SIP URI"),
        ("sip:alice@", "not a valid SIP URI"),
        ("sip:al ice@x.net", "white space"),
        ("tel:", "not a valid tel URI"),
        ("tel:abc", "not a valid tel URI"),
        ("tel:7042", "phone-context"),
        (None, "not a string"),
    ],
)
def test_invalid_impu(impu, fragment):
    with pytest.raises(InvalidIdentity, match=fragment):
        validate_impu(impu)


def test_realm():
    assert impi_realm("alice@ims.example.net") == "ims.example.net"
    assert validate_realm("primary.example") == "primary.example"
    with pytest.raises(InvalidIdentity, match="domain name"):
        validate_realm("not_a_realm")
