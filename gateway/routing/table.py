"""Request routing (RFC 6733 §6.1.4-§6.1.6, §2.7 Routing Table).

A route is (Destination-Realm, Application-Id) -> action and an ordered list of targets
with priority (lower preferred) and weight. ``"*"`` as realm is the default route.
Selection: a Destination-Host we have an open connection to wins (§6.1.5); otherwise the
realm's targets of the best priority that are available, spread by smooth weighted
round robin (the nginx algorithm: deterministic, exact proportions, no randomness to
mock in tests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class RouteAction(Enum):
    LOCAL = "local"  # RFC 6733 §2.7 "Local": this node serves the realm and application
    PROXY = "proxy"  # forward, may apply policy to the request
    RELAY = "relay"  # forward unchanged but for the routing AVPs


@dataclass(slots=True)
class RouteTarget:
    host: str
    priority: int = 1
    weight: int = 100
    current: int = 0  # smooth weighted round robin state
    key: str = ""  # host in lower case, as the node's peer table is keyed

    def __post_init__(self) -> None:
        self.key = self.host.lower()


@dataclass(slots=True)
class Route:
    realm: str
    application_id: int
    action: RouteAction
    targets: list[RouteTarget] = field(default_factory=list)


class NoRoute(Exception):
    """No route or no available peer: answer 3002 DIAMETER_UNABLE_TO_DELIVER (§6.1.4)."""


class RoutingTable:
    """Lookups by (realm, application); realms compare case-insensitively (RFC 4343)."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self._routes: dict[tuple[str, int], Route] = {}
        # (Destination-Realm as received, application) -> route: the hot path skips the
        # decode and case folding; bounded, the table is rebuilt on reload
        self._by_raw: dict[tuple[bytes, int], Route | None] = {}
        # the hosts some route forwards to, in lower case: the next hops (RFC 6733 §2.7)
        self.next_hops: frozenset[str] = frozenset()
        for route in routes:
            self.add(route)

    def add(self, route: Route) -> None:
        route.targets.sort(key=lambda target: target.priority)
        self._routes[(route.realm.lower(), route.application_id)] = route
        self._by_raw.clear()
        self.next_hops = frozenset(target.key for known in self._routes.values() for target in known.targets)

    def forwards_to(self, host: str) -> bool:
        """Whether ``host`` is a next hop of some route (compared without case, RFC 4343)."""
        return host.lower() in self.next_hops

    def lookup_raw(self, realm: bytes, application_id: int) -> Route | None:
        """``lookup`` for a Destination-Realm straight from the message bytes."""
        key = (realm, application_id)
        try:
            return self._by_raw[key]
        except KeyError:
            route = self.lookup(realm.decode("ascii", "replace"), application_id)
            if len(self._by_raw) >= 4096:
                self._by_raw.clear()
            self._by_raw[key] = route
            return route

    def routes(self) -> list[Route]:
        return list(self._routes.values())

    def lookup(self, realm: str, application_id: int) -> Route | None:
        routes = self._routes
        realm = realm.lower()
        return (
            routes.get((realm, application_id))
            or routes.get((realm, 0xFFFFFFFF))
            or routes.get(("*", application_id))
            or routes.get(("*", 0xFFFFFFFF))
        )

    def select(
        self,
        route: Route,
        available: Callable[[str], Any],
        exclude: Sequence[Any] = (),
    ) -> Any:
        """The peer to send to: ``available(host)`` returns a peer that can take a
        request now, or None. Raises NoRoute naming what was tried."""
        best: list[tuple[RouteTarget, Any]] = []
        best_priority = None
        for target in route.targets:
            if best_priority is not None and target.priority > best_priority:
                continue
            peer = available(target.host)
            if peer is None or peer in exclude:
                continue
            if best_priority is None or target.priority < best_priority:
                best_priority = target.priority
                best = []
            best.append((target, peer))
        if not best:
            hosts = ", ".join(target.host for target in route.targets) or "no peers"
            raise NoRoute(f"realm {route.realm}, application {route.application_id}: none of {hosts} is available")
        if len(best) == 1:
            return best[0][1]
        total = 0
        chosen: tuple[RouteTarget, Any] | None = None
        for target, peer in best:
            target.current += target.weight
            total += target.weight
            if chosen is None or target.current > chosen[0].current:
                chosen = (target, peer)
        chosen[0].current -= total  # type: ignore[index]
        return chosen[1]  # type: ignore[index]

