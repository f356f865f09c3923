"""How fast the node takes new connections: a token bucket, sans-IO.

Each accepted connection costs the node an accept, a read, an answer and a close before
its CER can be judged (RFC 6733 §5.6.1): a few hundred microseconds of system calls on a
small machine. A peer that opens connections as fast as it can would spend the node's CPU
on that alone. So accepting goes at ``rate`` connections per second with bursts of
``burst``; beyond, the node stops accepting for as long as the bucket needs to refill, and
new connections wait in the kernel's listen backlog (a configured peer reconnects once per
Tc, so it does not notice).
"""

from __future__ import annotations


class AcceptBudget:
    __slots__ = ("rate", "burst", "_tokens", "_at")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(max(1, burst))
        self._tokens = self.burst
        self._at: float | None = None

    def take(self, now: float) -> float:
        """One connection accepted at ``now``: 0.0, or how long to stop accepting."""
        if self._at is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0.0 else -self._tokens / self.rate
