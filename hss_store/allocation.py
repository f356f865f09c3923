"""How migration identities are allocated (TR 23.781 steps 4-6 and 9-11).

Two modes, per direction (``inbound`` on the partner side, ``outbound`` on the primary):

- ``random``: IMPI and IMPU from patterns with one ``{random}`` placeholder (``<random>``
  is accepted too), e.g. ``mig-{random}@partner.example`` and
  ``sip:mig-{random}@partner.example``. The random part is 80 bits from the CSPRNG
  (``secrets``), base32, lower case, the same in both so the pair reads as one.
- ``pool``: pairs loaded beforehand (a list, or a range expanded by :func:`expand_range`);
  each is handed out once. A dry pool raises PoolExhausted, never reuses an entry.

``rotate`` makes a repeated request replace its binding instead of returning it;
``ttl_seconds`` gives bindings an expiry.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass

from hss_store.errors import InvalidRequest
from hss_store.identities import validate_impi, validate_impu

DIRECTIONS = ("inbound", "outbound")
MODES = ("random", "pool")
PLACEHOLDER = "{random}"
RANDOM_BITS = 80
MAX_POOL_RANGE = 10_000_000


def check_direction(direction: str) -> str:
    if direction not in DIRECTIONS:
        raise InvalidRequest(f"direction {direction!r} is unknown; use inbound or outbound")
    return direction


def _normalise_pattern(pattern: str) -> str:
    return pattern.replace("<random>", PLACEHOLDER)


def random_token() -> str:
    """80 bits from the CSPRNG as 16 lower-case base32 characters."""
    return base64.b32encode(secrets.token_bytes(RANDOM_BITS // 8)).decode("ascii").lower()


@dataclass(frozen=True, slots=True)
class AllocationPolicy:
    direction: str
    mode: str = "random"
    impi_pattern: str | None = None
    impu_pattern: str | None = None
    ttl_seconds: int | None = None
    rotate: bool = False

    def __post_init__(self) -> None:
        check_direction(self.direction)
        if self.mode not in MODES:
            raise InvalidRequest(f"allocation mode {self.mode!r} is unknown; use random or pool")
        if self.ttl_seconds is not None and (not isinstance(self.ttl_seconds, int) or self.ttl_seconds <= 0):
            raise InvalidRequest(f"binding TTL {self.ttl_seconds!r} must be a positive number of seconds")
        if self.mode == "random":
            for name, pattern in (("IMPI", self.impi_pattern), ("IMPU", self.impu_pattern)):
                if not pattern or _normalise_pattern(pattern).count(PLACEHOLDER) != 1:
                    raise InvalidRequest(
                        f"{self.direction} {name} pattern {pattern!r} needs exactly one {PLACEHOLDER} "
                        "(e.g. mig-{random}@partner.example)"
                    )
            object.__setattr__(self, "impi_pattern", _normalise_pattern(self.impi_pattern or ""))
            object.__setattr__(self, "impu_pattern", _normalise_pattern(self.impu_pattern or ""))
            sample = random_token()
            validate_impi(self.impi_pattern.replace(PLACEHOLDER, sample))
            validate_impu(self.impu_pattern.replace(PLACEHOLDER, sample))
        elif self.impi_pattern or self.impu_pattern:
            raise InvalidRequest("a pool policy takes no patterns; load the pool with pool add")

    def generate(self) -> tuple[str, str]:
        """A fresh (IMPI, IMPU) pair from the patterns (random mode)."""
        token = random_token()
        assert self.impi_pattern and self.impu_pattern
        return self.impi_pattern.replace(PLACEHOLDER, token), self.impu_pattern.replace(PLACEHOLDER, token)


def expand_range(impi_pattern: str, impu_pattern: str, first: int, last: int, width: int = 0) -> list[tuple[str, str]]:
    """Pool entries from patterns with ``{n}``: n runs first..last, zero-padded to ``width``."""
    if "{n}" not in impi_pattern or "{n}" not in impu_pattern:
        raise InvalidRequest("pool range patterns need {n}, e.g. mig-{n}@partner.example")
    if not 0 <= first <= last or last - first >= MAX_POOL_RANGE:
        raise InvalidRequest(f"pool range {first}..{last} is empty, negative or above {MAX_POOL_RANGE} entries")
    pairs = []
    for n in range(first, last + 1):
        text = str(n).zfill(width)
        pairs.append((validate_impi(impi_pattern.replace("{n}", text)), validate_impu(impu_pattern.replace("{n}", text))))
    return pairs


def request_key(*parts: str | None) -> int:
    """A signed 64-bit hash of an allocation request, indexed to find an existing binding.

    The hash only narrows the search: rows found by it are compared field by field.
    """
    digest = hashlib.blake2b("\x1f".join(p or "" for p in parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
