"""A software ISIM, for tests and demos: what a UE does with an IMS-AKA challenge.

It holds K and OPc (as the real card does) and, given RAND and AUTN, checks MAC-A and the
freshness of SQN (TS 33.102 §6.3.3, Annex C.2: one highest SEQ per IND slot), and answers
with RES, CK and IK, or with AUTS when SQN is out of range (§6.3.5).

Its MILENAGE (TS 35.206 §4.1) is its own, written apart from hss_store's on purpose: the
vectors an HSS hands out are checked by an independent implementation, on bytes where
hss_store works on integers (tests check both against the TS 35.208 test sets).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

# TS 35.206 §4.1: rotations (in bytes) and constants c1..c5 (only the last byte of c2..c5 is set)
_ROTATIONS = (8, 0, 4, 8, 12)
_CONSTANTS = tuple(bytes(15) + bytes([value]) for value in (0, 1, 2, 4, 8))
IND_BITS = 5  # TS 33.102 Annex C.3.2: the IND part of SQN, 32 slots
RESYNC_AMF = bytes(2)  # TS 33.102 §6.3.3: the AMF of AUTS's MAC-S


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _rotate(block: bytes, count: int) -> bytes:
    return block[count:] + block[:count]


@dataclass(frozen=True, slots=True)
class Milenage:
    """f1, f1*, f2, f3, f4, f5, f5* of TS 35.206 §4.1 on byte strings."""

    k: bytes
    opc: bytes

    def _e(self, block: bytes) -> bytes:
        encryptor = Cipher(algorithms.AES(self.k), modes.ECB()).encryptor()
        return encryptor.update(block) + encryptor.finalize()

    def _out(self, rand: bytes, n: int, in1: bytes | None = None) -> bytes:
        temp = self._e(_xor(rand, self.opc))
        if n == 0:  # OUT1: temp xor rot(IN1 xor OPc, r1) xor c1
            seed = _xor(temp, _rotate(_xor(in1, self.opc), _ROTATIONS[0]))  # type: ignore[arg-type]
        else:  # OUT2..OUT5: rot(temp xor OPc, rn) xor cn
            seed = _rotate(_xor(temp, self.opc), _ROTATIONS[n])
        return _xor(self._e(_xor(seed, _CONSTANTS[n])), self.opc)

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> tuple[bytes, bytes]:
        """(MAC-A, MAC-S)."""
        out1 = self._out(rand, 0, sqn + amf + sqn + amf)
        return out1[:8], out1[8:]

    def f2345(self, rand: bytes) -> tuple[bytes, bytes, bytes, bytes, bytes]:
        """(RES, CK, IK, AK, AK*)."""
        out2 = self._out(rand, 1)
        return out2[8:], self._out(rand, 2), self._out(rand, 3), out2[:6], self._out(rand, 4)[:6]


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
        self.highest = [seq_ms] * (1 << IND_BITS)  # the highest SEQ accepted, per IND slot

    def challenge(self, rand: bytes, autn: bytes) -> Response:
        """RAND (16 bytes) and AUTN (16 bytes: SQN xor AK, AMF, MAC-A) from the 401's nonce."""
        res, ck, ik, ak, _ = self.milenage.f2345(rand)
        sqn = _xor(autn[:6], ak)
        mac_a, _ = self.milenage.f1(rand, sqn, autn[6:8])
        if not hmac.compare_digest(mac_a, autn[8:16]):
            return Response("MAC failure")
        value = int.from_bytes(sqn, "big")
        seq, ind = value >> IND_BITS, value & ((1 << IND_BITS) - 1)
        if seq <= self.highest[ind]:
            return Response("synch failure", auts=self.auts(rand))
        self.highest[ind] = seq
        return Response("ok", res, ck, ik)

    def auts(self, rand: bytes) -> bytes:
        """AUTS = SQN_MS xor AK*, MAC-S (TS 33.102 §6.3.3), SQN_MS the highest SEQ seen."""
        sqn_ms = (max(self.highest) << IND_BITS).to_bytes(6, "big")
        _, mac_s = self.milenage.f1(rand, sqn_ms, RESYNC_AMF)
        ak_star = self.milenage.f2345(rand)[4]
        return _xor(sqn_ms, ak_star) + mac_s

    def advance(self, seq: int) -> None:
        """As if the card had seen SEQ ``seq`` elsewhere (an SQN ahead of the network's)."""
        self.highest = [max(value, seq) for value in self.highest]
