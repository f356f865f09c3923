"""AKA vectors and AUTS (TS 33.102 §6.3) on the Milenage test sets."""

from __future__ import annotations

import pytest

from hss_store.aka import build_vectors, make_auts, split_rand_auts, verify_auts
from hss_store.errors import InvalidRequest, ResyncFailure
from hss_store.milenage import Milenage

K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
SQN = 0xFF9BB4D0B607
AMF = bytes.fromhex("b9b9")


def test_vector_from_ts35208_set1():
    [v] = build_vectors(Milenage(K, OPC), [SQN], AMF, [RAND])
    # AUTN = (SQN xor AK) || AMF || MAC-A with AK = aa689c648370, MAC-A = 4a9ffac354dfafb3
    assert v.autn.hex() == f"{SQN ^ 0xAA689C648370:012x}" + "b9b9" + "4a9ffac354dfafb3"
    assert v.xres.hex() == "a54211d5e3ba50bf"
    assert v.ck.hex() == "b40ba9a3c58b2a05bbf0d987b21bf8cb"
    assert v.ik.hex() == "f769bcd751044604127672711c6d3441"
    assert v.sip_authenticate == RAND + v.autn and len(v.sip_authenticate) == 32
    assert v.sip_item_number == 1 and v.sqn == SQN


def test_vectors_are_numbered_and_get_fresh_rands():
    vectors = build_vectors(Milenage(K, OPC), [1, 2, 3], AMF)
    assert [v.sip_item_number for v in vectors] == [1, 2, 3]
    assert len({v.rand for v in vectors}) == 3


def test_repr_leaves_out_the_secrets():
    [v] = build_vectors(Milenage(K, OPC), [SQN], AMF, [RAND])
    assert v.ck.hex() not in repr(v) and v.xres.hex() not in repr(v) and v.ik.hex() not in repr(v)


def test_auts_round_trip():
    m = Milenage(K, OPC)
    auts = make_auts(m, RAND, SQN)
    assert len(auts) == 14
    assert verify_auts(m, RAND + auts) == SQN


@pytest.mark.parametrize("octet", range(14))
def test_any_altered_auts_octet_fails(octet):
    m = Milenage(K, OPC)
    auts = bytearray(make_auts(m, RAND, SQN))
    auts[octet] ^= 0x01
    with pytest.raises(ResyncFailure, match="MAC-S"):
        verify_auts(m, RAND + bytes(auts))


def test_auts_from_another_key_fails():
    other = Milenage(bytes(16), OPC)
    with pytest.raises(ResyncFailure):
        verify_auts(Milenage(K, OPC), RAND + make_auts(other, RAND, SQN))


@pytest.mark.parametrize("size", [0, 29, 31])
def test_rand_auts_length(size):
    with pytest.raises(InvalidRequest, match="30 bytes"):
        split_rand_auts(bytes(size))
