from __future__ import annotations

import re

import pytest

from hss_store.allocation import AllocationPolicy, expand_range, random_token, request_key
from hss_store.errors import InvalidIdentity, InvalidRequest


def test_random_policy_generates_matching_pairs():
    policy = AllocationPolicy("inbound", "random", "mig-<random>@partner.example", "sip:mig-<random>@partner.example")
    assert policy.impi_pattern == "mig-{random}@partner.example"
    impi, impu = policy.generate()
    assert re.fullmatch(r"mig-[a-z2-7]{16}@partner\.example", impi) and impu == "sip:" + impi
    assert len({policy.generate() for _ in range(1000)}) == 1000


def test_random_token_is_80_bits():
    assert len(random_token()) == 16 and len({random_token() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    "impi, impu, error",
    [
        ("mig@partner.example", "sip:mig-{random}@partner.example", InvalidRequest),
        ("mig-{random}{random}@p.example", "sip:mig-{random}@p.example", InvalidRequest),
        ("mig-{random}", "sip:mig-{random}@p.example", InvalidIdentity),
        ("mig-{random}@p.example", "mig-{random}@p.example", InvalidIdentity),
    ],
)
def test_bad_patterns(impi, impu, error):
    with pytest.raises(error):
        AllocationPolicy("inbound", "random", impi, impu)


def test_other_policy_checks():
    with pytest.raises(InvalidRequest, match="direction"):
        AllocationPolicy("sideways")
    with pytest.raises(InvalidRequest, match="TTL"):
        AllocationPolicy("inbound", "pool", ttl_seconds=0)
    with pytest.raises(InvalidRequest, match="no patterns"):
        AllocationPolicy("inbound", "pool", "x-{random}@p.example")
    with pytest.raises(InvalidRequest, match="mode"):
        AllocationPolicy("inbound", "lottery")


def test_expand_range():
    assert expand_range("m{n}@p.example", "sip:m{n}@p.example", 8, 10, width=3) == [
        ("m008@p.example", "sip:m008@p.example"),
        ("m009@p.example", "sip:m009@p.example"),
        ("m010@p.example", "sip:m010@p.example"),
    ]
    with pytest.raises(InvalidRequest, match=r"\{n\}"):
        expand_range("m@p.example", "sip:m{n}@p.example", 1, 2)
    with pytest.raises(InvalidRequest, match="range"):
        expand_range("m{n}@p.example", "sip:m{n}@p.example", 5, 4)


def test_request_key_is_stable_and_separates_fields():
    assert request_key("a", "b") == request_key("a", "b")
    assert request_key("ab", "") != request_key("a", "b")
    assert -(1 << 63) <= request_key("x") < (1 << 63)
