"""Requests sent and not yet answered, keyed by the hop-by-hop id we gave them.

As in twisted.names, each entry knows where the answer goes (a connection to copy it to,
or a Deferred for requests this node originated). Unlike twisted.names there is no
DelayedCall per request: Tx is one value for all requests, so the table's insertion order
is deadline order and one timer, armed for the oldest entry, expires them all
(a few microseconds per request saved on the hot path).

RFC 6733 §6.1.9: a proxy gives each forwarded request a hop-by-hop id unique on the
outgoing connection and restores the original one in the answer; ids here are unique
across the whole node, which is stricter.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from cx_codec.rewrite import forwarded


class PendingRequest:
    __slots__ = (
        "hop_by_hop",
        "original_hop_by_hop",
        "origin",
        "peer",
        "data",
        "deadline",
        "command_code",
        "tried",
        "deferred",
    )

    def __init__(
        self,
        hop_by_hop: int,
        original_hop_by_hop: int,
        origin: Any,
        peer: Any,
        data: bytes,
        deadline: float,
        command_code: int,
        deferred: Any = None,
    ) -> None:
        self.hop_by_hop = hop_by_hop
        self.original_hop_by_hop = original_hop_by_hop
        self.origin = origin  # the connection the request came from, or None when local
        self.peer = peer  # the peer it was sent to
        self.data = data  # the bytes sent, kept for failover (RFC 6733 §5.5.4)
        self.deadline = deadline
        self.command_code = command_code
        self.tried: tuple[Any, ...] = ()  # peers tried before ``peer``, after failovers
        self.deferred = deferred  # for requests this node originated


class PendingRequests:
    """hop-by-hop id -> PendingRequest, with one expiry timer.

    ``clock`` has ``seconds()`` and ``callLater()`` (a reactor or ``task.Clock``);
    ``on_expired(entry)`` is called for each request whose Tx ran out.
    """

    def __init__(self, clock: Any, tx: float, on_expired: Callable[[PendingRequest], None]) -> None:
        self.clock = clock
        self.tx = tx
        self.on_expired = on_expired
        self._entries: dict[int, PendingRequest] = {}
        self._per_peer: dict[Any, int] = {}
        self._next_id = random.getrandbits(32)
        self._timer: Any = None

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[PendingRequest]:
        return iter(list(self._entries.values()))

    def outstanding(self, peer: Any) -> int:
        return self._per_peer.get(peer, 0)

    def new_id(self) -> int:
        """A hop-by-hop id not in use (RFC 6733 §3: unique over a reasonable time)."""
        entries = self._entries
        hop_by_hop = self._next_id
        while hop_by_hop in entries:
            hop_by_hop = (hop_by_hop + 1) & 0xFFFFFFFF
        self._next_id = (hop_by_hop + 1) & 0xFFFFFFFF
        return hop_by_hop

    def add(
        self,
        original_hop_by_hop: int,
        origin: Any,
        peer: Any,
        data: bytes,
        command_code: int,
        hop_by_hop: int | None = None,
        deferred: Any = None,
        now: float | None = None,
    ) -> PendingRequest:
        """``now``: the caller's idea of the time (the node passes the start of its batch)."""
        if hop_by_hop is None:
            hop_by_hop = self.new_id()
        if now is None:
            now = self.clock.seconds()
        return self._insert(
            PendingRequest(hop_by_hop, original_hop_by_hop, origin, peer, data, now + self.tx, command_code, deferred)
        )

    def forward(
        self, request: bytes, append: bytes, origin: Any, peer: Any, command_code: int, original_hop_by_hop: int,
        now: float,
    ) -> bytes:
        """The relay's one call per request: a fresh hop-by-hop id, the request rewritten
        with it and ``append`` (Route-Record) added (RFC 6733 §6.1.9), and its entry."""
        hop_by_hop = self.new_id()
        data = forwarded(request, hop_by_hop, append)
        self._insert(PendingRequest(hop_by_hop, original_hop_by_hop, origin, peer, data, now + self.tx, command_code))
        return data

    def _insert(self, entry: PendingRequest) -> PendingRequest:
        self._entries[entry.hop_by_hop] = entry
        self._per_peer[entry.peer] = self._per_peer.get(entry.peer, 0) + 1
        if self._timer is None:
            self._timer = self.clock.callLater(self.tx, self._expire)
        return entry

    def get(self, hop_by_hop: int) -> PendingRequest | None:
        return self._entries.get(hop_by_hop)

    def pop(self, hop_by_hop: int) -> PendingRequest | None:
        entry = self._entries.pop(hop_by_hop, None)
        if entry is not None:
            self._per_peer[entry.peer] -= 1
        return entry

    def restore(self, entry: PendingRequest) -> None:
        """Put back an entry popped by mistake (an answer from a peer it was not sent to)."""
        self._entries[entry.hop_by_hop] = entry
        self._per_peer[entry.peer] = self._per_peer.get(entry.peer, 0) + 1

    def started(self, entry: PendingRequest) -> float:
        return entry.deadline - self.tx

    def move(self, entry: PendingRequest, peer: Any, data: bytes) -> None:
        """The request was re-sent to ``peer`` (failover); its deadline stays."""
        self._per_peer[entry.peer] -= 1
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        entry.tried = (*entry.tried, entry.peer)
        entry.peer = peer
        entry.data = data

    def for_peer(self, peer: Any) -> list[PendingRequest]:
        return [entry for entry in self._entries.values() if entry.peer is peer]

    def _expire(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        expired = []
        for entry in self._entries.values():
            if entry.deadline > now:
                break
            expired.append(entry)
        for entry in expired:
            self.pop(entry.hop_by_hop)
            self.on_expired(entry)
        if self._entries and self._timer is None:
            head = next(iter(self._entries.values()))
            self._timer = self.clock.callLater(max(0.0, head.deadline - now), self._expire)

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
