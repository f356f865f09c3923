"""MILENAGE (3GPP TS 35.206) on the AES-128 of ``cryptography``.

TS 35.206 §4.1 defines, with E_K the 128-bit block cipher (Rijndael = AES-128, §4.2)::

    OPc  = OP xor E_K(OP)
    TEMP = E_K(RAND xor OPc)
    IN1  = SQN || AMF || SQN || AMF
    OUT1 = E_K(TEMP xor rot(IN1 xor OPc, r1) xor c1) xor OPc
    OUTi = E_K(rot(TEMP xor OPc, ri) xor ci) xor OPc           for i = 2..5

    f1 = MAC-A = OUT1[0..63]     f1* = MAC-S = OUT1[64..127]
    f2 = RES   = OUT2[64..127]   f5  = AK    = OUT2[0..47]
    f3 = CK    = OUT3            f4  = IK    = OUT4          f5* = AK = OUT5[0..47]

with r1..r5 = 64, 0, 32, 64, 96 and c1..c5 = 0, 1, 2, 4, 8 (the default constants).
Values are handled as 128-bit integers; the five OUTi blocks go through the cipher in a
single call, so one vector costs two calls into OpenSSL.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import AES
from cryptography.hazmat.primitives.ciphers.modes import ECB

from hss_store.errors import InvalidKey, InvalidRequest

_MASK128 = (1 << 128) - 1
# TS 35.206 §4.1: rotation amounts and constants (c_i has bit i-1 set in the last octet).
R1, R2, R3, R4, R5 = 64, 0, 32, 64, 96
C1, C2, C3, C4, C5 = 0, 1, 2, 4, 8


def _rot(x: int, r: int) -> int:
    """TS 35.206 §4.1 rot(x, r): cyclic rotation of 128-bit x by r bits towards the MSB."""
    r %= 128
    return ((x << r) | (x >> (128 - r))) & _MASK128 if r else x


_CACHE = threading.local()
# subscribers' ciphers per thread (about 1 KiB each): the subscriber just seen (a
# re-synchronisation follows its failed authentication within seconds), not a working set:
# each entry is two objects the cycle collector walks until they are dropped, and 10,000
# of them cost a 9 ms collection every few seconds at 5,000 MARs/s (bench/RESULTS.md)
_CACHE_SIZE = 1_024


def _check_length(name: str, value: bytes, length: int) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != length:
        size = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise InvalidKey(f"{name} must be {length} bytes ({length * 2} hex digits), got {size}")


_MODE = ECB()  # noqa: S305 - the block function, TS 35.206 §4.2 (a mode holds no state: one for all)
_PROBE = bytes(range(16))


def _public_context(k: bytes):  # noqa: ANN202 - cryptography's CipherContext type is private
    return Cipher(AES(bytes(k)), _MODE).encryptor()


def _context_factory():  # noqa: ANN202
    """How a subscriber's cipher context is made: ``Cipher(...).encryptor()``, or the call
    it ends in without its checks of the algorithm and mode, which are constant here (AES,
    ECB, no tag; AES itself still checks the key). Set up for every MAR of a subscriber not
    in the cache, so it counts: about 1.8 us instead of 8.3 on cryptography 49. That call
    is cryptography's internal binding, so it is used only where it exists and encrypts a
    known block exactly as the public path does; otherwise the public path it is."""
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl

        create = rust_openssl.ciphers.create_encryption_ctx

        def direct(k: bytes):  # noqa: ANN202
            return create(AES(bytes(k)), _MODE)

        agrees = direct(_PROBE).update(_PROBE) == _public_context(_PROBE).update(_PROBE)
    except (ImportError, AttributeError, TypeError, ValueError):  # another cryptography's layout
        return _public_context
    return direct if agrees else _public_context


_ecb = _context_factory()


def compute_opc(k: bytes, op: bytes) -> bytes:
    """OPc = OP xor E_K(OP) (TS 35.206 §4.1)."""
    _check_length("K", k, 16)
    _check_length("OP", op, 16)
    e = _ecb(k).update(bytes(op))
    return bytes(a ^ b for a, b in zip(e, op, strict=True))


@dataclass(frozen=True, slots=True)
class MilenageOutput:
    """All outputs of f1..f5* for one RAND (TS 35.206 §4.1), as bytes."""

    mac_a: bytes  # f1, 8 octets
    mac_s: bytes  # f1*, 8 octets
    res: bytes  # f2, 8 octets
    ck: bytes  # f3, 16 octets
    ik: bytes  # f4, 16 octets
    ak: bytes  # f5, 6 octets
    ak_star: bytes  # f5*, 6 octets


class Milenage:
    """The MILENAGE functions for one subscriber (K, OPc)."""

    __slots__ = ("_enc", "_opc")

    def __init__(self, k: bytes, opc: bytes) -> None:
        _check_length("K", k, 16)
        _check_length("OPc", opc, 16)
        self._enc = _ecb(k)
        self._opc = int.from_bytes(opc, "big")

    @classmethod
    def from_op(cls, k: bytes, op: bytes) -> Milenage:
        return cls(k, compute_opc(k, op))

    @classmethod
    def cached(cls, k: bytes, opc: bytes) -> Milenage:
        """The Milenage of (K, OPc), kept per thread for the next request of the same
        subscriber: setting up the AES key schedule costs as much as a vector. The cipher
        context is not shared between threads (the PostgreSQL store calls from several)."""
        cache: dict[bytes, Milenage] | None = getattr(_CACHE, "milenages", None)
        if cache is None:
            cache = _CACHE.milenages = {}
        key = bytes(k) + bytes(opc)
        found = cache.get(key)
        if found is None:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            found = cache[key] = cls(k, opc)
        return found

    def _e(self, x: int) -> int:
        return int.from_bytes(self._enc.update(x.to_bytes(16, "big")), "big")

    def _temp(self, rand: bytes) -> int:
        _check_length("RAND", rand, 16)
        return self._e(int.from_bytes(rand, "big") ^ self._opc)

    def _out1(self, temp: int, sqn: bytes, amf: bytes) -> int:
        _check_length("SQN", sqn, 6)
        _check_length("AMF", amf, 2)
        in1 = int.from_bytes(sqn + amf + sqn + amf, "big")
        return self._e(temp ^ _rot(in1 ^ self._opc, R1) ^ C1) ^ self._opc

    def f1(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-A, network authentication function (TS 35.206 §4.1)."""
        return (self._out1(self._temp(rand), sqn, amf) >> 64).to_bytes(8, "big")

    def f1_star(self, rand: bytes, sqn: bytes, amf: bytes) -> bytes:
        """MAC-S, re-synchronisation message authentication (TS 35.206 §4.1)."""
        return (self._out1(self._temp(rand), sqn, amf) & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")

    def f5_star(self, rand: bytes) -> bytes:
        """AK for re-synchronisation (TS 35.206 §4.1)."""
        temp = self._temp(rand)
        out5 = self._e(_rot(temp ^ self._opc, R5) ^ C5) ^ self._opc
        return (out5 >> 80).to_bytes(6, "big")

    def compute(self, rand: bytes, sqn: bytes, amf: bytes) -> MilenageOutput:
        """f1, f1*, f2, f3, f4, f5 and f5* at once (two cipher calls)."""
        _check_length("SQN", sqn, 6)
        _check_length("AMF", amf, 2)
        opc = self._opc
        temp = self._temp(rand)
        t = temp ^ opc
        in1 = int.from_bytes(sqn + amf + sqn + amf, "big")
        blocks = b"".join(
            x.to_bytes(16, "big")
            for x in (
                temp ^ _rot(in1 ^ opc, R1) ^ C1,
                t ^ C2,  # R2 = 0
                _rot(t, R3) ^ C3,
                _rot(t, R4) ^ C4,
                _rot(t, R5) ^ C5,
            )
        )
        e = self._enc.update(blocks)
        out1, out2, out3, out4, out5 = (int.from_bytes(e[i : i + 16], "big") ^ opc for i in range(0, 80, 16))
        return MilenageOutput(
            mac_a=(out1 >> 64).to_bytes(8, "big"),
            mac_s=(out1 & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"),
            res=(out2 & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"),
            ck=out3.to_bytes(16, "big"),
            ik=out4.to_bytes(16, "big"),
            ak=(out2 >> 80).to_bytes(6, "big"),
            ak_star=(out5 >> 80).to_bytes(6, "big"),
        )

    def vector_parts(
        self, rands: list[bytes], sqns: list[int], amf: bytes
    ) -> list[tuple[bytes, bytes, bytes, bytes]]:
        """(AUTN, XRES, CK, IK) per (RAND, SQN): TS 33.102 §6.3.2 in two cipher calls per batch.

        AUTN = (SQN xor AK) || AMF || MAC-A; only OUT1..OUT4 are needed (no f5*). The
        rotations by r1 = 64, r3 = 32 and r4 = 64 are written out (one vector per MAR of
        every registration: function calls count here); c1 = 0.
        """
        _check_length("AMF", amf, 2)
        if any(len(r) != 16 for r in rands):
            raise InvalidKey("RAND must be 16 bytes")
        opc = self._opc
        update = self._enc.update
        amf_int = int.from_bytes(amf, "big")
        temps = update(b"".join((int.from_bytes(r, "big") ^ opc).to_bytes(16, "big") for r in rands))
        blocks: list[bytes] = []
        for i, sqn in enumerate(sqns):
            temp = int.from_bytes(temps[16 * i : 16 * i + 16], "big")
            t = temp ^ opc
            half = (sqn << 16) | amf_int
            x = ((half << 64) | half) ^ opc
            blocks += (
                (temp ^ (((x << 64) | (x >> 64)) & _MASK128)).to_bytes(16, "big"),  # rot(., r1) ^ c1
                (t ^ C2).to_bytes(16, "big"),
                ((((t << 32) | (t >> 96)) & _MASK128) ^ C3).to_bytes(16, "big"),
                ((((t << 64) | (t >> 64)) & _MASK128) ^ C4).to_bytes(16, "big"),
            )
        e = update(b"".join(blocks))
        result = []
        for i, sqn in enumerate(sqns):
            base = 64 * i
            out1 = int.from_bytes(e[base : base + 16], "big") ^ opc
            out2 = int.from_bytes(e[base + 16 : base + 32], "big") ^ opc
            result.append((
                (((sqn ^ (out2 >> 80)) << 80) | (amf_int << 64) | (out1 >> 64)).to_bytes(16, "big"),  # AUTN
                (out2 & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big"),  # XRES = f2
                (int.from_bytes(e[base + 32 : base + 48], "big") ^ opc).to_bytes(16, "big"),  # CK = f3
                (int.from_bytes(e[base + 48 : base + 64], "big") ^ opc).to_bytes(16, "big"),  # IK = f4
            ))
        return result


def require_count(count: int, maximum: int) -> int:
    """Validate a number of vectors requested (SIP-Number-Auth-Items)."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= maximum:
        raise InvalidRequest(f"number of vectors {count!r} is out of range; ask for 1 to {maximum}")
    return count
