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
from typing import Any, NamedTuple


class PendingRequest(NamedTuple):
    """One request in flight. A tuple: the relay's hot loop builds one per request with
    ``tuple.__new__`` (a C call, no Python ``__init__``); failover replaces the entry."""

    hop_by_hop: int
    original_hop_by_hop: int
    origin: Any  # the connection the request came from, or None when local
    peer: Any  # the peer it was sent to
    data: bytes  # the bytes sent, kept for failover (RFC 6733 §5.5.4)
    deadline: float
    command_code: int
    tried: tuple[Any, ...] = ()  # peers tried before ``peer``, after failovers
    deferred: Any = None  # for requests this node originated


class PendingRequests:
    """hop-by-hop id -> PendingRequest, with one expiry timer.

    ``clock`` has ``seconds()`` and ``callLater()`` (a reactor or ``task.Clock``);
    ``on_expired(entry)`` is called for each request whose Tx ran out.

    ``entries`` (in deadline order) and ``per_peer`` (requests pending on each peer) are
    public for the relay's hot loop (gateway.routing.relay), which inserts entries built
    like ``add`` builds them and settles ``per_peer`` once per read, then calls ``arm``.
    Everything else goes through the methods.
    """

    def __init__(self, clock: Any, tx: float, on_expired: Callable[[PendingRequest], None]) -> None:
        self.clock = clock
        self.tx = tx
        self.on_expired = on_expired
        self.entries: dict[int, PendingRequest] = {}
        self.per_peer: dict[Any, int] = {}
        self._next_id = random.getrandbits(32)
        self._timer: Any = None

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[PendingRequest]:
        return iter(list(self.entries.values()))

    def outstanding(self, peer: Any) -> int:
        return self.per_peer.get(peer, 0)

    def new_id(self) -> int:
        """A hop-by-hop id not in use (RFC 6733 §3: unique over a reasonable time)."""
        entries = self.entries
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
            PendingRequest(hop_by_hop, original_hop_by_hop, origin, peer, data, now + self.tx, command_code, deferred=deferred)
        )

    def _insert(self, entry: PendingRequest) -> PendingRequest:
        self.entries[entry.hop_by_hop] = entry
        self.per_peer[entry.peer] = self.per_peer.get(entry.peer, 0) + 1
        self.arm()
        return entry

    def arm(self) -> None:
        """Start the expiry timer if entries wait and none runs (the relay's hot loop adds
        entries itself and calls this once per batch)."""
        if self._timer is None and self.entries:
            self._timer = self.clock.callLater(self.tx, self._expire)

    def get(self, hop_by_hop: int) -> PendingRequest | None:
        return self.entries.get(hop_by_hop)

    def pop(self, hop_by_hop: int) -> PendingRequest | None:
        entry = self.entries.pop(hop_by_hop, None)
        if entry is not None:
            self.per_peer[entry.peer] -= 1
        return entry

    def started(self, entry: PendingRequest) -> float:
        return entry.deadline - self.tx

    def move(self, entry: PendingRequest, peer: Any, data: bytes) -> PendingRequest:
        """The request was re-sent to ``peer`` (failover): its entry, replaced in place
        (so its deadline and its place in deadline order stay)."""
        self.per_peer[entry.peer] -= 1
        self.per_peer[peer] = self.per_peer.get(peer, 0) + 1
        moved = entry._replace(peer=peer, data=data, tried=(*entry.tried, entry.peer))
        self.entries[entry.hop_by_hop] = moved
        return moved

    def for_peer(self, peer: Any) -> list[PendingRequest]:
        return [entry for entry in self.entries.values() if entry.peer is peer]

    def _expire(self) -> None:
        self._timer = None
        now = self.clock.seconds()
        expired = []
        for entry in self.entries.values():
            if entry.deadline > now:
                break
            expired.append(entry)
        for entry in expired:
            self.pop(entry.hop_by_hop)
            self.on_expired(entry)
        if self.entries and self._timer is None:
            head = next(iter(self.entries.values()))
            self._timer = self.clock.callLater(max(0.0, head.deadline - now), self._expire)

    def stop(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
