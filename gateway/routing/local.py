"""Requests served by this node rather than forwarded: the interface of a local
application, and the answers kept for duplicate detection (RFC 6733 §6.1.3, §5.5.4)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

from twisted.internet.defer import Deferred

from cx_codec import Message


class LocalApplication(Protocol):
    """A Diameter application served by this node (the Cx applications plug in here)."""

    def handle_request(self, request: bytes, peer: Any) -> bytes | Message | Deferred[bytes]: ...


class DuplicateCache:
    """Answers of requests served here, by (Origin-Host, End-to-End id), for the
    duplicate detection of RFC 6733 §6.1.3 / §5.5.4 (a T-flagged retransmission)."""

    def __init__(self, size: int, ttl: float, clock: Any) -> None:
        self.size, self.ttl, self.clock = size, ttl, clock
        self._answers: OrderedDict[Any, tuple[float, bytes]] = OrderedDict()

    def get(self, key: Any) -> bytes | None:
        found = self._answers.get(key)
        if found is None or found[0] < self.clock.seconds():
            return None
        return found[1]

    def put(self, key: Any, answer: bytes) -> None:
        answers = self._answers
        answers[key] = (self.clock.seconds() + self.ttl, answer)
        answers.move_to_end(key)
        while len(answers) > self.size:
            answers.popitem(last=False)
