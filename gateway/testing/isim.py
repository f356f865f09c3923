"""A software ISIM, for tests and demos: what a UE does with an IMS-AKA challenge.

It holds K and OPc (as the real card does) and, given RAND and AUTN, checks MAC-A and the
freshness of SQN (TS 33.102 §6.3.3, Annex C.2: one highest SEQ per IND slot), and answers
with RES, CK and IK, or with AUTS when SQN is out of range (§6.3.5). Independent of the
network side: it recomputes everything from K with hss_store's Milenage (TS 35.206), which
is checked against all six TS 35.208 test sets.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from hss_store import sqn as sqnmod
from hss_store.aka import make_auts
from hss_store.milenage import Milenage


@dataclass(frozen=True, slots=True)
class Response:
    """What the ISIM answers: ``result`` is "ok", "MAC failure" or "synch failure"."""

    result: str
    res: bytes = b""
    ck: bytes = b""
    ik: bytes = b""
    auts: bytes = b""  # on a synch failure: AUTS for SIP-Authorization = RAND || AUTS


class Isim:
    def __init__(self, k: bytes, opc: bytes, seq_ms: int = 0) -> None:
        self.milenage = Milenage(k, opc)
        self.highest = [seq_ms] * (1 << sqnmod.IND_BITS)  # the highest SEQ accepted, per IND slot

    def challenge(self, rand: bytes, autn: bytes) -> Response:
        """RAND (16 bytes) and AUTN (16 bytes: SQN^AK, AMF, MAC-A) from the 401's nonce."""
        ak = self.milenage.compute(rand, bytes(6), autn[6:8]).ak
        sqn = int.from_bytes(autn[:6], "big") ^ int.from_bytes(ak, "big")
        out = self.milenage.compute(rand, sqnmod.to_bytes(sqn), autn[6:8])
        if not hmac.compare_digest(out.mac_a, autn[8:16]):
            return Response("MAC failure")
        seq, ind = sqnmod.split(sqn)
        if seq <= self.highest[ind]:
            highest = max(self.highest)
            return Response("synch failure", auts=make_auts(self.milenage, rand, sqnmod.join(highest, 0)))
        self.highest[ind] = seq
        return Response("ok", out.res, out.ck, out.ik)

    def advance(self, seq: int) -> None:
        """As if the card had seen SEQ ``seq`` elsewhere (an SQN ahead of the network's)."""
        self.highest = [max(value, seq) for value in self.highest]
