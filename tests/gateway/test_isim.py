"""gateway.testing.isim: its own MILENAGE on the TS 35.208 test sets, and the UE's checks."""

import pytest

from gateway.testing.isim import Isim, Milenage
from hss_store import sqn as sqnmod
from hss_store.aka import build_vectors, verify_auts
from hss_store.milenage import Milenage as HssMilenage
from hss_store.ts35208 import TEST_SETS


@pytest.mark.parametrize("row", TEST_SETS, ids=[f"TS35.208-set{i}" for i in range(1, 7)])
def test_the_isims_milenage_gives_the_test_sets_outputs(row):
    k, rand, sqn, amf, _, opc, f1, f1s, f2, f5, f3, f4, f5s = (bytes.fromhex(value) for value in row)
    milenage = Milenage(k, opc)
    assert milenage.f1(rand, sqn, amf) == (f1, f1s)
    assert milenage.f2345(rand) == (f2, f3, f4, f5, f5s)


def test_it_accepts_fresh_vectors_once_and_asks_to_resynchronise_on_stale_ones():
    k, opc = bytes.fromhex(TEST_SETS[0][0]), bytes.fromhex(TEST_SETS[0][5])
    isim = Isim(k, opc)
    vector = build_vectors(HssMilenage(k, opc), [sqnmod.join(5, 1)], b"\x80\x00")[0]
    first = isim.challenge(vector.rand, vector.autn)
    assert first.result == "ok" and (first.res, first.ck, first.ik) == (vector.xres, vector.ck, vector.ik)
    again = isim.challenge(vector.rand, vector.autn)  # a replay: SQN not fresh
    assert again.result == "synch failure"
    assert verify_auts(HssMilenage(k, opc), vector.rand + again.auts) == sqnmod.join(5, 0)  # MAC-S verifies
    forged = vector.autn[:8] + bytes(8)
    assert isim.challenge(vector.rand, forged).result == "MAC failure"
