"""Sequence numbers in the HE/AuC (3GPP TS 33.102 Annex C).

SQN (48 bits) = SEQ || IND (Annex C.1.1). IND (5 bits, the length Annex C.3.2
recommends) selects one of 32 slots of the USIM's array SEQ_MS[IND]; the USIM accepts a
SQN when SEQ > SEQ_MS[IND] (Annex C.2.2). The HE keeps one counter and, per vector,
increments SEQ and moves IND on cyclically (Annex C.1.2, C.3.2), so every SQN it issues
is strictly larger than the one before and, when a batch of vectors is used out of
order by the serving network, each slot still sees increasing SEQ values.

The store keeps only the last SQN issued per subscriber (``sqn``): the next vector uses
``next_sqns(sqn, n)``, and the new last value is committed before a vector leaves.
"""

from __future__ import annotations

from hss_store.errors import InvalidRequest, SqnExhausted

SQN_BITS = 48
IND_BITS = 5  # TS 33.102 Annex C.3.2
SQN_MAX = (1 << SQN_BITS) - 1


def split(sqn: int, ind_bits: int = IND_BITS) -> tuple[int, int]:
    """(SEQ, IND) of a SQN (TS 33.102 Annex C.1.1)."""
    return sqn >> ind_bits, sqn & ((1 << ind_bits) - 1)


def join(seq: int, ind: int, ind_bits: int = IND_BITS) -> int:
    """SQN = SEQ || IND (TS 33.102 Annex C.1.1)."""
    return (seq << ind_bits) | ind


def check_sqn(sqn: int) -> int:
    """Validate a 48-bit SQN given by an operator (for instance at provisioning)."""
    if not isinstance(sqn, int) or isinstance(sqn, bool) or not 0 <= sqn <= SQN_MAX:
        raise InvalidRequest(f"SQN {sqn!r} is out of range; it is a 48-bit value, 0 to {SQN_MAX}")
    return sqn


def next_sqns(last: int, count: int, ind_bits: int = IND_BITS) -> list[int]:
    """The ``count`` SQNs following ``last``: SEQ + 1 each time, IND cyclic (Annex C.1.2, C.3.2)."""
    seq, ind = split(last, ind_bits)
    modulus = 1 << ind_bits
    if join(seq + count, 0, ind_bits) > SQN_MAX:
        raise SqnExhausted(
            f"SEQ {seq} + {count} passes the 2^{SQN_BITS - ind_bits} limit (TS 33.102 Annex C.1.2); "
            "give the subscriber a new K or reset its SQN after re-personalising the ISIM"
        )
    return [join(seq + i, (ind + i) % modulus, ind_bits) for i in range(1, count + 1)]


def after_resync(sqn_he: int, sqn_ms: int, ind_bits: int = IND_BITS) -> int:
    """The HE's last SQN after a re-synchronisation reporting SQN_MS (TS 33.102 §6.3.5).

    SQN_MS is the highest SQN the USIM accepted (Annex C.2.1). The next vector must have a
    SEQ above SEQ_MS, so SEQ_HE moves up to SEQ_MS when it is behind. It never moves down:
    going back would hand out a SQN already issued, which the HE must never do (Annex C.1.2).
    """
    seq_he, ind_he = split(sqn_he, ind_bits)
    seq_ms, _ = split(sqn_ms, ind_bits)
    return join(max(seq_he, seq_ms), ind_he, ind_bits)


def to_bytes(sqn: int) -> bytes:
    """SQN as the 6 octets that enter f1 and AUTN."""
    return sqn.to_bytes(6, "big")
