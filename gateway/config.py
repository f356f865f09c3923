"""The node's configuration: one TOML file, parsed into frozen dataclasses, checked at start.

Every rule is checked and every broken one reported, all together, in one
:class:`ConfigError` whose lines name the key path, the bad value and the fix::

    gateway.toml: peers[1].port = 70000 is not a TCP port; use 1-65535

Array indexes in key paths count from 0, in file order (``peers[0]`` is the first
``[[peers]]``). Unknown keys are errors too (a typo must not silently fall back to a
default). Relative TLS file paths are resolved against the directory of the file.

Sections (``gateway/examples/*.toml`` shows them all): ``[node]``, ``[[listen]]``,
``[tls]``, ``[timers]``, ``[limits]``, ``[[peers]]``, ``[unknown_peers]``, ``[[routes]]``,
``[metrics]``, ``[logging]``. :func:`diff` compares two configurations for a reload
(SIGHUP): which peers and routes were added, removed or changed.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import math
import os
import re
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIAMETER_PORT = 3868  # RFC 6733 §2.1: IANA "diameter" over TCP
DIAMETER_TLS_PORT = 5658  # RFC 6733 §2.1: IANA "diameters", TLS from the first byte
UINT32_MAX = 2**32 - 1  # Unsigned32 AVPs: Vendor-Id, Firmware-Revision, Origin-State-Id
MESSAGE_SIZE_MIN = 4096  # below this a CER with a few Host-IP-Address AVPs may not fit
MESSAGE_SIZE_MAX = 2**24 - 1  # RFC 6733 §3: Message Length is 24 bits
METRICS_PORT = 9090  # a Prometheus convention, not a registered port
TWINIT_MINIMUM = 6  # RFC 3539 §3.4.1: Twinit MUST NOT be set lower than 6 s

ROLES = ("relay", "partner", "primary", "hss")
TRANSPORTS = ("tcp", "tls")
ROUTE_ACTIONS = ("proxy", "relay", "local")  # RFC 6733 §2.8: local, relay, proxy (no redirect)
LOG_LEVELS = ("debug", "info", "warn", "error")
LOG_FORMATS = ("text", "json")
DEFAULT_ROUTE_REALM = "*"


class ConfigError(Exception):
    """The configuration is unusable; ``errors`` holds one line per broken rule."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True, slots=True)
class Application:
    """A Diameter application as advertised in CER/CEA (RFC 6733 §5.3)."""

    name: str
    application_id: int
    vendor_id: int  # 0 for IETF applications; advertised in Vendor-Specific-Application-Id


# Application names the configuration understands; raw integers are accepted too.
APPLICATIONS: dict[str, Application] = {
    "cx": Application("cx", 16777216, 10415),  # TS 29.229 §6: Cx, 3GPP vendor 10415
    "relay": Application("relay", 0xFFFFFFFF, 0),  # RFC 6733 §2.4: the relay application
}
_APPLICATIONS_BY_ID = {app.application_id: app for app in APPLICATIONS.values()}


def application_for(value: str | int) -> Application | None:
    """The application a config value names ("cx" or an Application-Id), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if 0 <= value <= UINT32_MAX:
            return _APPLICATIONS_BY_ID.get(value) or Application(str(value), value, 0)
        return None
    return APPLICATIONS.get(value.lower()) if isinstance(value, str) else None


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """``[node]``: what this node says about itself in CER/CEA (RFC 6733 §5.3.1)."""

    origin_host: str
    origin_realm: str
    role: str = "relay"
    product_name: str = "cxgw"
    vendor_id: int = 0
    firmware_revision: int | None = None
    host_ip_addresses: tuple[str, ...] = ("127.0.0.1",)
    applications: tuple[Application, ...] = (APPLICATIONS["cx"],)
    origin_state_id: int = 0  # RFC 6733 §8.16; derived from the start time unless set


@dataclass(frozen=True, slots=True)
class ListenConfig:
    """One ``[[listen]]``: a local address where peers may connect to us."""

    address: str = "127.0.0.1"
    port: int = DIAMETER_PORT  # 0: the OS picks one (tests)
    transport: str = "tcp"


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """``[tls]``: our certificate and the CAs we trust (RFC 6733 §13, mutual auth)."""

    certificate: Path
    private_key: Path
    ca_certificates: tuple[Path, ...]
    verify_peer_identity: bool = True  # the peer certificate must name its Diameter identity


@dataclass(frozen=True, slots=True)
class TimersConfig:
    """``[timers]``, in seconds."""

    tc: float = 30.0  # RFC 6733 §2.1: reconnect interval
    twinit: float = 30.0  # RFC 3539 §3.4.1: watchdog interval, at least 6
    tx: float = 4.0  # how long a forwarded request waits for its answer
    dpa_timeout: float = 5.0  # RFC 6733 §5.4: wait for DPA before closing anyway
    cea_timeout: float = 10.0  # RFC 6733 §5.6: Wait-Conn-Ack / Wait-I-CEA give-up time
    busy_hold: float = 300.0  # DPR cause BUSY: do not reconnect for this long
    do_not_want_to_talk_hold: float = 3600.0  # DPR cause DO_NOT_WANT_TO_TALK_TO_YOU


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    """``[limits]``: bounds that keep an overloaded node answering (3004/3002, not OOM)."""

    max_pending_per_peer: int = 10000
    max_pending: int = 100000
    max_message_size: int = 65536
    max_connections: int = 1000
    duplicate_cache_size: int = 10000  # RFC 6733 §6.1.9 duplicate detection (0 = off)
    duplicate_ttl: float = 60.0


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """One ``[[peers]]``: a known peer, by its Diameter identity (Origin-Host)."""

    host: str
    realm: str
    address: str  # IP address or resolvable name; defaults to host
    port: int
    transport: str = "tcp"
    connect: bool = True  # we initiate (RFC 6733 §5.6 election applies when both do)
    tls_name: str = ""  # the name its certificate must carry; defaults to host
    applications: tuple[Application, ...] | None = None  # None: whatever [node] lists


@dataclass(frozen=True, slots=True)
class UnknownPeersConfig:
    """``[unknown_peers]``: incoming peers not in [[peers]] (RFC 6733 §5.3 policy)."""

    accept_realms: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteTarget:
    """A next hop of a route: lower priority is preferred, weight splits equal priorities."""

    host: str
    priority: int = 1
    weight: int = 100


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """One ``[[routes]]``: a Realm-based routing table entry (RFC 6733 §2.7)."""

    realm: str  # "*" is the default route
    application: Application
    action: str
    peers: tuple[RouteTarget, ...] = ()

    @property
    def key(self) -> tuple[str, int]:
        """(realm, Application-Id): unique in a configuration."""
        return (self.realm.lower(), self.application.application_id)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """``[metrics]``: where /metrics and /health are served (absent section: nowhere)."""

    address: str = "127.0.0.1"
    port: int = 9090  # METRICS_PORT


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    """``[logging]``."""

    level: str = "info"
    format: str = "text"


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """The whole, validated configuration."""

    source: str
    node: NodeConfig
    listen: tuple[ListenConfig, ...] = ()
    tls: TlsConfig | None = None
    timers: TimersConfig = TimersConfig()
    limits: LimitsConfig = LimitsConfig()
    peers: tuple[PeerConfig, ...] = ()
    unknown_peers: UnknownPeersConfig = UnknownPeersConfig()
    routes: tuple[RouteConfig, ...] = ()
    metrics: MetricsConfig | None = None
    logging: LoggingConfig = LoggingConfig()

    def peer(self, host: str) -> PeerConfig | None:
        """The configured peer with this Diameter identity (case-insensitive), or None."""
        wanted = host.lower()
        return next((peer for peer in self.peers if peer.host.lower() == wanted), None)


def load_config(path: str | os.PathLike[str], *, now: float | None = None) -> GatewayConfig:
    """Read and check a TOML configuration file; raise :class:`ConfigError` on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [f"{path}: cannot read the configuration ({exc}); check the path"]
        ) from exc
    return parse_config(text, str(path), base_dir=path.parent, now=now)


def parse_config(
    text: str,
    source: str = "<string>",
    *,
    base_dir: str | os.PathLike[str] | None = None,
    now: float | None = None,
) -> GatewayConfig:
    """Parse and check TOML text; relative paths resolve against ``base_dir`` (default cwd).

    ``now`` (seconds since the epoch) seeds the default Origin-State-Id.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{source}: not valid TOML ({exc}); fix the syntax"]) from exc
    check = Checker(source)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    config = _Parser(check, base, time.time() if now is None else now).gateway(data)
    if check.errors or config is None:
        raise ConfigError(check.errors)
    return config


_SECTIONS = {
    "node": "table",
    "listen": "array",
    "tls": "table",
    "timers": "table",
    "limits": "table",
    "peers": "array",
    "unknown_peers": "table",
    "routes": "array",
    "metrics": "table",
    "logging": "table",
}


class _Parser:
    """Turns the TOML document into dataclasses, one method per section."""

    def __init__(self, check: Checker, base_dir: Path, now: float) -> None:
        self.check = check
        self.base_dir = base_dir
        self.now = now

    def gateway(self, data: dict[str, Any]) -> GatewayConfig | None:
        check = self.check
        check.unknown_keys(data, "", _SECTIONS)
        sections = {name: check.section(data, name, kind) for name, kind in _SECTIONS.items()}
        node = self.node(sections["node"])
        listen = tuple(self.listener(t, f"listen[{i}]") for i, t in enumerate(sections["listen"]))
        peers = self.peers(sections["peers"], node)
        uses_tls = [f"listen[{i}]" for i, li in enumerate(listen) if li.transport == "tls"]
        uses_tls += [f"peers[{i}]" for i, p in enumerate(peers) if p.transport == "tls"]
        tls = self.tls(data.get("tls"), sections["tls"], uses_tls)
        config = GatewayConfig(
            source=check.source,
            node=node,
            listen=listen,
            tls=tls,
            timers=self.timers(sections["timers"]),
            limits=self.limits(sections["limits"]),
            peers=peers,
            unknown_peers=self.unknown_peers(sections["unknown_peers"]),
            routes=self.routes(sections["routes"], node, peers),
            metrics=self.metrics(sections["metrics"]) if "metrics" in data else None,
            logging=self.logging(sections["logging"]),
        )
        self.cross_checks(config)
        return config

    def node(self, t: dict[str, Any]) -> NodeConfig:
        c = self.check
        c.unknown_keys(t, "node", {f.name for f in dataclasses.fields(NodeConfig)})
        origin_host = c.identity(t, "node", "origin_host", example="gw.partner.example")
        origin_realm = c.identity(t, "node", "origin_realm", example="partner.example")
        ips = c.array(t, "node", "host_ip_addresses", ["127.0.0.1"], c.ip_item, min_items=1)
        apps = c.array(t, "node", "applications", ["cx"], c.application_item, min_items=1)
        state_id = c.integer(t, "node", "origin_state_id", None, 0, UINT32_MAX)
        return NodeConfig(
            origin_host=origin_host or "",
            origin_realm=origin_realm or "",
            role=c.choice(t, "node", "role", "relay", ROLES),
            product_name=c.string(t, "node", "product_name", "cxgw", nonempty=True),
            vendor_id=c.integer(t, "node", "vendor_id", 0, 0, UINT32_MAX),
            firmware_revision=c.integer(t, "node", "firmware_revision", None, 0, UINT32_MAX),
            host_ip_addresses=tuple(ips),
            applications=tuple(_unique_apps(apps)),
            origin_state_id=int(self.now) & UINT32_MAX if state_id is None else state_id,
        )

    def listener(self, t: dict[str, Any], path: str) -> ListenConfig:
        c = self.check
        c.unknown_keys(t, path, {"address", "port", "transport"})
        transport = c.choice(t, path, "transport", "tcp", TRANSPORTS)
        default_port = DIAMETER_TLS_PORT if transport == "tls" else DIAMETER_PORT
        return ListenConfig(
            address=c.ip(t, path, "address", "127.0.0.1"),
            port=c.port(t, path, "port", default_port, allow_zero=True),
            transport=transport,
        )

    def tls(self, raw: Any, t: dict[str, Any], users: list[str]) -> TlsConfig | None:
        c = self.check
        if raw is None:
            if users:
                c.error(
                    f'[tls] is missing but {users[0]} uses transport "tls"; add a [tls] '
                    "section with certificate, private_key and ca_certificates"
                )
            return None
        c.unknown_keys(t, "tls", {f.name for f in dataclasses.fields(TlsConfig)})
        need = bool(users)
        cert = c.pem_file(t, "tls", "certificate", self.base_dir, "CERTIFICATE", need)
        key = c.pem_file(t, "tls", "private_key", self.base_dir, "PRIVATE KEY", need)
        cas = c.pem_files(t, "tls", "ca_certificates", self.base_dir, "CERTIFICATE", need)
        return TlsConfig(
            certificate=cert,
            private_key=key,
            ca_certificates=cas,
            verify_peer_identity=c.boolean(t, "tls", "verify_peer_identity", True),
        )

    def timers(self, t: dict[str, Any]) -> TimersConfig:
        c = self.check
        c.unknown_keys(t, "timers", {f.name for f in dataclasses.fields(TimersConfig)})
        d = TimersConfig()
        twinit_fix = f"use at least {TWINIT_MINIMUM} (RFC 3539 §3.4.1); 30 is the default"
        return TimersConfig(
            tc=c.seconds(t, "timers", "tc", d.tc),
            twinit=c.seconds(t, "timers", "twinit", d.twinit, TWINIT_MINIMUM, twinit_fix),
            tx=c.seconds(t, "timers", "tx", d.tx),
            dpa_timeout=c.seconds(t, "timers", "dpa_timeout", d.dpa_timeout),
            cea_timeout=c.seconds(t, "timers", "cea_timeout", d.cea_timeout),
            busy_hold=c.seconds(t, "timers", "busy_hold", d.busy_hold, minimum=0),
            do_not_want_to_talk_hold=c.seconds(
                t, "timers", "do_not_want_to_talk_hold", d.do_not_want_to_talk_hold, minimum=0
            ),
        )

    def limits(self, t: dict[str, Any]) -> LimitsConfig:
        c = self.check
        c.unknown_keys(t, "limits", {f.name for f in dataclasses.fields(LimitsConfig)})
        d = LimitsConfig()
        limits = LimitsConfig(
            max_pending_per_peer=c.integer(
                t, "limits", "max_pending_per_peer", d.max_pending_per_peer, 1
            ),
            max_pending=c.integer(t, "limits", "max_pending", d.max_pending, 1),
            max_message_size=c.integer(
                t,
                "limits",
                "max_message_size",
                d.max_message_size,
                MESSAGE_SIZE_MIN,
                MESSAGE_SIZE_MAX,
            ),
            max_connections=c.integer(t, "limits", "max_connections", d.max_connections, 1),
            duplicate_cache_size=c.integer(
                t, "limits", "duplicate_cache_size", d.duplicate_cache_size, 0
            ),
            duplicate_ttl=c.seconds(t, "limits", "duplicate_ttl", d.duplicate_ttl),
        )
        if limits.max_pending_per_peer > limits.max_pending:
            c.error(
                f"limits.max_pending_per_peer = {limits.max_pending_per_peer} is more than "
                f"limits.max_pending = {limits.max_pending}; lower it or raise max_pending"
            )
        return limits

    def peers(self, tables: list[dict[str, Any]], node: NodeConfig) -> tuple[PeerConfig, ...]:
        peers: list[PeerConfig] = []
        seen: dict[str, str] = {}
        for i, t in enumerate(tables):
            path = f"peers[{i}]"
            peer = self.peer(t, path, node)
            if peer is None:
                continue
            key = peer.host.lower()
            if key in seen:
                self.check.bad(
                    f"{path}.host",
                    peer.host,
                    f"is already defined by {seen[key]}",
                    "give each [[peers]] a unique host",
                )
                continue
            if key == node.origin_host.lower():
                self.check.bad(
                    f"{path}.host",
                    peer.host,
                    "is this node's own node.origin_host",
                    "a node is not its own peer; remove this [[peers]]",
                )
                continue
            seen[key] = path
            peers.append(peer)
        return tuple(peers)

    def peer(self, t: dict[str, Any], path: str, node: NodeConfig) -> PeerConfig | None:
        c = self.check
        c.unknown_keys(t, path, {f.name for f in dataclasses.fields(PeerConfig)})
        host = c.identity(t, path, "host", example="hss.primary.example")
        realm = c.identity(t, path, "realm", example="primary.example")
        transport = c.choice(t, path, "transport", "tcp", TRANSPORTS)
        default_port = DIAMETER_TLS_PORT if transport == "tls" else DIAMETER_PORT
        port = c.port(t, path, "port", default_port, allow_zero=False)
        address = c.host_or_ip(t, path, "address", host) if host or "address" in t else ""
        connect = c.boolean(t, path, "connect", True)
        tls_name = c.identity(
            t, path, "tls_name", default=host or "", example="hss.primary.example"
        )
        apps = None
        if "applications" in t:
            apps = c.array(t, path, "applications", MISSING, c.application_item, min_items=1)
            for j, app in enumerate(apps):
                if app not in node.applications:
                    c.bad(
                        f"{path}.applications[{j}]",
                        t["applications"][j],
                        "is not in node.applications",
                        "add it to node.applications or remove it here",
                    )
        if host is None or realm is None:
            return None
        return PeerConfig(
            host=host,
            realm=realm,
            address=address,
            port=port,
            transport=transport,
            connect=connect,
            tls_name=tls_name or host,
            applications=None if apps is None else tuple(_unique_apps(apps)),
        )

    def unknown_peers(self, t: dict[str, Any]) -> UnknownPeersConfig:
        c = self.check
        c.unknown_keys(t, "unknown_peers", {"accept_realms"})
        realms = c.array(t, "unknown_peers", "accept_realms", [], c.identity_item)
        return UnknownPeersConfig(accept_realms=tuple(realms))

    def routes(
        self, tables: list[dict[str, Any]], node: NodeConfig, peers: tuple[PeerConfig, ...]
    ) -> tuple[RouteConfig, ...]:
        c = self.check
        by_host = {peer.host.lower(): peer for peer in peers}
        routes: list[RouteConfig] = []
        seen: dict[tuple[str, int], str] = {}
        for i, t in enumerate(tables):
            path = f"routes[{i}]"
            route = self.route(t, path, node, by_host)
            if route is None:
                continue
            if route.key in seen:
                c.bad(
                    f"{path}.realm",
                    route.realm,
                    f"with application {route.application.name} is already routed by {seen[route.key]}",
                    "merge the two [[routes]] into one",
                )
                continue
            seen[route.key] = path
            routes.append(route)
        return tuple(routes)

    def route(
        self, t: dict[str, Any], path: str, node: NodeConfig, by_host: Mapping[str, PeerConfig]
    ) -> RouteConfig | None:
        c = self.check
        c.unknown_keys(t, path, {"realm", "application", "action", "peers"})
        realm = c.identity(t, path, "realm", example="primary.example", allow_wildcard=True)
        app = c.application(t, path, "application", "cx")
        if app is not None and app not in node.applications:
            c.bad(
                f"{path}.application",
                t.get("application", "cx"),
                "is not in node.applications",
                "add it to node.applications or route another application",
            )
        action = c.choice(t, path, "action", MISSING, ROUTE_ACTIONS)
        targets = c.array(t, path, "peers", [], c.route_target_item)
        if action == "local" and targets:
            c.bad(
                f"{path}.peers",
                t["peers"],
                "is set on a local route (answered by this node)",
                'remove peers or use action "proxy" or "relay"',
            )
        elif action in ("proxy", "relay") and t.get("peers") == []:
            c.bad(
                f"{path}.peers",
                [],
                f'is empty for action "{action}"',
                'list at least one { host = "..." } defined in [[peers]]',
            )
        elif action in ("proxy", "relay") and "peers" not in t:
            c.missing(f"{path}.peers", 'add peers = [{ host = "..." }] naming [[peers]] hosts')
        hosts_seen: set[str] = set()
        for j, target in enumerate(targets):
            tpath = f"{path}.peers[{j}].host"
            peer = by_host.get(target.host.lower())
            if target.host.lower() in hosts_seen:
                c.bad(tpath, target.host, "is listed twice in this route", "list each host once")
            hosts_seen.add(target.host.lower())
            if action == "local":
                continue
            if peer is None:
                c.bad(
                    tpath,
                    target.host,
                    "is not defined in [[peers]]",
                    "add a [[peers]] with this host or fix the name",
                )
            elif app is not None and peer.applications is not None and app not in peer.applications:
                c.bad(
                    tpath,
                    target.host,
                    f"does not list application {app.name} in its applications",
                    "add it to that peer's applications or route to another peer",
                )
        if realm is None or app is None or action is None:
            return None
        return RouteConfig(realm=realm, application=app, action=action, peers=tuple(targets))

    def metrics(self, t: dict[str, Any]) -> MetricsConfig:
        c = self.check
        c.unknown_keys(t, "metrics", {"address", "port"})
        return MetricsConfig(
            address=c.ip(t, "metrics", "address", "127.0.0.1"),
            port=c.port(t, "metrics", "port", METRICS_PORT, allow_zero=True),
        )

    def logging(self, t: dict[str, Any]) -> LoggingConfig:
        c = self.check
        c.unknown_keys(t, "logging", {"level", "format"})
        return LoggingConfig(
            level=c.choice(t, "logging", "level", "info", LOG_LEVELS),
            format=c.choice(t, "logging", "format", "text", LOG_FORMATS),
        )

    def cross_checks(self, config: GatewayConfig) -> None:
        """Rules that span sections."""
        c = self.check
        if not config.listen:
            for i, peer in enumerate(config.peers):
                if not peer.connect:
                    c.bad(
                        f"peers[{i}].connect",
                        False,
                        "but there is no [[listen]] for it to reach us",
                        "add a [[listen]] section or set connect = true",
                    )
                    break
        taken: dict[tuple[str, int], str] = {}
        for i, li in enumerate(config.listen):
            if li.port == 0:
                continue
            if (li.address, li.port) in taken:
                c.bad(
                    f"listen[{i}].port",
                    li.port,
                    f"on {li.address} is already used by {taken[(li.address, li.port)]}",
                    "use another port or remove one [[listen]]",
                )
            taken.setdefault((li.address, li.port), f"listen[{i}]")
        metrics = config.metrics
        if metrics is not None and metrics.port and (metrics.address, metrics.port) in taken:
            c.bad(
                "metrics.port",
                metrics.port,
                f"on {metrics.address} is already used by {taken[(metrics.address, metrics.port)]}",
                "give /metrics its own port",
            )


def _unique_apps(apps: Iterable[Application]) -> list[Application]:
    unique: list[Application] = []
    for app in apps:
        if app not in unique:
            unique.append(app)
    return unique


@dataclass(frozen=True, slots=True)
class ConfigDiff:
    """What a reload changes: peers by host, routes by (realm, Application-Id)."""

    peers_added: tuple[str, ...] = ()
    peers_removed: tuple[str, ...] = ()
    peers_changed: tuple[str, ...] = ()
    routes_added: tuple[tuple[str, int], ...] = ()
    routes_removed: tuple[tuple[str, int], ...] = ()
    routes_changed: tuple[tuple[str, int], ...] = ()
    sections_changed: tuple[str, ...] = ()  # other top-level sections that differ

    @property
    def empty(self) -> bool:
        return not any(getattr(self, f.name) for f in dataclasses.fields(self))

    @property
    def restart_required(self) -> tuple[str, ...]:
        """Changed sections a running node cannot apply (sockets, identity, TLS)."""
        return tuple(s for s in self.sections_changed if s in RESTART_SECTIONS)


RESTART_SECTIONS = frozenset({"node", "listen", "tls", "metrics"})


def diff(old: GatewayConfig, new: GatewayConfig) -> ConfigDiff:
    """Compare two configurations (for SIGHUP reload).

    Hosts compare case-insensitively and are reported as spelled in ``new`` (``old`` for
    removals). A derived Origin-State-Id is not a change: it is fixed for the process.
    """
    peers = _diff_keyed(
        {p.host.lower(): p for p in old.peers}, {p.host.lower(): p for p in new.peers}
    )
    routes = _diff_keyed({r.key: r for r in old.routes}, {r.key: r for r in new.routes})
    sections = []
    for name in (
        "node",
        "listen",
        "tls",
        "timers",
        "limits",
        "unknown_peers",
        "metrics",
        "logging",
    ):
        before, after = getattr(old, name), getattr(new, name)
        if name == "node":
            before = dataclasses.replace(before, origin_state_id=0)
            after = dataclasses.replace(after, origin_state_id=0)
        if before != after:
            sections.append(name)
    return ConfigDiff(
        peers_added=tuple(p.host for p in peers[0]),
        peers_removed=tuple(p.host for p in peers[1]),
        peers_changed=tuple(p.host for p in peers[2]),
        routes_added=tuple(r.key for r in routes[0]),
        routes_removed=tuple(r.key for r in routes[1]),
        routes_changed=tuple(r.key for r in routes[2]),
        sections_changed=tuple(sections),
    )


def _diff_keyed(
    old: Mapping[Any, Any], new: Mapping[Any, Any]
) -> tuple[list[Any], list[Any], list[Any]]:
    added = [value for key, value in new.items() if key not in old]
    removed = [value for key, value in old.items() if key not in new]
    changed = [value for key, value in new.items() if key in old and old[key] != value]
    return added, removed, changed


# ---------------------------------------------------------------------------------------
# The checks. Each reads one key of a table, records an error (key path, value, fix) when
# the value is wrong, and returns a fallback so that checking goes on and every error of
# the file is reported at once.

MISSING: Any = object()  # "this key is required"

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
# RFC 6733 §4.3.1 DiameterIdentity: an FQDN (a single label such as "localhost" is allowed).
_IDENTITY = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a float",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def is_diameter_identity(value: str) -> bool:
    """FQDN-shaped printable ASCII, at most 255 characters (RFC 6733 §4.3.1)."""
    return len(value) <= 255 and _IDENTITY.fullmatch(value) is not None


def _show(value: Any) -> str:
    """A value as it would be written in TOML, shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, list):
        text = "[" + ", ".join(_show(v) for v in value) + "]"
    elif isinstance(value, dict):
        text = "{ " + ", ".join(f"{k} = {_show(v)}" for k, v in value.items()) + " }"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


class Checker:
    """Collects errors for one source; ``source: path = value problem; fix``."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[str] = []

    # -- reporting
    def error(self, text: str) -> None:
        self.errors.append(f"{self.source}: {text}")

    def bad(self, path: str, value: Any, problem: str, fix: str) -> None:
        self.error(f"{path} = {_show(value)} {problem}; {fix}")

    def missing(self, path: str, fix: str) -> None:
        self.error(f"{path} is missing; {fix}")

    def wrong_type(self, path: str, value: Any, wanted: str) -> None:
        self.bad(path, value, f"is {_type_name(value)}", f"use {wanted}")

    # -- structure
    def unknown_keys(self, table: Mapping[str, Any], prefix: str, known: Iterable[str]) -> None:
        known = sorted(known)
        for key in table:
            if key in known:
                continue
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"use one of {', '.join(known)}"
            where = f"[{key}]" if not prefix else _join(prefix, key)
            self.error(f"{where} is not a known {'section' if not prefix else 'key'}; {hint}")

    def section(self, data: Mapping[str, Any], name: str, kind: str) -> Any:
        """``[name]`` as a dict, or ``[[name]]`` as a list of dicts; empty when absent."""
        value = data.get(name)
        if kind == "table":
            if value is None:
                return {}
            if isinstance(value, dict):
                return value
            self.wrong_type(name, value, f"a [{name}] table")
            return {}
        if value is None:
            return []
        if not isinstance(value, list):
            self.wrong_type(name, value, f"[[{name}]] (an array of tables)")
            return []
        tables = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                tables.append(item)
            else:
                self.wrong_type(f"{name}[{i}]", item, f"a table under [[{name}]]")
        return tables

    def _get(self, t: Mapping[str, Any], prefix: str, key: str, default: Any, fix: str) -> Any:
        if key in t:
            return t[key]
        if default is MISSING:
            self.missing(_join(prefix, key), fix)
        return MISSING

    # -- scalars
    def string(
        self, t: Mapping[str, Any], prefix: str, key: str, default: Any, nonempty: bool = False
    ) -> Any:
        value = self._get(t, prefix, key, default, f'add {key} = "..."')
        if value is MISSING:
            return None if default is MISSING else default
        if not isinstance(value, str):
            self.wrong_type(_join(prefix, key), value, "a string in quotes")
            return None if default is MISSING else default
        if nonempty and not value.strip():
            self.bad(_join(prefix, key), value, "is empty", "give it a value or remove the key")
            return default
        return value

    def choice(
        self, t: Mapping[str, Any], prefix: str, key: str, default: Any, choices: Iterable[str]
    ) -> Any:
        choices = tuple(choices)
        options = ", ".join(f'"{c}"' for c in choices)
        value = self._get(t, prefix, key, default, f"add {key} = one of {options}")
        fallback = None if default is MISSING else default
        if value is MISSING:
            return fallback
        if not isinstance(value, str):
            self.wrong_type(_join(prefix, key), value, f"one of {options}")
            return fallback
        if value.lower() not in choices:
            problem = "is not supported"
            if key == "transport" and value.lower() == "sctp":
                problem = "is not supported (Twisted has no SCTP)"
            self.bad(_join(prefix, key), value, problem, f"use one of {options}")
            return fallback
        return value.lower()

    def identity(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: Any = MISSING,
        example: str = "host.realm.example",
        allow_wildcard: bool = False,
    ) -> Any:
        value = self._get(t, prefix, key, default, f'add {key} = "{example}"')
        if value is MISSING:
            return None if default is MISSING else default
        return self.identity_item(_join(prefix, key), value, example, allow_wildcard)

    def identity_item(
        self, path: str, value: Any, example: str = "realm.example", allow_wildcard: bool = False
    ) -> str | None:
        if not isinstance(value, str):
            self.wrong_type(path, value, f'a Diameter identity in quotes such as "{example}"')
            return None
        if allow_wildcard and value == DEFAULT_ROUTE_REALM:
            return value
        if not is_diameter_identity(value):
            wildcard = ' or "*" for the default route' if allow_wildcard else ""
            self.bad(
                path,
                value,
                "is not a Diameter identity",
                f"use an FQDN such as \"{example}\" (letters, digits, '-', '.'){wildcard}",
            )
            return None
        return value

    def integer(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: Any,
        lo: int,
        hi: int | None = None,
    ) -> Any:
        span = f"{lo}-{hi}" if hi is not None else f"{lo} or more"
        value = self._get(t, prefix, key, default, f"add {key} = <integer {span}>")
        if value is MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(_join(prefix, key), value, f"an integer {span}")
            return default
        if value < lo or (hi is not None and value > hi):
            self.bad(_join(prefix, key), value, "is out of range", f"use {span}")
            return default
        return value

    def port(
        self, t: Mapping[str, Any], prefix: str, key: str, default: int, allow_zero: bool
    ) -> int:
        lo = 0 if allow_zero else 1
        span = f"{lo}-65535" + (" (0: the OS picks a free port)" if allow_zero else "")
        value = t.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            self.wrong_type(_join(prefix, key), value, f"an integer {span}")
            return default
        if not lo <= value <= 65535:
            self.bad(_join(prefix, key), value, "is not a TCP port", f"use {span}")
            return default
        return value

    def seconds(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: float,
        minimum: float | None = None,
        fix: str | None = None,
    ) -> float:
        """A duration in seconds: > 0, or >= ``minimum`` when given."""
        value = t.get(key, default)
        path = _join(prefix, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(path, value, "a number of seconds")
            return default
        low = value <= 0 if minimum is None else value < minimum
        if not math.isfinite(value) or low:
            bound = "more than 0" if minimum is None else f"at least {minimum}"
            self.bad(path, value, "is not a valid duration", fix or f"use {bound} seconds")
            return default
        return float(value)

    def boolean(self, t: Mapping[str, Any], prefix: str, key: str, default: bool) -> bool:
        value = t.get(key, default)
        if not isinstance(value, bool):
            self.wrong_type(_join(prefix, key), value, "true or false (no quotes)")
            return default
        return value

    def ip(self, t: Mapping[str, Any], prefix: str, key: str, default: str) -> str:
        return self.ip_item(_join(prefix, key), t.get(key, default)) or default

    def ip_item(self, path: str, value: Any) -> str | None:
        if not isinstance(value, str):
            self.wrong_type(path, value, 'an IP address in quotes such as "127.0.0.1"')
            return None
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            self.bad(
                path,
                value,
                "is not an IP address",
                'use an IPv4 or IPv6 address such as "127.0.0.1"',
            )
            return None

    def host_or_ip(self, t: Mapping[str, Any], prefix: str, key: str, default: str) -> str:
        value = t.get(key, default)
        path = _join(prefix, key)
        if not isinstance(value, str):
            self.wrong_type(path, value, "an IP address or host name in quotes")
            return default
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
        if not is_diameter_identity(value):
            self.bad(
                path,
                value,
                "is neither an IP address nor a host name",
                'use an address such as "192.0.2.10" or a resolvable name',
            )
            return default
        return value

    # -- applications and arrays
    def application(self, t: Mapping[str, Any], prefix: str, key: str, default: Any) -> Any:
        return self.application_item(_join(prefix, key), t.get(key, default))

    def application_item(self, path: str, value: Any) -> Application | None:
        app = application_for(value) if isinstance(value, str | int) else None
        if app is None:
            known = ", ".join(f'"{name}"' for name in APPLICATIONS)
            if isinstance(value, str | int) and not isinstance(value, bool):
                self.bad(
                    path,
                    value,
                    "is not a known application",
                    f"use {known} or an Application-Id 0-{UINT32_MAX}",
                )
            else:
                self.wrong_type(path, value, f"{known} or an Application-Id")
        return app

    def route_target_item(self, path: str, value: Any) -> RouteTarget | None:
        if isinstance(value, str):  # shorthand: peers = ["hss.b.net"]
            value = {"host": value}
        if not isinstance(value, dict):
            self.wrong_type(path, value, '{ host = "...", priority = 1, weight = 100 }')
            return None
        self.unknown_keys(value, path, {"host", "priority", "weight"})
        host = self.identity(value, path, "host", example="hss.primary.example")
        priority = self.integer(value, path, "priority", 1, 0, UINT32_MAX)
        weight = self.integer(value, path, "weight", 100, 1, UINT32_MAX)
        return None if host is None else RouteTarget(host, priority, weight)

    def array(
        self,
        t: Mapping[str, Any],
        prefix: str,
        key: str,
        default: Any,
        item: Any,
        min_items: int = 0,
    ) -> list[Any]:
        """A list whose items ``item(path, value)`` checks; bad items are left out."""
        value = self._get(t, prefix, key, default, f"add {key} = [...]")
        if value is MISSING:
            value = [] if default is MISSING else default
        path = _join(prefix, key)
        if not isinstance(value, list):
            self.wrong_type(path, value, "an array [ ... ]")
            return []
        if len(value) < min_items:
            self.bad(
                path, value, "is empty", f"list at least {min_items} item(s) or remove the key"
            )
        results = [item(f"{path}[{i}]", v) for i, v in enumerate(value)]
        return [r for r in results if r is not None]

    # -- files
    def pem_file(
        self, t: Mapping[str, Any], prefix: str, key: str, base: Path, kind: str, need: bool
    ) -> Any:
        value = self._get(
            t, prefix, key, MISSING if need else None, f'add {key} = "<path of a PEM file>"'
        )
        if value is MISSING or value is None:
            return None
        return self.pem_item(_join(prefix, key), value, base, kind, need)

    def pem_files(
        self, t: Mapping[str, Any], prefix: str, key: str, base: Path, kind: str, need: bool
    ) -> tuple[Path, ...]:
        value = self._get(
            t,
            prefix,
            key,
            MISSING if need else None,
            f'add {key} = ["<path of the CA certificates (PEM)>"]',
        )
        if value is MISSING or value is None:
            return ()
        if isinstance(value, str):
            value = [value]
            paths = [self.pem_item(_join(prefix, key), value[0], base, kind, need)]
        else:
            paths = self.array(
                t,
                prefix,
                key,
                MISSING,
                lambda p, v: self.pem_item(p, v, base, kind, need),
                min_items=1,
            )
        return tuple(p for p in paths if p is not None)

    def pem_item(self, path: str, value: Any, base: Path, kind: str, need: bool) -> Path | None:
        if not isinstance(value, str):
            self.wrong_type(path, value, "a file path in quotes")
            return None
        resolved = (base / value).resolve() if not os.path.isabs(value) else Path(value)
        if not need:
            return resolved
        try:
            data = resolved.read_bytes()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.bad(
                path,
                value,
                f"cannot be read ({reason}: {resolved})",
                "give the path of a readable PEM file (relative paths start at the config file)",
            )
            return None
        if f"-----BEGIN {kind}-----".encode() not in data and not (
            kind == "PRIVATE KEY" and b"PRIVATE KEY-----" in data
        ):
            self.bad(path, value, f"has no PEM {kind} block", f"use a PEM file with a {kind}")
            return None
        return resolved
