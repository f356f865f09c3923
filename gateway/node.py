"""A Diameter node on Twisted: listeners, peers, incoming CER, dispatch, shutdown, reload.

The node owns the peers (gateway.peer.executor), the routing table (gateway.routing.table), the
pending-request table (gateway.routing.pending) and the local applications; gateway.routing.proxy does
the forwarding. The reactor is passed in (twisted.names style), so tests can give a
``task.Clock`` for timers.
"""

from __future__ import annotations

import gc
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import ClientFactory, Factory
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from cx_codec import DecodeError, Message
from cx_codec.errors import ResultCode
from gateway.observe.counts import MessageCounts
from gateway.peer.capabilities import (
    LocalIdentity,
    build_cea,
    cea_for_malformed,
    cer_origin,
    decode_capabilities,
    judge_capabilities,
)
from gateway.peer.executor import Peer
from gateway.routing.local import DuplicateCache, LocalApplication
from gateway.routing.pending import PendingRequest, PendingRequests
from gateway.routing.proxy import LOCAL_GRACE, Proxy
from gateway.routing.relay import StreamRelay
from gateway.routing.table import Route, RoutingTable
from gateway.settings import Limits, PeerSettings, Timers
from gateway.transport.admission import AcceptBudget
from gateway.transport.connection import DiameterConnection, WriteBatch
from gateway.transport.framing import FramingError

log = Logger(namespace="cxgw.node")

BASE_COMMANDS = frozenset({257, 280, 282})  # CER/CEA, DWR/DWA, DPR/DPA (RFC 6733 §5)
CER = 257


@dataclass(slots=True)
class Counters:
    """Plain counters; gateway.observe.metrics exports them when configured."""

    late_answers: int = 0
    overload: dict[str, int] = field(default_factory=dict)
    generated: dict[int, int] = field(default_factory=dict)


class DiameterNode:
    def __init__(
        self,
        local: LocalIdentity,
        *,
        reactor: Any,
        peers: Iterable[PeerSettings] = (),
        routes: Iterable[Route] = (),
        timers: Timers = Timers(),
        limits: Limits = Limits(),
        accept_realms: Iterable[str] = (),
        tls: Any = None,
        metrics: Any = None,
        recorder: Any = None,
    ) -> None:
        self.local = local
        self.reactor = self.clock = reactor
        self.timers = timers
        self.limits = limits
        self.max_message_size = limits.max_message_size
        self.accept_realms = {realm.lower() for realm in accept_realms}
        self.tls = tls
        self.metrics = metrics  # a gateway.observe.counts.NodeMetrics, or None: no per-message counting
        self.counting = metrics is not None
        self.recorder = recorder  # a captures.recorder.Recorder: taps every connection, or None
        self.message_counts = MessageCounts()
        self.counters = Counters()
        self.routing = RoutingTable(routes)
        self.pending = PendingRequests(reactor, timers.tx, self._expired)
        self.duplicates = DuplicateCache(limits.duplicate_cache_size, limits.duplicate_ttl, reactor)
        self.applications: dict[int, LocalApplication] = {}
        self.peers: dict[str, Peer] = {}
        for settings in peers:
            self.peers[settings.host.lower()] = Peer(self, settings)
        self.proxy = Proxy(self)
        self.relay = StreamRelay(self)
        self.connections: set[DiameterConnection] = set()
        self.ports: list[IListeningPort] = []
        self.stopping = False
        self._all_closed: Deferred[None] | None = None  # fires when the last connection is gone (stop)
        # accepted connections that have not sent their CER, oldest first, with their timers
        self.awaiting_cer: dict[DiameterConnection, Any] = {}
        self.accepting = AcceptBudget(limits.max_accept_rate, limits.max_awaiting_cer)
        self._resume_accepting: Any = None  # the timer while accepting is paused
        self._header_ceas: dict[tuple[int, str, bytes | None], bytes] = {}  # by (result, reason, failed)
        self.now = 0.0  # the reactor's time at the start of the current batch
        self.batch = WriteBatch()  # the writes of the read being processed, flushed at its end
        self._end_to_end = ((int(time.time()) & 0xFFF) << 20) | (id(self) & 0xFFFFF)

    # -- lifecycle ----------------------------------------------------------------------
    def listen(
        self, port: int = 0, address: str = "127.0.0.1", tls: bool = False, reuse_port: bool = False
    ) -> IListeningPort:
        factory = Factory.forProtocol(lambda: DiameterConnection(self, "R"))
        factory.noisy = False
        if reuse_port:  # SO_REUSEPORT: other processes may listen on this port too
            listening = self._listen_reusing_port(port, address, factory, tls)
        elif tls:
            listening = self.reactor.listenSSL(port, factory, self.tls.server_context(), interface=address)
        else:
            listening = self.reactor.listenTCP(port, factory, interface=address)
        self.ports.append(listening)
        log.info("listening on {address}:{port} ({transport})", address=address,
                 port=listening.getHost().port, transport="tls" if tls else "tcp")
        return listening

    def _listen_reusing_port(self, port: int, address: str, factory: Factory, tls: bool) -> IListeningPort:
        """A listening socket made here with SO_REUSEPORT set, adopted by the reactor (the
        kernel spreads new connections between the processes listening on the port)."""
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((address, port))
            sock.listen(50)
            sock.setblocking(False)
            if tls:
                factory = TLSMemoryBIOFactory(self.tls.server_context(), False, factory)
            return self.reactor.adoptStreamPort(sock.fileno(), family, factory)  # it keeps a copy
        finally:
            sock.close()

    def start(self) -> None:
        for peer in self.peers.values():
            if peer.settings.connect:
                peer.start()

    def stop(self, cause: int = 0) -> Deferred[None]:
        """Graceful shutdown: stop listening, let pending requests finish (up to Tx),
        DPR every open peer (RFC 6733 §5.4) and wait for DPA or dpa_timeout."""
        self.stopping = True
        if self._resume_accepting is not None and self._resume_accepting.active():
            self._resume_accepting.cancel()
        closing = [maybeDeferred(port.stopListening) for port in self.ports]
        self.ports.clear()
        done: Deferred[None] = Deferred()
        done.addCallback(lambda _: DeferredList(closing)).addCallback(lambda _: None)
        deadline = self.clock.seconds() + self.timers.tx

        def drained() -> None:
            if (len(self.pending) or self.proxy.serving) and self.clock.seconds() < deadline + LOCAL_GRACE:
                self.clock.callLater(0.05, drained)
                return
            waits = []
            for peer in list(self.peers.values()):
                try:
                    waits.append(self._disconnect(peer, cause))
                except Exception:  # a stop must end: one peer's failure leaves the others to DPR
                    log.failure("stopping: the DPR to peer {peer} failed", peer=peer.host)
            DeferredList(waits).addBoth(lambda _: self._finish_stop(done))

        drained()
        return done

    def _finish_stop(self, done: Deferred[None]) -> None:
        """Close what is left with a FIN (flushing what is queued); reset only what has not
        closed after timers.close_grace (a reset makes the peer and Wireshark see an error)."""
        all_closed = self._all_closed = Deferred()
        for connection in list(self.connections):
            try:
                connection.close()
            except Exception:
                log.failure("stopping: closing {conn} failed", conn=connection)
        if not self.connections:
            all_closed.callback(None)
        late = self.clock.callLater(self.timers.close_grace, lambda: all_closed.called or all_closed.callback(None))

        def finished(_: object) -> None:
            try:  # whatever fails here is logged, and the stop still ends (done fires)
                if late.active():
                    late.cancel()
                for connection in list(self.connections):
                    log.info("{conn}: not closed within timers.close_grace; resetting", conn=connection)
                    connection.close(abort=True)
                self._all_closed = None
                self.pending.stop()
            except Exception:
                log.failure("stopping: the last step failed; stopped anyway")
            done.callback(None)

        all_closed.addCallback(finished)

    def _disconnect(self, peer: Peer, cause: int) -> Deferred[None]:
        if not peer.machine.is_open:
            peer.stop(cause)
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        peer.disconnect_waiters.append(lambda: waiter.called or waiter.callback(None))
        timeout = self.clock.callLater(self.timers.dpa_timeout, lambda: waiter.called or waiter.callback(None))
        waiter.addBoth(lambda result: timeout.active() and timeout.cancel())
        peer.stop(cause)
        return waiter

    def reconfigure(self, peers: Iterable[PeerSettings], routes: Iterable[Route]) -> None:
        """SIGHUP: add, remove or restart changed peers; keep untouched connections."""
        wanted = {settings.host.lower(): settings for settings in peers}
        for key, peer in list(self.peers.items()):
            settings = wanted.get(key)
            if settings is None or settings != peer.settings:
                log.info("reload: peer {peer} {what}", peer=peer.host, what="removed" if settings is None else "changed")
                peer.stop()
                del self.peers[key]
        for key, settings in wanted.items():
            if key not in self.peers:
                self.peers[key] = peer = Peer(self, settings)
                if settings.connect:
                    peer.start()
        self.routing = RoutingTable(routes)

    def connect_to(self, peer: Peer) -> None:
        settings = peer.settings
        factory = _Connector(self, peer)
        if settings.transport == "tls":
            # RFC 6733 §13: TLS from the first byte; the creator checks the server's name
            creator = self.tls.client_context(settings.tls_name or settings.host)
            wrapped = TLSMemoryBIOFactory(creator, True, factory)
            wrapped.noisy = False
            peer._connector = self.reactor.connectTCP(
                settings.address, settings.port, wrapped, timeout=self.timers.cea_timeout
            )
        else:
            peer._connector = self.reactor.connectTCP(settings.address, settings.port, factory,
                                                      timeout=self.timers.cea_timeout)

    # -- connections --------------------------------------------------------------------
    def connection_made(self, connection: DiameterConnection) -> None:
        self.connections.add(connection)
        if self.recorder is not None:
            self.recorder.attach(connection)
        if connection.role == "I":
            connection.peer._connector = None
            connection.peer.connected(connection)
            return
        # An accepted connection is nobody until its CER is judged (RFC 6733 §5.6.1): it
        # gets a small budget of its own, so idle sockets cannot lock real peers out. The
        # oldest one waiting is dropped for a new one; configured peers' connections are
        # not counted against max_connections. New connections come at most at
        # limits.max_accept_rate (gateway.transport.admission).
        pause = self.accepting.take(self.clock.seconds())
        if pause and self._resume_accepting is None and not self.stopping:
            for port in self.ports:
                port.stopReading()
            self._resume_accepting = self.clock.callLater(pause, self._accept_again)
        limits = self.limits
        awaiting = self.awaiting_cer
        full = len(awaiting) + self._unconfigured_connections() >= limits.max_connections
        if awaiting and (full or len(awaiting) >= limits.max_awaiting_cer):
            oldest = next(iter(awaiting))
            log.warn("{conn}: no CER yet, dropped for a new connection (limits.max_awaiting_cer = {waiting}, "
                     "max_connections = {total})", conn=oldest, waiting=limits.max_awaiting_cer, total=limits.max_connections)
            self._forget_awaiting(oldest)
            oldest.close(abort=True)
        elif full:
            log.warn("refusing {conn}: limits.max_connections = {limit} reached", conn=connection,
                     limit=limits.max_connections)
            connection.close(abort=True)
            return
        connection.framer.max_message = limits.max_cer_size  # judged before it is decoded
        awaiting[connection] = self.clock.callLater(self.timers.cea_timeout, self._cer_timed_out, connection)

    def _accept_again(self) -> None:
        self._resume_accepting = None
        for port in self.ports:
            port.startReading()

    def _cer_timed_out(self, connection: DiameterConnection) -> None:
        if self.awaiting_cer.pop(connection, None) is not None:
            log.info("{conn}: no CER within timers.cea_timeout; closing", conn=connection)
            connection.close(abort=True)

    def _forget_awaiting(self, connection: DiameterConnection) -> None:
        timer = self.awaiting_cer.pop(connection, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _unconfigured_connections(self) -> int:
        """Connections of peers admitted by unknown_peers.accept_realms."""
        return sum(1 for peer in self.peers.values() if peer.settings.dynamic and peer.connection is not None)

    def connection_lost(self, connection: DiameterConnection, reason: Failure | None) -> None:
        self.connections.discard(connection)
        self._forget_awaiting(connection)
        peer = connection.peer
        if peer is not None:
            peer.lost(connection)
            if peer.settings.dynamic and peer.state == "Closed" and self.peers.get(peer.host.lower()) is peer:
                self._forget_peer(peer)
        if self.stopping and not self.connections and self._all_closed is not None:
            self._all_closed.callback(None)

    def _forget_peer(self, peer: Peer) -> None:
        """An unknown peer's connection is gone: forget it (its table entry, Route-Record
        and metric series), so invented Origin-Hosts cannot grow the node without bound."""
        del self.peers[peer.host.lower()]
        self.proxy.forget(peer.host)
        if self.metrics is not None:
            self.metrics.forget(peer.host, self.message_counts)
        log.info("unknown peer {peer} forgotten (its connection closed)", peer=peer.host)

    def receive(self, connection: DiameterConnection, data: bytes) -> None:
        """Process what one read brought, then write everything it produced once."""
        self.batch.open = True
        self.now = self.clock.seconds()
        try:
            peer = connection.peer
            if peer is not None and peer.connection is connection and not self.stopping:
                if self.relay.stream(connection, peer, data):
                    # once per read that completed a message: a sign of life (RFC 3539
                    # §3.4.1); bytes that complete nothing are not one
                    peer.application_message(self.now)
            else:
                self.receive_general(connection, data)
        except FramingError as error:
            self.framing_error(connection, error)
        finally:
            self.batch.open = False
            self.batch.flush()

    def receive_general(self, connection: DiameterConnection, data: bytes) -> None:
        """Frame ``data`` and hand each message to the general path, in order."""
        try:
            messages = connection.framer.feed(data)
        except FramingError as error:
            for message in error.complete:  # type: ignore[attr-defined]
                self.dispatch(connection, message)
            self.framing_error(connection, error)
            return
        for message in messages:
            self.dispatch(connection, message)

    def flush_soon(self) -> None:
        """Write what was queued outside a read (timers, Deferred callbacks)."""
        self.batch.flush()

    def dispatch(self, connection: DiameterConnection, data: bytes) -> None:
        """One framed message down the general path. A failure while handling it costs
        that message only: it is answered 5012 and the tables stay as they were."""
        try:
            self._dispatch(connection, data)
        except Exception as error:
            self.unable_to_comply(connection, data, error)

    def unable_to_comply(self, connection: DiameterConnection, data: bytes, error: BaseException) -> None:
        """The net under message handling: log the failure with the message's bytes and
        answer a request 5012 DIAMETER_UNABLE_TO_COMPLY (RFC 6733 §7.1.5)."""
        log.failure(
            "{conn}: failure while handling a message; answered 5012 (message: {hex})",
            Failure(error), conn=connection, hex=data[:4096].hex(),
        )
        if len(data) < 20 or not data[4] & 0x80 or not connection.connected:
            return
        try:
            connection.queue(self.proxy.error_bytes(data, ResultCode.DIAMETER_UNABLE_TO_COMPLY, "internal error"))
        except Exception:  # not even an answer could be built: this connection cannot go on
            log.failure("{conn}: no 5012 answer could be built; closing", conn=connection)
            connection.close()

    def _dispatch(self, connection: DiameterConnection, data: bytes) -> None:
        code = (data[5] << 16) | (data[6] << 8) | data[7]
        peer = connection.peer
        if code in BASE_COMMANDS:
            if peer is None:
                if code == CER and data[4] & 0x80:
                    self._incoming_cer(connection, data)
                else:
                    log.warn("{conn}: first message is not a CER (command {code}); closing", conn=connection, code=code)
                    connection.close()
            else:
                peer.received(connection, data)
            return
        if peer is None or peer.connection is not connection:
            log.warn("{conn}: application message before the capabilities exchange; closing", conn=connection)
            connection.close()
            return
        peer.application_message(self.now)
        if data[4] & 0x80:
            if self.stopping:
                self.proxy.answer_error(connection, data, ResultCode.DIAMETER_TOO_BUSY, "node shutting down")
                return
            self.proxy.request(connection, peer, data)
        else:
            self.proxy.answer(connection, peer, data)

    def _incoming_cer(self, connection: DiameterConnection, data: bytes) -> None:
        self._forget_awaiting(connection)
        connection.framer.max_message = self.max_message_size
        origin = cer_origin(data)
        if origin is not None and origin[0].lower() not in self.peers and origin[1].lower() not in self.accept_realms:
            # an unknown peer costs a scan of the AVP headers, not a decode (3010, §5.3)
            reason = (f"peer {origin[0]} (realm {origin[1]}) is not configured; "
                      "add it to [[peers]] or its realm to unknown_peers.accept_realms")
            log.warn("{conn}: capabilities exchange refused with 3010: {reason}", conn=connection, reason=reason)
            connection.queue(self._header_cea(data, ResultCode.DIAMETER_UNKNOWN_PEER, reason[:200]))
            connection.close()
            return
        try:
            cer, capabilities = decode_capabilities(data)
        except DecodeError as error:
            log.warn("{conn}: malformed CER: {error}", conn=connection, error=error)
            self.reject_malformed(connection, data, error)
            return
        key = capabilities.origin_host.lower()
        peer = self.peers.get(key)
        if peer is None and capabilities.origin_realm.lower() in self.accept_realms:
            admitted = sum(1 for known in self.peers.values() if known.settings.dynamic)
            if admitted >= self.limits.max_unknown_peers:
                self._refuse(connection, cer, ResultCode.DIAMETER_TOO_BUSY,
                             f"{admitted} unknown peers admitted, limits.max_unknown_peers reached; "
                             "configure this peer in [[peers]] or raise the limit")
                return
            peer = self.peers[key] = Peer(
                self, PeerSettings(capabilities.origin_host, capabilities.origin_realm, connect=False, dynamic=True)
            )
            log.info("accepting unknown peer {peer} of realm {realm}", peer=capabilities.origin_host, realm=capabilities.origin_realm)
        if peer is None:
            self._refuse(connection, cer, ResultCode.DIAMETER_UNKNOWN_PEER,
                         f"peer {capabilities.origin_host} (realm {capabilities.origin_realm}) is not configured; "
                         "add it to [[peers]] or its realm to unknown_peers.accept_realms")
            return
        if self.tls is not None and getattr(connection.transport, "getPeerCertificate", None) is not None:
            names = self.tls.peer_identity(connection.transport)
            if not self.tls.check_identity(names, peer.settings.tls_name or capabilities.origin_host):
                self._refuse(connection, cer, ResultCode.DIAMETER_UNKNOWN_PEER,
                             f"peer {capabilities.origin_host}: certificate names {sorted(names)} do not match it")
                return
        result, reason = judge_capabilities(self.local, capabilities)
        if result != ResultCode.DIAMETER_SUCCESS:
            self._refuse(connection, cer, result, reason)
            return
        peer.offered(connection, cer, capabilities)
        self.flush_soon()

    def _refuse(self, connection: DiameterConnection, cer: Message, result: int, reason: str) -> None:
        log.warn("{conn}: capabilities exchange refused with {result}: {reason}", conn=connection, result=result, reason=reason)
        connection.queue(build_cea(self.local, cer, result, reason[:200]))
        connection.close()

    def reject_malformed(self, connection: DiameterConnection, data: bytes, error: DecodeError) -> None:
        """Answer a request that cannot be processed (a CER with a whole CEA, RFC 6733
        §5.3.2), then close: what follows it on the stream cannot be trusted."""
        if len(data) >= 20 and data[4] & 0x80:
            if int.from_bytes(data[5:8], "big") == CER:
                connection.queue(self._header_cea(data, error.result_code, error.reason, error.failed_avp))
            else:
                connection.queue(self.proxy.error_bytes(data, error.result_code, error.reason, error.failed_avp))
        connection.close()

    def _header_cea(self, data: bytes, result: int, reason: str, failed: bytes | None = None) -> bytes:
        """A CEA built from the CER's header alone (capabilities.cea_for_malformed), once
        per kind of answer: a flood of bad CERs is a flood of the same few answers, in
        which only the two ids differ."""
        key = (result, reason, failed)
        cea = self._header_ceas.get(key)
        if cea is None:
            if len(self._header_ceas) >= 64:
                self._header_ceas.clear()
            cea = self._header_ceas[key] = cea_for_malformed(self.local, bytes(20), DecodeError(result, reason, failed))
        header = data[:20].ljust(20, b"\0")
        return cea[:4] + bytes((cea[4] & ~0x40 | header[4] & 0x40,)) + cea[5:12] + header[12:20] + cea[20:]

    def framing_error(self, connection: DiameterConnection, error: FramingError) -> None:
        """Framing lost: answer best-effort from the header, then close (RFC 6733 §7)."""
        log.warn("{conn}: {error}; closing the connection", conn=connection, error=error)
        self.reject_malformed(connection, error.prefix, error)

    # -- peers ----------------------------------------------------------------------------
    def peer_opened(self, peer: Peer) -> None:
        """A peer opened, or its watchdog is OKAY again. Routing reads ``Peer.available``
        for every request, so nothing needs to change here; a hook for subclasses."""

    def peer_down(self, peer: Peer) -> None:
        self.proxy.failover(peer, down=True)

    def failover(self, peer: Peer) -> None:
        self.proxy.failover(peer, down=False)

    def new_hop_by_hop(self) -> int:
        return self.pending.new_id()

    def new_end_to_end(self) -> int:
        """RFC 6733 §3: high 12 bits from the clock, low 20 bits a counter."""
        self._end_to_end = (self._end_to_end + 1) & 0xFFFFFFFF
        return self._end_to_end

    # -- requests this node originates (the Cx applications use this) -----------------------
    def send_request(self, data: bytes | Message) -> Deferred[bytes]:
        if isinstance(data, Message):
            data = data.encode()
        return self.proxy.originate(data)

    # -- accounting -------------------------------------------------------------------------
    def _expired(self, entry: PendingRequest) -> None:
        self.proxy.expired(entry)

    def observe_latency(self, entry: PendingRequest) -> None:
        if self.metrics is not None:
            self.metrics.observe_request(entry.command_code, self.clock.seconds() - self.pending.started(entry))

    def observe_latencies(self, entries: list[PendingRequest]) -> None:
        """observe_latency for the answers of one read, all received at ``now``."""
        if self.metrics is not None:
            self.metrics.observe_requests(entries, self.now + self.pending.tx)

    def count_late_answer(self) -> None:
        self.counters.late_answers += 1

    def count_overload(self, scope: str) -> None:
        self.counters.overload[scope] = self.counters.overload.get(scope, 0) + 1

    def count_generated(self, code: int) -> None:
        self.counters.generated[code] = self.counters.generated.get(code, 0) + 1


def tune_garbage_collector() -> None:
    """Call once the node is built. Messages allocate no reference cycles on the relay
    path, yet every cyclic collection walks the long-lived heap (dictionary, grammars,
    Twisted), which cost a third of the CPU per request at 50k requests/s: what exists at
    start-up is frozen out of the collector's sight. Generation 0 is collected every 1,000
    objects, about as often as Python's default: a collection walks every young object
    (some 0.5 us each), so a threshold of 50,000 made pauses of 9-17 ms whenever the Cx
    roles' caches filled it (the chain's p99, bench/RESULTS.md session 6), for no CPU
    saved (the relay and the partner measured the same per pair at 1,000 and 50,000)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(1_000, 20, 100)


class _Connector(ClientFactory):
    noisy = False

    def __init__(self, node: DiameterNode, peer: Peer) -> None:
        self.node, self.peer = node, peer

    def buildProtocol(self, addr: Any) -> DiameterConnection:
        return DiameterConnection(self.node, "I", self.peer)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        self.peer._connector = None
        self.peer.connect_failed(reason.getErrorMessage())
