"""SQN generation and re-synchronisation rules (TS 33.102 Annex C), checked against a USIM model."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hss_store import sqn as sqnmod
from hss_store.errors import InvalidRequest, SqnExhausted


class UsimSqnModel:
    """The USIM side of Annex C.2: an array SEQ_MS[IND], accept when SEQ > SEQ_MS[IND]."""

    def __init__(self, ind_bits: int = sqnmod.IND_BITS) -> None:
        self.ind_bits = ind_bits
        self.seq_ms = [0] * (1 << ind_bits)

    def accept(self, sqn: int) -> bool:
        seq, ind = sqnmod.split(sqn, self.ind_bits)
        if seq <= self.seq_ms[ind]:
            return False
        self.seq_ms[ind] = seq
        return True

    @property
    def sqn_ms(self) -> int:
        """Highest accepted SQN (Annex C.2.1), as reported in AUTS."""
        ind = max(range(len(self.seq_ms)), key=lambda i: self.seq_ms[i])
        return sqnmod.join(self.seq_ms[ind], ind, self.ind_bits)


def test_next_sqns_increments_seq_and_cycles_ind():
    sqns = sqnmod.next_sqns(0, 40)
    seqs, inds = zip(*(sqnmod.split(s) for s in sqns), strict=True)
    assert list(seqs) == list(range(1, 41))
    assert list(inds) == [i % 32 for i in range(1, 41)]
    assert sqns == sorted(set(sqns))


@given(st.integers(0, (1 << 40)), st.integers(1, 32))
def test_next_sqns_always_strictly_increasing(last, count):
    sqns = sqnmod.next_sqns(last, count)
    assert len(sqns) == count and sqns[0] > last
    assert all(a < b for a, b in zip(sqns, sqns[1:], strict=False))


def test_usim_accepts_batches_used_out_of_order():
    """A serving network may use the vectors of several batches in any order (Annex C.1.2)."""
    usim, last, rng = UsimSqnModel(), 0, random.Random(7)
    for _ in range(200):
        batch = sqnmod.next_sqns(last, 5)
        last = batch[-1]
        rng.shuffle(batch)
        assert all(usim.accept(s) for s in batch)


def test_usim_rejects_a_reused_sqn():
    usim = UsimSqnModel()
    [sqn] = sqnmod.next_sqns(0, 1)
    assert usim.accept(sqn) and not usim.accept(sqn)


def test_after_resync_moves_past_sqn_ms_and_never_back():
    he = sqnmod.join(10, 3)
    ms = sqnmod.join(5000, 17)
    moved = sqnmod.after_resync(he, ms)
    assert sqnmod.split(moved)[0] == 5000
    usim = UsimSqnModel()
    usim.seq_ms[17] = 5000
    assert all(usim.accept(s) for s in sqnmod.next_sqns(moved, 32))
    # SQN_MS behind the HE: the HE keeps its counter (going back would reissue SQNs)
    assert sqnmod.after_resync(ms, he) == ms


def test_exhaustion_is_an_error():
    with pytest.raises(SqnExhausted, match="new K"):
        sqnmod.next_sqns(sqnmod.SQN_MAX - 31, 2)


@pytest.mark.parametrize("bad", [-1, 1 << 48, True, "1"])
def test_check_sqn(bad):
    with pytest.raises(InvalidRequest, match="48-bit"):
        sqnmod.check_sqn(bad)
