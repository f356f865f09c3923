"""MILENAGE against the six test sets of 3GPP TS 35.208 §4.3 (identical to TS 35.207 §4-§6)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hss_store.errors import InvalidKey
from hss_store.milenage import Milenage, _rot, compute_opc
from hss_store.ts35208 import TEST_SETS

IDS = [f"TS35.208-set{i}" for i in range(1, 7)]


def _unhex(*values: str) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


@pytest.mark.parametrize("row", TEST_SETS, ids=IDS)
def test_opc(row):
    k, _, _, _, op, opc = _unhex(*row[:6])
    assert compute_opc(k, op) == opc


@pytest.mark.parametrize("row", TEST_SETS, ids=IDS)
def test_functions_one_by_one(row):
    k, rand, sqn, amf, op, opc, f1, f1s, f2, f5, f3, f4, f5s = _unhex(*row)
    m = Milenage(k, opc)
    assert m.f1(rand, sqn, amf) == f1
    assert m.f1_star(rand, sqn, amf) == f1s
    assert m.f5_star(rand) == f5s


@pytest.mark.parametrize("row", TEST_SETS, ids=IDS)
def test_compute_all_outputs(row):
    k, rand, sqn, amf, op, opc, f1, f1s, f2, f5, f3, f4, f5s = _unhex(*row)
    out = Milenage.from_op(k, op).compute(rand, sqn, amf)
    assert (out.mac_a, out.mac_s, out.res, out.ak, out.ck, out.ik, out.ak_star) == (f1, f1s, f2, f5, f3, f4, f5s)


def test_vector_parts_batch_matches_the_test_sets():
    """The batched fast path gives AUTN = (SQN xor AK) || AMF || MAC-A, XRES, CK, IK of every set."""
    for row in TEST_SETS:
        k, rand, sqn, amf, op, opc, f1, f1s, f2, f5, f3, f4, f5s = _unhex(*row)
        m = Milenage(k, opc)
        sqn_int = int.from_bytes(sqn, "big")
        [(autn, xres, ck, ik)] = m.vector_parts([rand], [sqn_int], amf)
        concealed = bytes(a ^ b for a, b in zip(sqn, f5, strict=True))
        assert (autn, xres, ck, ik) == (concealed + amf + f1, f2, f3, f4)
        # in a batch of several, each vector is independent of its neighbours
        parts = m.vector_parts([rand, bytes(16), rand], [sqn_int, 1, sqn_int], amf)
        assert parts[0] == parts[2] == (autn, xres, ck, ik)


@given(st.integers(0, (1 << 128) - 1), st.integers(0, 127))
def test_rot_is_a_cyclic_rotation(x, r):
    bits = format(x, "0128b")
    assert _rot(x, r) == int(bits[r:] + bits[:r], 2)


@pytest.mark.parametrize("k, opc", [(b"\0" * 15, b"\0" * 16), (b"\0" * 16, b"\0" * 17), ("00" * 16, b"\0" * 16)])
def test_wrong_key_lengths_are_refused(k, opc):
    with pytest.raises(InvalidKey, match="must be 16 bytes"):
        Milenage(k, opc)


def test_cached_milenage_is_kept_per_thread_and_per_keys():
    import threading

    k, opc = bytes.fromhex(TEST_SETS[0][0]), bytes.fromhex(TEST_SETS[0][5])
    first = Milenage.cached(k, opc)
    assert Milenage.cached(k, opc) is first
    assert Milenage.cached(bytes.fromhex(TEST_SETS[1][0]), opc) is not first
    other: list[Milenage] = []
    thread = threading.Thread(target=lambda: other.append(Milenage.cached(k, opc)))
    thread.start()
    thread.join()
    assert other[0] is not first  # cipher contexts are not shared between threads
    rand, sqn, amf = (bytes.fromhex(value) for value in TEST_SETS[0][1:4])
    assert first.f1(rand, sqn, amf) == other[0].f1(rand, sqn, amf) == bytes.fromhex(TEST_SETS[0][6])


def test_the_direct_cipher_context_is_used_and_encrypts_as_the_public_api():
    """cryptography's internal call is used on the cryptography this project pins (a silent
    fall back to the slower public path would show here), and gives the same blocks."""
    import os

    from hss_store import milenage

    assert milenage._ecb is not milenage._public_context
    for _ in range(200):
        k, blocks = os.urandom(16), os.urandom(16 * 5)
        assert milenage._ecb(k).update(blocks) == milenage._public_context(k).update(blocks)


@given(st.binary(min_size=16, max_size=16), st.binary(min_size=16, max_size=16),
       st.lists(st.tuples(st.binary(min_size=16, max_size=16), st.integers(0, (1 << 48) - 1)), min_size=1, max_size=4),
       st.binary(min_size=2, max_size=2))
def test_vector_parts_agree_with_compute(k, opc, pairs, amf):
    """The written-out rotations of vector_parts against §4.1 as ``compute`` follows it."""
    m = Milenage(k, opc)
    parts = m.vector_parts([rand for rand, _ in pairs], [sqn for _, sqn in pairs], amf)
    for (rand, sqn), (autn, xres, ck, ik) in zip(pairs, parts, strict=True):
        out = m.compute(rand, sqn.to_bytes(6, "big"), amf)
        concealed = (sqn ^ int.from_bytes(out.ak, "big")).to_bytes(6, "big")
        assert (autn, xres, ck, ik) == (concealed + amf + out.mac_a, out.res, out.ck, out.ik)
