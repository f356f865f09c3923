"""The node's settings as plain values: what gateway.runner builds from the configuration
file (gateway.config) and what tests build directly."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Timers:
    tc: float = 30.0  # RFC 6733 §2.1
    twinit: float = 30.0  # RFC 3539 §3.4.1
    tx: float = 4.0  # request timeout
    dpa_timeout: float = 5.0
    cea_timeout: float = 10.0
    busy_hold: float = 300.0
    do_not_want_to_talk_hold: float = 3600.0
    close_grace: float = 2.0  # shutdown: how long a closed connection may take to finish (FIN) before a reset


@dataclass(frozen=True, slots=True)
class Limits:
    max_pending_per_peer: int = 10000
    max_pending: int = 100000
    max_message_size: int = 65536
    max_connections: int = 1000  # accepted connections, configured peers' not counted
    max_awaiting_cer: int = 64  # accepted connections that have not sent their CER yet
    max_accept_rate: float = 200.0  # new connections per second (bursts of max_awaiting_cer)
    max_cer_size: int = 8192  # the first message of an accepted connection (RFC 6733 §5.3)
    max_unknown_peers: int = 256  # peers admitted by unknown_peers.accept_realms at once
    duplicate_cache_size: int = 10000
    duplicate_ttl: float = 60.0


@dataclass(frozen=True, slots=True)
class PeerSettings:
    host: str
    realm: str
    address: str | None = None
    port: int = 3868
    transport: str = "tcp"
    connect: bool = True
    tls_name: str | None = None
    dynamic: bool = False  # admitted by unknown_peers.accept_realms: forgotten when its connection ends
