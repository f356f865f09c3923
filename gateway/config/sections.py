"""One reader per configuration section, from TOML tables to dataclasses (see gateway.config)."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from gateway.config.checks import MISSING, Checker, show
from gateway.config.schema import (
    APPLICATIONS,
    CAPTURE_SUFFIXES,
    CX_ROLES,
    DEFAULT_ROUTE_REALM,
    DIAMETER_PORT,
    DIAMETER_TLS_PORT,
    LOG_FORMATS,
    LOG_LEVELS,
    MAX_BINDINGS_IN_MEMORY,
    MAX_VECTORS_MAX,
    MESSAGE_SIZE_MAX,
    MESSAGE_SIZE_MIN,
    METRICS_PORT,
    PROVISIONING_PORT,
    ROLES,
    ROUTE_ACTIONS,
    STORE_DEFAULT_FILE,
    STORE_THREADS_MAX,
    TRANSPORTS,
    TWINIT_MINIMUM,
    UINT32_MAX,
    Application,
    CaptureConfig,
    GatewayConfig,
    HssConfig,
    LimitsConfig,
    ListenConfig,
    LoggingConfig,
    MetricsConfig,
    NodeConfig,
    PartnerConfig,
    PartnerPeerConfig,
    PeerConfig,
    PrimaryConfig,
    ProvisioningConfig,
    ProvisioningTlsConfig,
    RouteConfig,
    StoreConfig,
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
    "store": "table",
    "hss": "table",
    "partner": "table",
    "primary": "table",
    "capture": "table",
    "provisioning": "table",
}
_ROLE_SECTIONS = ("hss", "partner", "primary")  # [hss], [partner], [primary]: one per role


class _Parser:
    """Turns the TOML document into dataclasses, one method per section."""

    def __init__(self, check: Checker, base_dir: Path, now: float) -> None:
        self.check = check
        self.base_dir = base_dir
        self.now = now
        self.roles_valid = True  # node.role parsed without error: the role rules can be judged

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
        unknown_peers = self.unknown_peers(sections["unknown_peers"])
        present = {name for name in ("store", *_ROLE_SECTIONS) if name in data}
        plays = set(node.roles) if self.roles_valid else set(ROLES)  # no cascade of errors
        config = GatewayConfig(
            source=check.source,
            node=node,
            listen=listen,
            tls=tls,
            timers=self.timers(sections["timers"]),
            limits=self.limits(sections["limits"]),
            peers=peers,
            unknown_peers=unknown_peers,
            routes=self.routes(sections["routes"], node, peers),
            metrics=self.metrics(sections["metrics"]) if "metrics" in data else None,
            logging=self.logging(sections["logging"]),
            store=self.store(sections["store"], "store" in present, plays),
            hss=self.hss(sections["hss"]) if "hss" in plays | present else None,
            partner=self.partner(sections["partner"]) if "partner" in plays | present else None,
            primary=(
                self.primary(sections["primary"], node, peers, unknown_peers)
                if "primary" in plays | present
                else None
            ),
            capture=self.capture(sections["capture"]) if "capture" in data else None,
            provisioning=self.provisioning(sections["provisioning"]) if "provisioning" in data else None,
        )
        self.cross_checks(config)
        if self.roles_valid:
            self.role_checks(config, present, sections)
        return config

    def node(self, t: dict[str, Any]) -> NodeConfig:
        c = self.check
        keys = {f.name for f in dataclasses.fields(NodeConfig)} - {"roles"} | {"role"}
        c.unknown_keys(t, "node", keys)
        origin_host = c.identity(t, "node", "origin_host", example="gw.partner.example")
        origin_realm = c.identity(t, "node", "origin_realm", example="partner.example")
        ips = c.array(t, "node", "host_ip_addresses", ["127.0.0.1"], c.ip_item, min_items=1)
        apps = c.array(t, "node", "applications", ["cx"], c.application_item, min_items=1)
        state_id = c.integer(t, "node", "origin_state_id", None, 0, UINT32_MAX)
        return NodeConfig(
            origin_host=origin_host or "",
            origin_realm=origin_realm or "",
            roles=self.roles(t),
            product_name=c.string(t, "node", "product_name", "cxgw", nonempty=True),
            vendor_id=c.integer(t, "node", "vendor_id", 0, 0, UINT32_MAX),
            firmware_revision=c.integer(t, "node", "firmware_revision", None, 0, UINT32_MAX),
            host_ip_addresses=tuple(ips),
            applications=tuple(_unique_apps(apps)),
            origin_state_id=int(self.now) & UINT32_MAX if state_id is None else state_id,
        )

    def roles(self, t: dict[str, Any]) -> tuple[str, ...]:
        """``role = "partner"`` or ``role = ["primary", "hss"]``: the roles this node plays."""
        c = self.check
        value = t.get("role", "relay")
        errors = len(c.errors)
        if isinstance(value, str):
            found = [c.one_of_item("node.role", value, ROLES)]
        elif isinstance(value, list) and value:
            found = [c.one_of_item(f"node.role[{i}]", v, ROLES) for i, v in enumerate(value)]
        elif isinstance(value, list):
            c.bad("node.role", value, "is empty", 'name at least one role, such as "relay"')
            found = []
        else:
            options = ", ".join(f'"{r}"' for r in ROLES)
            c.wrong_type("node.role", value, f"one of {options} or an array of them")
            found = []
        roles = tuple(dict.fromkeys(r for r in found if r is not None))
        if "relay" in roles and len(roles) > 1:
            # RFC 6733 §2.8.1: a relay forwards by routing AVPs only; the Cx roles answer and
            # rewrite Cx requests (TS 29.229 §6.1.3), so one node cannot be both.
            others = [r for r in roles if r != "relay"]
            keep = f'"{others[0]}"' if len(others) == 1 else show(others)
            c.bad(
                "node.role",
                value,
                'combines "relay" with other roles (a relay serves no application itself)',
                f'use role = "relay" alone, or drop "relay": role = {keep}',
            )
        self.roles_valid = len(c.errors) == errors
        return roles if self.roles_valid else ("relay",)

    def listener(self, t: dict[str, Any], path: str) -> ListenConfig:
        c = self.check
        c.unknown_keys(t, path, {"address", "port", "transport", "reuse_port"})
        transport = c.choice(t, path, "transport", "tcp", TRANSPORTS)
        default_port = DIAMETER_TLS_PORT if transport == "tls" else DIAMETER_PORT
        return ListenConfig(
            address=c.ip(t, path, "address", "127.0.0.1"),
            port=c.port(t, path, "port", default_port, allow_zero=True),
            transport=transport,
            reuse_port=c.boolean(t, path, "reuse_port", False),
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

    def store(self, t: dict[str, Any], present: bool, plays: set[str]) -> StoreConfig | None:
        """``[store]``; absent, the embedded SQLite file next to the configuration."""
        c = self.check
        if not present:
            if plays.isdisjoint(CX_ROLES):
                return None
            return StoreConfig(target=str((self.base_dir / STORE_DEFAULT_FILE).resolve()))
        c.unknown_keys(t, "store", {f.name for f in dataclasses.fields(StoreConfig)})
        d = StoreConfig(target="")
        if "target" in t:
            target = c.store_target("store.target", t["target"], self.base_dir)
        else:
            c.missing(
                "store.target",
                f'add target = "{STORE_DEFAULT_FILE}" (an SQLite file; relative paths start at '
                'this file) or target = "postgresql://user@host/dbname"',
            )
            target = None
        return StoreConfig(
            target=target or "",
            deadline=c.seconds(t, "store", "deadline", d.deadline),
            threads=c.integer(t, "store", "threads", d.threads, 1, STORE_THREADS_MAX),
        )

    def capture(self, t: dict[str, Any]) -> CaptureConfig:
        """``[capture]``: where and what to record (captures.recorder)."""
        from captures.recorder import command_code

        c = self.check
        c.unknown_keys(t, "capture", {f.name for f in dataclasses.fields(CaptureConfig)})
        d = CaptureConfig(file=Path())
        target = self.capture_file(t)
        max_seconds = t.get("max_seconds", 0)
        if max_seconds != 0 or isinstance(max_seconds, bool):
            max_seconds = c.seconds(t, "capture", "max_seconds", 0.0)
        commands = c.array(t, "capture", "commands", [], lambda path, value: self.command_item(path, value, command_code))
        peers = c.array(t, "capture", "peers", [], self.capture_peer_item)
        return CaptureConfig(
            file=target or Path(),
            max_bytes=c.integer(t, "capture", "max_bytes", d.max_bytes, 0),
            max_seconds=float(max_seconds),
            commands=tuple(dict.fromkeys(commands)),
            peers=tuple(dict.fromkeys(peers)),
            keep_key_material=c.boolean(t, "capture", "keep_key_material", d.keep_key_material),
            buffer_messages=c.integer(t, "capture", "buffer_messages", d.buffer_messages, 1),
        )

    def capture_file(self, t: dict[str, Any]) -> Path | None:
        c = self.check
        if "file" not in t:
            c.missing("capture.file", 'add file = "cxgw.pcapng" (relative paths start at this file)')
            return None
        value = t["file"]
        if not isinstance(value, str) or not value.strip():
            c.bad("capture.file", value, "is not a file path", 'use a path in quotes such as "cxgw.pcapng"')
            return None
        path = Path(value)
        resolved = path if path.is_absolute() else (self.base_dir / path).resolve()
        if resolved.suffix.lower() not in CAPTURE_SUFFIXES:
            c.bad("capture.file", value, "ends neither in .pcap nor in .pcapng",
                  f'name the file "{path.stem}.pcapng" (pcapng, with comments) or "{path.stem}.pcap"')
            return None
        if resolved.is_dir() or not resolved.parent.is_dir():
            c.bad("capture.file", value, f"is not in an existing directory ({resolved.parent})",
                  "create the directory or fix the path (relative paths start at the config file)")
            return None
        return resolved

    def command_item(self, path: str, value: Any, parse: Any) -> int | None:
        code = parse(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
        if code is None:
            self.check.bad(path, value, "is not a Diameter command",
                           'use a name such as "MAR" (or "MAR/MAA") or a Command-Code such as 303')
        return code

    def capture_peer_item(self, path: str, value: Any) -> str | None:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not an address: then a Diameter identity
                return str(ipaddress.ip_address(value))
        return self.check.identity_item(path, value, "hss.primary.example")

    def provisioning(self, t: dict[str, Any]) -> ProvisioningConfig:
        """``[provisioning]``: the API's socket, its bearer token file, optional HTTPS."""
        c = self.check
        c.unknown_keys(t, "provisioning", {"address", "port", "token_file", "tls"})
        token_file = c.token_file(t, "provisioning", "token_file", self.base_dir)
        tls = None
        if "tls" in t:
            raw = t["tls"]
            if not isinstance(raw, dict):
                c.wrong_type("provisioning.tls", raw, "a table ([provisioning.tls])")
            else:
                tls = self.provisioning_tls(raw)
        return ProvisioningConfig(
            token_file=token_file or Path(),
            address=c.ip(t, "provisioning", "address", "127.0.0.1"),
            port=c.port(t, "provisioning", "port", PROVISIONING_PORT, allow_zero=True),
            tls=tls,
        )

    def provisioning_tls(self, t: dict[str, Any]) -> ProvisioningTlsConfig:
        c = self.check
        prefix = "provisioning.tls"
        c.unknown_keys(t, prefix, {f.name for f in dataclasses.fields(ProvisioningTlsConfig)})
        mutual = c.boolean(t, prefix, "require_client_certificate", False)
        cas = c.pem_files(t, prefix, "ca_certificates", self.base_dir, "CERTIFICATE", mutual)
        if mutual and not cas and "ca_certificates" in t:
            c.bad(f"{prefix}.ca_certificates", t["ca_certificates"], "lists no CA",
                  "list the CAs that issue the clients' certificates")  # fmt: skip
        return ProvisioningTlsConfig(
            certificate=c.pem_file(t, prefix, "certificate", self.base_dir, "CERTIFICATE", True) or Path(),
            private_key=c.pem_file(t, prefix, "private_key", self.base_dir, "PRIVATE KEY", True) or Path(),
            ca_certificates=cas,
            require_client_certificate=mutual,
        )

    def hss(self, t: dict[str, Any]) -> HssConfig:
        c = self.check
        c.unknown_keys(t, "hss", {f.name for f in dataclasses.fields(HssConfig)})
        d = HssConfig()
        return HssConfig(
            max_vectors=c.integer(t, "hss", "max_vectors", d.max_vectors, 1, MAX_VECTORS_MAX)
        )

    def partner(self, t: dict[str, Any]) -> PartnerConfig:
        c = self.check
        c.unknown_keys(t, "partner", {f.name for f in dataclasses.fields(PartnerConfig)})
        d = PartnerConfig()
        return PartnerConfig(
            hide_topology=c.boolean(t, "partner", "hide_topology", d.hide_topology),
            revocation_poll=c.seconds(t, "partner", "revocation_poll", d.revocation_poll),
            bindings_in_memory=c.integer(t, "partner", "bindings_in_memory", d.bindings_in_memory, 0,
                                         MAX_BINDINGS_IN_MEMORY),
        )

    def primary(
        self,
        t: dict[str, Any],
        node: NodeConfig,
        peers: tuple[PeerConfig, ...],
        unknown_peers: UnknownPeersConfig,
    ) -> PrimaryConfig:
        c = self.check
        c.unknown_keys(t, "primary", {f.name for f in dataclasses.fields(PrimaryConfig)})
        d = PrimaryConfig()
        partners: list[PartnerPeerConfig] = []
        seen: dict[str, str] = {}
        for i, item in enumerate(self._partner_tables(t)):
            path = f"primary.partners[{i}]"
            partner = self.partner_peer(item, path, node, peers, unknown_peers)
            if partner is None:
                continue
            key = partner.host.lower()
            if key in seen:
                c.bad(
                    f"{path}.host",
                    partner.host,
                    f"is already listed by {seen[key]}",
                    "list each partner gateway once",
                )
                continue
            seen[key] = path
            partners.append(partner)
        return PrimaryConfig(
            partners=tuple(partners),
            hide_topology=c.boolean(t, "primary", "hide_topology", d.hide_topology),
            hss_realm=c.identity(t, "primary", "hss_realm", None, example="primary.example"),
            hss_host=c.identity(t, "primary", "hss_host", None, example="hss.primary.example"),
            revocation_poll=c.seconds(t, "primary", "revocation_poll", d.revocation_poll),
            bindings_in_memory=c.integer(t, "primary", "bindings_in_memory", d.bindings_in_memory, 0,
                                         MAX_BINDINGS_IN_MEMORY),
        )

    def _partner_tables(self, t: dict[str, Any]) -> list[dict[str, Any]]:
        c = self.check
        value = t.get("partners", [])
        if not isinstance(value, list):
            c.wrong_type("primary.partners", value, "[[primary.partners]] (an array of tables)")
            return []
        tables = []
        for i, item in enumerate(value):
            if isinstance(item, dict):
                tables.append(item)
            else:
                c.wrong_type(f"primary.partners[{i}]", item, "a table under [[primary.partners]]")
        return tables

    def partner_peer(
        self,
        t: dict[str, Any],
        path: str,
        node: NodeConfig,
        peers: tuple[PeerConfig, ...],
        unknown_peers: UnknownPeersConfig,
    ) -> PartnerPeerConfig | None:
        c = self.check
        c.unknown_keys(t, path, {f.name for f in dataclasses.fields(PartnerPeerConfig)})
        host = c.identity(t, path, "host", example="gw.partner.example")
        if "partner_id" in t:
            partner_id = c.token_item(f"{path}.partner_id", t["partner_id"], "partner-a")
        else:
            c.missing(
                f"{path}.partner_id",
                'add partner_id = "partner-a", the name its agreements have in the store '
                "(cxgw provision agreement add partner-a ...)",
            )
            partner_id = None
        if host is not None:
            known = any(peer.host.lower() == host.lower() for peer in peers)
            if host.lower() == node.origin_host.lower():
                c.bad(
                    f"{path}.host",
                    host,
                    "is this node's own node.origin_host",
                    "list the partner gateways' Origin-Hosts here",
                )
                host = None
            elif not known and not unknown_peers.accept_realms:
                # RFC 6733 §5.3: a peer not in [[peers]] connects only if its realm is accepted
                c.bad(
                    f"{path}.host",
                    host,
                    "is not defined in [[peers]] and unknown_peers.accept_realms is empty, "
                    "so it can never connect",
                    "add a [[peers]] with this host (connect = false if it connects to us) "
                    "or its realm to unknown_peers.accept_realms",
                )
                host = None
        if host is None or partner_id is None:
            return None
        return PartnerPeerConfig(host=host, partner_id=partner_id)

    def role_checks(
        self, config: GatewayConfig, present: set[str], sections: Mapping[str, Any]
    ) -> None:
        """Rules between node.role and the sections the roles use."""
        c = self.check
        roles = config.node.roles
        role_text = show(roles[0]) if len(roles) == 1 else show(list(roles))
        cx_roles = [r for r in roles if r in CX_ROLES]
        for name in _ROLE_SECTIONS:
            if name in present and name not in roles:
                c.error(
                    f"[{name}] is set but node.role is {role_text}; remove the section or "
                    f'add "{name}" to node.role'
                )
        if config.provisioning is not None and not cx_roles:
            c.error(
                f"[provisioning] is set but node.role is {role_text}, which has no SIP database to "
                'provision; remove the section or play a role that does: "hss", "partner" or "primary"'
            )
        if "store" in present and not cx_roles:
            c.error(
                f"[store] is set but node.role is {role_text}, which uses no SIP database; "
                'remove the section or play a role that does: "hss", "partner" or "primary"'
            )
        if cx_roles and APPLICATIONS["cx"] not in config.node.applications:
            names = [int(a.name) if a.name.isdigit() else a.name for a in config.node.applications]
            c.bad(
                "node.applications",
                names,
                f'does not include "cx", which node.role {role_text} serves (TS 29.229)',
                'add "cx" to node.applications',
            )
        store = config.store
        if store is not None and store.deadline >= config.timers.tx:
            default = "" if "deadline" in sections["store"] else " (the default)"
            c.error(
                f"store.deadline = {show(store.deadline)}{default} is not below timers.tx = "
                f"{show(config.timers.tx)}: a store call must end before the request it serves "
                "times out; lower store.deadline or raise timers.tx"
            )
        if config.primary is not None and "primary" in roles:
            self.primary_checks(config, config.primary, sections["primary"], "hss" in roles)

    def primary_checks(
        self, config: GatewayConfig, primary: PrimaryConfig, raw: Mapping[str, Any], local_hss: bool
    ) -> None:
        c = self.check
        if not primary.partners and "partners" not in raw:
            c.missing(
                "primary.partners",
                "a primary with no partner serves nobody: add [[primary.partners]] with "
                'host = "gw.partner.example" and partner_id = "partner-a"',
            )
        elif raw.get("partners") == []:
            c.bad(
                "primary.partners",
                [],
                "is empty: a primary with no partner serves nobody",
                'add [[primary.partners]] with host = "gw.partner.example" and '
                'partner_id = "partner-a"',
            )
        if local_hss:
            # The HSS answers in this process: nothing to route to.
            for key in ("hss_realm", "hss_host"):
                if key in raw:
                    c.bad(
                        f"primary.{key}",
                        raw[key],
                        "is set but the hss role runs in this process",
                        f'remove primary.{key}, or remove "hss" from node.role',
                    )
            return
        if primary.hss_realm is None:
            if "hss_realm" not in raw:
                c.missing(
                    "primary.hss_realm",
                    'the hss role does not run in this process: add hss_realm = "primary.example" '
                    '(the HSS\'s realm, with a [[routes]] to it) or add "hss" to node.role',
                )
            return
        self.hss_route_check(config, primary.hss_realm, primary.hss_host)

    def hss_route_check(self, config: GatewayConfig, realm: str, host: str | None) -> None:
        """The HSS's realm must be routed (RFC 6733 §6.1.6), as the routing table looks up."""
        c = self.check
        cx = APPLICATIONS["cx"].application_id
        relay = APPLICATIONS["relay"].application_id
        by_key = {route.key: (i, route) for i, route in enumerate(config.routes)}
        found = next(
            (
                by_key[key]
                for key in (
                    (realm.lower(), cx),
                    (realm.lower(), relay),
                    (DEFAULT_ROUTE_REALM, cx),
                    (DEFAULT_ROUTE_REALM, relay),
                )
                if key in by_key
            ),
            None,
        )
        target = host or "hss.primary.example"
        if found is None:
            c.bad(
                "primary.hss_realm",
                realm,
                "has no [[routes]] for application cx, so no MAR can reach the HSS",
                f'add [[routes]] with realm = "{realm}", action = "proxy", '
                f'peers = ["{target}"] (a [[peers]] host)',
            )
            return
        i, route = found
        if route.action == "local":
            c.bad(
                f"routes[{i}].action",
                "local",
                f'routes primary.hss_realm "{realm}" to this node, where no hss role runs',
                f'use action = "proxy" with peers = ["{target}"], or add "hss" to node.role',
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
        provisioning = config.provisioning
        if metrics is not None and provisioning is not None and provisioning.port and (
            (provisioning.address, provisioning.port) == (metrics.address, metrics.port)
        ):
            c.bad("provisioning.port", provisioning.port, f"on {provisioning.address} is already used by [metrics]",
                  "give the provisioning API its own port")  # fmt: skip
        if provisioning is not None and provisioning.port and (provisioning.address, provisioning.port) in taken:
            c.bad("provisioning.port", provisioning.port,
                  f"on {provisioning.address} is already used by {taken[(provisioning.address, provisioning.port)]}",
                  "give the provisioning API its own port")  # fmt: skip
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
