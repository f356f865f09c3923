"""Requests served by this node rather than forwarded: the interface of a local
application, and the answers kept for duplicate detection (RFC 6733 §6.1.3, §5.5.4)."""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.defer import Deferred

from cx_codec import Message


class LocalApplication(Protocol):
    """A Diameter application served by this node (the Cx applications plug in here)."""

    def handle_request(self, request: bytes, peer: Any) -> bytes | Message | Deferred[bytes]: ...


class DuplicateCache:
    """Answers of requests served here, by (Origin-Host, End-to-End id), for the
    duplicate detection of RFC 6733 §6.1.3 / §5.5.4 (a T-flagged retransmission): the last
    ``size`` answers put, each for ``ttl`` seconds.

    The keys wait in a ring in the order they were put; each put takes the oldest place,
    dropping the answer that was kept there unless its key was put again since (then the
    key's newer place holds it). A dict and a list, not an OrderedDict: every answer served
    here is put, and a put costs 15-40% less (bench/RESULTS.md, session 11)."""

    def __init__(self, size: int, ttl: float, clock: Any) -> None:
        self.size, self.ttl, self.clock = size, ttl, clock
        self._answers: dict[Any, tuple[float, bytes, int]] = {}  # key -> (until, answer, place in the ring)
        self._ring: list[Any] = []  # the keys by place
        self._next = 0

    def get(self, key: Any) -> bytes | None:
        found = self._answers.get(key)
        if found is None or found[0] < self.clock.seconds():
            return None
        return found[1]

    def put(self, key: Any, answer: bytes) -> None:
        at, ring, answers = self._next, self._ring, self._answers
        if at < len(ring):  # (full: the oldest place)
            oldest = ring[at]
            if answers[oldest][2] == at:  # (else put again since, kept at its newer place)
                del answers[oldest]
            ring[at] = key
        elif at < self.size:
            ring.append(key)  # (the ring grows to ``size`` as answers come)
        else:
            return  # (size 0: nothing is kept)
        answers[key] = (self.clock.seconds() + self.ttl, answer, at)
        self._next = at + 1 if at + 1 < self.size else 0


class Deadlines:
    """Deferreds of local work that must fire by a deadline: one timer for all, armed for
    the oldest (deadlines grow in the order work arrives, as in PendingRequests), instead of
    a DelayedCall per request. A Deferred past its deadline is cancelled."""

    def __init__(self, clock: Any) -> None:
        self.clock = clock
        self._waiting: dict[int, tuple[float, Deferred[Any]]] = {}  # id(deferred) -> (deadline, deferred)
        self._timer: Any = None

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, deferred: Deferred[Any], deadline: float) -> None:
        key = id(deferred)
        self._waiting[key] = (deadline, deferred)
        deferred.addBoth(self._done, key)
        if self._timer is None:
            self._timer = self.clock.callLater(max(0.0, deadline - self.clock.seconds()), self._expire)

    def _done(self, result: Any, key: int) -> Any:
        self._waiting.pop(key, None)
        if not self._waiting and self._timer is not None and self._timer.active():
            self._timer.cancel()  # nothing left to watch (and no timer outliving a stop)
            self._timer = None
        return result

    def _expire(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        late = []
        for deadline, deferred in self._waiting.values():
            if deadline > now:
                break
            late.append(deferred)
        for deferred in late:
            deferred.cancel()  # its errback runs, and _done takes it out
        if self._waiting:
            head = next(iter(self._waiting.values()))[0]
            self._timer = self.clock.callLater(max(0.0, head - now), self._expire)
