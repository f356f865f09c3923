"""One reader per configuration section, from TOML tables to dataclasses (see gateway.config)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway.config.checks import MISSING, Checker
from gateway.config.schema import (
    DIAMETER_PORT,
    DIAMETER_TLS_PORT,
    LOG_FORMATS,
    LOG_LEVELS,
    MESSAGE_SIZE_MAX,
    MESSAGE_SIZE_MIN,
    METRICS_PORT,
    ROLES,
    ROUTE_ACTIONS,
    TRANSPORTS,
    TWINIT_MINIMUM,
    UINT32_MAX,
    Application,
    GatewayConfig,
    LimitsConfig,
    ListenConfig,
    LoggingConfig,
    MetricsConfig,
    NodeConfig,
    PeerConfig,
    RouteConfig,
    TimersConfig,
    TlsConfig,
    UnknownPeersConfig,
)

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
            close_grace=c.seconds(t, "timers", "close_grace", d.close_grace, minimum=0),
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
            max_awaiting_cer=c.integer(t, "limits", "max_awaiting_cer", d.max_awaiting_cer, 1),
            max_accept_rate=c.integer(t, "limits", "max_accept_rate", d.max_accept_rate, 1),
            max_cer_size=c.integer(
                t, "limits", "max_cer_size", d.max_cer_size, MESSAGE_SIZE_MIN, MESSAGE_SIZE_MAX
            ),
            max_unknown_peers=c.integer(t, "limits", "max_unknown_peers", d.max_unknown_peers, 0),
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
