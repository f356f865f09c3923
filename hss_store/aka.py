"""IMS-AKA authentication vectors and re-synchronisation (TS 33.102 §6.3, TS 33.203 §6.1).

- Vector (TS 33.102 §6.3.2): RAND from a CSPRNG, XRES = f2, CK = f3, IK = f4, AK = f5,
  AUTN = (SQN xor AK) || AMF || MAC-A with MAC-A = f1(SQN, RAND, AMF).
- SIP-Authenticate (TS 29.229 §6.3.10) = RAND || AUTN; SIP-Authorization in a re-sync
  request (TS 29.229 §6.3.11) = RAND || AUTS.
- Re-synchronisation (TS 33.102 §6.3.5): AUTS = (SQN_MS xor AK*) || MAC-S with
  AK* = f5*(RAND) and MAC-S = f1*(SQN_MS, RAND, AMF*), AMF* = 0x0000 (§6.3.3).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Sequence
from typing import NamedTuple

from hss_store import sqn as sqnmod
from hss_store.errors import InvalidKey, InvalidRequest, ResyncFailure
from hss_store.milenage import Milenage

RAND_LENGTH = 16
AUTS_LENGTH = 14
RESYNC_DUMMY_AMF = b"\x00\x00"  # TS 33.102 §6.3.3


class AkaVector(NamedTuple):
    """One authentication vector, as a Cx SIP-Auth-Data-Item needs it (TS 29.229 §6.3.13).

    A NamedTuple (not a dataclass) because building it is on the per-vector hot path;
    ``repr`` leaves out XRES, CK and IK so that logs do not carry them.
    """

    sip_item_number: int  # TS 29.229 §6.3.15, 1-based order in the answer
    rand: bytes
    autn: bytes
    xres: bytes  # SIP-Authorization in the MAA (TS 29.229 §6.3.11)
    ck: bytes  # Confidentiality-Key (TS 29.229 §6.3.27)
    ik: bytes  # Integrity-Key (TS 29.229 §6.3.28)
    sqn: int  # the SQN this vector carries, for logs and tests (not sent on Cx)

    @property
    def sip_authenticate(self) -> bytes:
        """RAND || AUTN (TS 29.229 §6.3.10)."""
        return self.rand + self.autn

    def __repr__(self) -> str:
        return (
            f"AkaVector(sip_item_number={self.sip_item_number}, rand={self.rand.hex()}, "
            f"autn={self.autn.hex()}, sqn={self.sqn:#x})"
        )


def fresh_rands(count: int) -> list[bytes]:
    """``count`` RANDs from the CSPRNG (TS 33.102 §6.3.2), read in one call (a system call)."""
    pool = os.urandom(RAND_LENGTH * count)
    return [pool[i : i + RAND_LENGTH] for i in range(0, len(pool), RAND_LENGTH)]


def build_vectors(
    milenage: Milenage, sqns: Sequence[int], amf: bytes, rands: Sequence[bytes] | None = None
) -> list[AkaVector]:
    """One vector per SQN, numbered 1.. in order; RANDs from ``fresh_rands`` unless given."""
    if len(amf) != 2:
        raise InvalidKey(f"AMF must be 2 bytes (4 hex digits), got {len(amf)}")
    if rands is None:
        rands = fresh_rands(len(sqns))
    if len(rands) != len(sqns):
        raise InvalidRequest(f"{len(rands)} RANDs for {len(sqns)} SQNs")
    parts = milenage.vector_parts(list(rands), list(sqns), amf)
    return [
        AkaVector(number, rand, autn, xres, ck, ik, sqn)
        for number, (rand, sqn, (autn, xres, ck, ik)) in enumerate(zip(rands, sqns, parts, strict=True), start=1)
    ]


def split_rand_auts(rand_auts: bytes) -> tuple[bytes, bytes]:
    """(RAND, AUTS) from a re-sync SIP-Authorization (TS 29.229 §6.3.11: 16 + 14 octets)."""
    if not isinstance(rand_auts, bytes | bytearray) or len(rand_auts) != RAND_LENGTH + AUTS_LENGTH:
        size = len(rand_auts) if isinstance(rand_auts, bytes | bytearray) else type(rand_auts).__name__
        raise InvalidRequest(
            f"re-synchronisation SIP-Authorization must be RAND (16) || AUTS (14) = 30 bytes, got {size}"
        )
    return bytes(rand_auts[:RAND_LENGTH]), bytes(rand_auts[RAND_LENGTH:])


def verify_auts(milenage: Milenage, rand_auts: bytes, who: str = "subscriber") -> int:
    """SQN_MS from RAND || AUTS if MAC-S verifies (TS 33.102 §6.3.5), else ResyncFailure."""
    rand, auts = split_rand_auts(rand_auts)
    ak_star = milenage.f5_star(rand)
    sqn_ms = int.from_bytes(auts[:6], "big") ^ int.from_bytes(ak_star, "big")
    expected = milenage.f1_star(rand, sqnmod.to_bytes(sqn_ms), RESYNC_DUMMY_AMF)
    if not hmac.compare_digest(expected, auts[6:]):
        raise ResyncFailure(
            f"re-synchronisation for {who}: MAC-S in AUTS does not verify (TS 33.102 §6.3.5); "
            "SQN left unchanged. The UE and the HSS disagree on K/OPc, or RAND is not the one "
            "the UE was challenged with"
        )
    return sqn_ms


def make_auts(milenage: Milenage, rand: bytes, sqn_ms: int) -> bytes:
    """AUTS as a USIM builds it (TS 33.102 §6.3.3); for tests and tools."""
    sqn_octets = sqnmod.to_bytes(sqn_ms)
    ak_star = milenage.f5_star(rand)
    concealed = (sqn_ms ^ int.from_bytes(ak_star, "big")).to_bytes(6, "big")
    return concealed + milenage.f1_star(rand, sqn_octets, RESYNC_DUMMY_AMF)
