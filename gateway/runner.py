"""`cxgw gateway --config FILE`: run the Diameter node in the foreground.

Logs go to stderr. SIGTERM/SIGINT shut down gracefully (pending requests drained or
answered, DPR to every peer); SIGHUP re-reads the file and applies peers, routes and
logging without dropping connections that stay configured.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from typing import Any

from twisted.logger import Logger

from gateway.config import ConfigError, GatewayConfig, diff, load_config

log = Logger(namespace="cxgw.gateway")


APPLIED_AT_RELOAD = frozenset({"logging"})  # sections SIGHUP applies, beside [[peers]] and [[routes]]


class StartError(Exception):
    """The node cannot start as configured; the message names the key to change."""


def _address(port: Any) -> str:
    host = port.getHost()
    return f"[{host.host}]:{host.port}" if ":" in host.host else f"{host.host}:{host.port}"


def _url(port: Any) -> str:
    return f"http://{_address(port)}/"


def _literal(text: str) -> str:
    """``text`` as a twisted.logger format that prints it as it is."""
    return text.replace("{", "{{").replace("}", "}}")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the TOML configuration file")
    parser.add_argument("--check", action="store_true", help="validate the configuration and exit")


def install_reactor() -> None:
    """Twisted's asyncio reactor on uvloop's event loop (libuv's, in C) instead of asyncio's
    own: the same reactor API and the same node; each loop iteration and timer costs less,
    which shows most at few messages per read (bench/RESULTS.md, session 7). The tests run on it too
    (tests/conftest.py)."""
    import uvloop
    from twisted.internet import asyncioreactor

    asyncioreactor.install(eventloop=uvloop.new_event_loop())


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"cxgw gateway: {error}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: configuration is valid")
        return 0
    install_reactor()
    from twisted.internet import reactor

    from gateway.observe.logs import setup_logging

    logs = setup_logging(config.logging.level, config.logging.format)
    service = GatewayService(config, reactor, args.config, logs)
    try:
        service.start()
    except StartError as error:  # a port in use names the key to change
        print(f"cxgw gateway: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # unreadable certificates and the like: say so, exit 1
        print(f"cxgw gateway: cannot start: {error}", file=sys.stderr)
        return 1
    from gateway.node import tune_garbage_collector

    tune_garbage_collector()
    reactor.run(installSignalHandlers=False)  # ours are graceful (GatewayService.start)
    return service.exit_status


class GatewayService:
    """A node built from a GatewayConfig, with its listeners, signals and metrics."""

    def __init__(self, config: GatewayConfig, reactor: Any, path: str | None = None, logs: Any = None) -> None:
        from gateway.node import DiameterNode

        self.config, self.reactor, self.path, self.logs = config, reactor, path, logs
        self.exit_status = 0
        self.metrics = None
        if config.metrics is not None:
            from gateway.observe.counts import NodeMetrics

            self.metrics = NodeMetrics()
        self.node = DiameterNode(
            local_identity(config),
            reactor=reactor,
            peers=peer_settings(config),
            routes=routes(config),
            timers=timers(config),
            limits=limits(config),
            accept_realms=config.unknown_peers.accept_realms,
            tls=TlsPolicy(config.tls) if config.tls is not None else None,
            metrics=self.metrics,
            recorder=recorder(config.capture, reactor) if config.capture is not None else None,
        )
        from gateway.applications.assemble import install_roles

        self.roles = install_roles(config, self.node, reactor)  # the Cx roles, None for a relay
        self.ports: list[Any] = []
        self.endpoints: list[str] = []  # the serving line's HTTP endpoints ("metrics and /health on URL")
        self.stop_reason = "stopped"

    def start(self) -> None:
        for listen in self.config.listen:
            self.ports.append(self._bind(
                "[[listen]] port", listen.address, listen.port,
                lambda listen=listen: self.node.listen(listen.port, listen.address, tls=listen.transport == "tls",
                                                       reuse_port=listen.reuse_port)))
        if self.node.recorder is not None:
            self.node.recorder.start()
            announce_capture(self.config, [port.getHost().port for port in self.ports])
        if self.config.metrics is not None:
            from gateway.observe.http import start_http

            metrics = self.config.metrics
            self.ports.append(self._bind(
                "[metrics] port", metrics.address, metrics.port,
                lambda: start_http(self.reactor, metrics.address, metrics.port,
                                   _Collecting(self.metrics, self.node), self.health)))
            self.endpoints.append(f"metrics and /health on {_url(self.ports[-1])}")
        if self.config.provisioning is not None:  # the provisioning API (gateway.provisioning)
            from gateway.provisioning.server import ProvisioningServer

            settings = self.config.provisioning
            self.provisioning = ProvisioningServer(self.config, self.reactor)
            self.ports.append(self._bind("[provisioning] port", settings.address, settings.port,
                                         self.provisioning.listen))
            self.endpoints.append(self.provisioning.endpoint())
        self.node.start()
        if self.roles is not None:
            self.roles.start()
        signal.signal(signal.SIGTERM, lambda *_: self.reactor.callFromThread(self.shutdown, "SIGTERM"))
        signal.signal(signal.SIGINT, lambda *_: self.reactor.callFromThread(self.shutdown, "SIGINT"))
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, lambda *_: self.reactor.callFromThread(self.reload))
        self.announce()

    def _bind(self, key: str, address: str, port: int, listen: Any) -> Any:
        """``listen()``'s listening port; a port in use is a StartError naming ``key``
        in this configuration file, the address and the way out."""
        from twisted.internet.error import CannotListenError

        try:
            return listen()
        except (CannotListenError, OSError) as error:
            cause = getattr(error, "socketError", error)
            where = f"{key} = {port} in {self.path or 'the configuration'}: address {address}:{port}"
            if getattr(cause, "errno", None) == errno.EADDRINUSE:
                raise StartError(f"{where} already in use; choose another port or stop the other process") from error
            if getattr(cause, "errno", None) == errno.EACCES:
                raise StartError(f"{where} needs privileges (a port below 1024); choose a port above 1023 "
                                 "or grant CAP_NET_BIND_SERVICE (docs/operations.md)") from error
            reason = getattr(cause, "strerror", None) or str(cause)
            raise StartError(f"{where} cannot be listened on: {reason}") from error

    def announce(self) -> None:
        """The one line that says the node serves: who, in which roles, where."""
        node = self.config.node
        listeners = ", ".join(f"{_address(port)} ({listen.transport})"
                              for port, listen in zip(self.ports, self.config.listen, strict=False))
        line = (f"{node.origin_host} serving: realm {node.origin_realm}, roles {'+'.join(node.roles)}; "
                f"Diameter on {listeners or 'no port (it only connects out)'}; "
                f"{'; '.join(self.endpoints) if self.endpoints else 'no HTTP endpoint'}")
        log.info(_literal(line))  # the facts are the message: no key=value repeats them

    def health(self) -> Any:
        """/health: unavailable while stopping; degraded, and why, when a realm the node
        routes to has none of its peers open (the partner role's primary gateway, say)."""
        from gateway.observe.http import Health

        node = self.node
        problems = []
        for route in self.config.routes:
            hosts = [target.host for target in route.peers]
            if hosts and not any(node.peers.get(host.lower()) is not None and node.peers[host.lower()].available
                                 for host in hosts):
                states = ", ".join(f"{host} {node.peers[host.lower()].state if host.lower() in node.peers else 'unknown'}"
                                   for host in hosts)
                problems.append(f"realm {route.realm}: no peer open ({states})")
        return Health(not node.stopping, {peer.host: peer.state for peer in node.peers.values()}, problems)

    def shutdown(self, reason: str = "stopped") -> None:
        if self.node.stopping:
            return
        self.stop_reason = reason
        for port in self.ports[len(self.config.listen):]:  # the HTTP endpoint
            port.stopListening()
        self.node.stop().addBoth(self._stopped)

    def _stopped(self, _: object) -> None:
        if self.roles is not None:
            self.roles.stop()
        if getattr(self, "provisioning", None) is not None:
            self.provisioning.close()  # its store, after its port stopped (shutdown)
        if self.node.recorder is not None:
            self.node.recorder.stop()  # what is queued, FIN for what is open, the file closed
        log.info(_literal(f"{self.config.node.origin_host} has stopped ({self.stop_reason}): "
                          "peers disconnected, ports closed"))
        self.reactor.stop()

    def reload(self) -> None:
        from twisted.logger import Logger

        log = Logger(namespace="cxgw.reload")
        try:
            new = load_config(self.path)  # type: ignore[arg-type]
        except ConfigError as error:
            log.error("reload refused, keeping the running configuration: {error}", error=str(error))
            return
        changes = diff(self.config, new)
        # peers, routes and [logging] apply now; every other section is read at start only
        # ([timers], [limits] and [unknown_peers] too: the node and its peers keep theirs)
        later = [section for section in changes.sections_changed if section not in APPLIED_AT_RELOAD]
        if later:
            log.warn("reload: {sections} changed; they apply after a restart", sections=", ".join(later))
        self.node.reconfigure(peer_settings(new), routes(new))
        if self.logs is not None:
            self.logs.configure(new.logging.level, new.logging.format)
        log.info(
            "reloaded {path}: peers +{added} -{removed} ~{changed}, routes now {routes}",
            path=self.path, added=len(changes.peers_added), removed=len(changes.peers_removed),
            changed=len(changes.peers_changed), routes=len(new.routes),
        )
        self.config = new


class _Collecting:
    """The registry as the HTTP endpoint sees it: brought up to date on each scrape."""

    def __init__(self, metrics: Any, node: Any) -> None:
        self.metrics, self.node = metrics, node

    def expose(self) -> str:
        self.metrics.collect(self.node)
        return self.metrics.metrics.registry.expose()


class TlsPolicy:
    """The node's TLS needs (RFC 6733 §13) on top of gateway.transport.tls."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def server_context(self) -> Any:
        from gateway.transport.tls import server_context

        return server_context(self.config)

    def client_context(self, expected_name: str) -> Any:
        from gateway.transport.tls import client_context

        return client_context(self.config, expected_name)

    def peer_identity(self, transport: Any) -> set[str]:
        from gateway.transport.tls import peer_identity

        return peer_identity(transport)

    def check_identity(self, names: set[str], origin_host: str) -> bool:
        if not self.config.verify_peer_identity:
            return True
        from gateway.transport.tls import check_identity

        return check_identity(names, origin_host)


def recorder(capture: Any, reactor: Any) -> Any:
    """The [capture] recorder (captures.recorder); its errors are logged in the reactor thread."""
    from twisted.logger import Logger

    from captures.recorder import Recorder

    log = Logger(namespace="cxgw.capture")
    return Recorder(
        capture.file, max_bytes=capture.max_bytes, max_seconds=capture.max_seconds,
        commands=capture.commands, peers=capture.peers, keep_key_material=capture.keep_key_material,
        buffer_messages=capture.buffer_messages,
        on_error=lambda text: reactor.callFromThread(log.error, "{text}", text=text),
    )


def announce_capture(config: GatewayConfig, listening: list[int]) -> None:
    """Log where the capture goes and which ports to decode as Diameter (tshark and
    Wireshark dissect Diameter on 3868 only unless told: Decode As)."""
    from twisted.logger import Logger

    capture = config.capture
    tls = sorted({port for port, li in zip(listening, config.listen, strict=False) if li.transport == "tls"}
                 | {peer.port for peer in config.peers if peer.transport == "tls"})
    ports = sorted(set(listening) | {peer.port for peer in config.peers})
    decode = " ".join(f"-d tcp.port=={port},diameter" for port in ports)
    Logger(namespace="cxgw.capture").info(
        "recording Diameter messages to {file}{keys}; open with: tshark -r FILE {decode}{tls}",
        file=str(capture.file),  # type: ignore[union-attr]
        keys="" if not capture.keep_key_material else " (key material kept!)",  # type: ignore[union-attr]
        decode=decode,
        tls=f" (ports {', '.join(map(str, tls))} are TLS: their decrypted plaintext is recorded)" if tls else "",
    )


# -- GatewayConfig -> node settings -------------------------------------------------------------
RELAY_APPLICATION = 0xFFFFFFFF  # RFC 6733 §2.4
def local_identity(config: GatewayConfig) -> Any:
    from gateway.peer.capabilities import Application, LocalIdentity

    node = config.node
    applications = [Application(app.application_id, app.vendor_id) for app in node.applications]
    if "relay" in node.roles and not any(app.application_id == RELAY_APPLICATION for app in applications):
        # RFC 6733 §2.4: a relay advertises the Relay-Application-Id (beside Cx, which
        # Kamailio's S-CSCF must see before it sends a MAR: docs/interop.md)
        applications.append(Application(RELAY_APPLICATION))
    return LocalIdentity(
        origin_host=node.origin_host,
        origin_realm=node.origin_realm,
        host_ip_addresses=tuple(node.host_ip_addresses),
        vendor_id=node.vendor_id,
        product_name=node.product_name,
        origin_state_id=node.origin_state_id,
        firmware_revision=node.firmware_revision,
        applications=tuple(applications),
    )


def peer_settings(config: GatewayConfig) -> list[Any]:
    from gateway.settings import PeerSettings

    return [
        PeerSettings(
            host=peer.host, realm=peer.realm, address=peer.address, port=peer.port,
            transport=peer.transport, connect=peer.connect, tls_name=peer.tls_name or None,
        )
        for peer in config.peers
    ]


def routes(config: GatewayConfig) -> list[Any]:
    from gateway.routing.table import Route, RouteAction, RouteTarget

    return [
        Route(
            route.realm, route.application.application_id, RouteAction(route.action),
            [RouteTarget(target.host, target.priority, target.weight) for target in route.peers],
        )
        for route in config.routes
    ]


def timers(config: GatewayConfig) -> Any:
    from dataclasses import asdict

    from gateway.settings import Timers

    return Timers(**asdict(config.timers))


def limits(config: GatewayConfig) -> Any:
    from dataclasses import asdict

    from gateway.settings import Limits

    return Limits(**asdict(config.limits))
