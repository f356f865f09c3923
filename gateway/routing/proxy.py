"""Request forwarding as a Diameter proxy (RFC 6733 §6.1, §6.2), and local delivery.

This is the general path; the relay's hot loop (gateway.routing.relay) does the common cases
inline and hands everything else here. Neither decodes a whole message: they read the
header, scan the top-level AVP headers for the routing AVPs, and rewrite only the
hop-by-hop id and the appended Route-Record.

- §6.1.3 loop detection: our own identity in a Route-Record -> 3005.
- §6.1.4/§6.1.5 routing: Destination-Host naming an available peer, else the realm's
  route; nothing available -> 3002 DIAMETER_UNABLE_TO_DELIVER from this node.
- §6.1.9 forwarding: a new hop-by-hop id, Route-Record with the previous hop's identity
  appended, End-to-End id, Proxy-Info and everything else untouched.
- §6.2.2 answers: the original hop-by-hop id restored, sent back on the connection the
  request came from; nothing else touched (a failure Result-Code stays as it is).
- §5.5.4 failover: requests pending on a peer that went down go to an alternate with
  the T flag; with none left, 3002.
- Overload: beyond the pending limits, 3004 DIAMETER_TOO_BUSY at once.
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING, Any, Protocol

from twisted.internet.defer import CancelledError, Deferred, maybeDeferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from cx_codec import DecodeError, Message, decode, error_answer_bytes
from cx_codec.build import avp_bytes
from cx_codec.dictionary import APPLICATION_RELAY
from cx_codec.errors import ResultCode
from cx_codec.rewrite import first_base_value, top_level, with_flags, with_hop_by_hop
from cx_codec.rewrite import forwarded as forward
from gateway.observe.counts import MessageCounts, answer_result
from gateway.peer.capabilities import LocalIdentity
from gateway.routing.local import Deadlines, DuplicateCache, LocalApplication
from gateway.routing.pending import PendingRequest, PendingRequests
from gateway.routing.table import NoRoute, Route, RouteAction, RoutingTable
from gateway.settings import Limits

if TYPE_CHECKING:
    from gateway.peer.executor import Peer
    from gateway.transport.connection import DiameterConnection

log = Logger(namespace="cxgw.proxy")

DESTINATION_HOST = (293, 0)
DESTINATION_REALM = (283, 0)
ROUTE_RECORD = (282, 0)
ORIGIN_HOST = (264, 0)
ROUTING_AVPS = frozenset({DESTINATION_HOST, DESTINATION_REALM, ROUTE_RECORD, ORIGIN_HOST})
_SCAN = {
    (host, loop): frozenset({DESTINATION_REALM} | ({DESTINATION_HOST} if host else set()) | ({ROUTE_RECORD} if loop else set()))
    for host in (False, True)
    for loop in (False, True)
}
_ROUTE_RECORD_HEADER = (282).to_bytes(4, "big")
# the low bytes of the code field of a Destination-Host (293) or Route-Record (282) AVP
# header; matching elsewhere only sends the request down the general path
_HOST_OR_ROUTE_RECORD = re.compile(rb"\x01[\x1a\x25]")
_HEADER = struct.Struct(">IIIII")
_U32 = struct.Struct(">I")
FLAG_T = 0x10
LOCAL_GRACE = 1.0  # seconds a local application may take beyond Tx before 5012


class ProxyHost(Protocol):
    """What the proxy reads and calls of the node it routes for (the node owns the
    tables; the proxy and the relay's hot loop apply RFC 6733 §6 to them)."""

    local: LocalIdentity
    peers: dict[str, Peer]
    routing: RoutingTable
    pending: PendingRequests
    limits: Limits
    applications: dict[int, LocalApplication]
    duplicates: DuplicateCache
    counting: bool  # count every message (metrics on)
    message_counts: MessageCounts
    now: float  # the reactor's time at the start of the current read

    def flush_soon(self) -> None: ...

    def observe_latency(self, entry: PendingRequest) -> None: ...

    def count_late_answer(self) -> None: ...

    def count_overload(self, scope: str) -> None: ...

    def count_generated(self, code: int) -> None: ...


class Overloaded(Exception):
    """A pending-request limit was reached: answer 3004 DIAMETER_TOO_BUSY."""


class Proxy:
    def __init__(self, node: ProxyHost) -> None:
        self.node = node
        self.identity = node.local.origin_host.lower().encode()
        self.realm = node.local.origin_realm.lower().encode()
        self.advertised = node.local.application_ids  # what the CER/CEA said we support
        self._route_records: dict[str, bytes] = {}
        # (Origin-Host, End-to-End id) -> [(connection, hop-by-hop)] of requests being served
        self._serving: dict[tuple[str, int], list[tuple[DiameterConnection, int]]] = {}
        self.serving = 0  # requests being served by local applications (limits, stop())
        self._local_deadlines = Deadlines(node.clock)
        self._serving_per_peer: dict[Any, int] = {}

    # -- requests from peers -----------------------------------------------------------
    def request(self, connection: DiameterConnection, peer: Peer, data: bytes) -> None:
        if data[4] & 0x2F:
            # RFC 6733 §3: reserved bits, or E in a request
            self.answer_error(connection, data, ResultCode.DIAMETER_INVALID_HDR_BITS, "invalid command flags")
            return
        # Byte-level pre-checks: a Destination-Host or Route-Record header that occurs
        # nowhere in the bytes is absent. Without either (the usual request from a
        # client), no loop is possible (RFC 6733 §6.1.3) and routing needs only the
        # Destination-Realm: the fast path. Everything else takes the general one.
        if _HOST_OR_ROUTE_RECORD.search(data, 20) is not None:
            self._request_general(connection, peer, data)
            return
        try:
            realm = first_base_value(data, 283)
        except DecodeError as error:
            self.answer_error(connection, data, error.result_code, error.reason, error.failed_avp)
            return
        self._route(connection, peer, data, realm, None)

    def _request_general(self, connection: DiameterConnection, peer: Peer, data: bytes) -> None:
        try:
            found = self.routing_avps(data)
        except DecodeError as error:
            self.answer_error(connection, data, error.result_code, error.reason, error.failed_avp)
            return
        if found is None:
            # RFC 6733 §6.1.3
            self.answer_error(connection, data, ResultCode.DIAMETER_LOOP_DETECTED, "request came back to us")
            return
        self._route(connection, peer, data, *found)

    def claimed(self, peer: Peer, application_id: int) -> bool:
        """Whether the local application of ``application_id`` serves every request of
        ``peer`` whatever its Destination-Realm and Destination-Host name (its ``claims``:
        gateway.applications.service.CxService.claims), so that it is never routed on."""
        claims = getattr(self.node.applications.get(application_id), "claims", None)
        return claims is not None and bool(claims(peer))

    def routing_avps(self, data: bytes) -> tuple[bytes | None, list[bytes] | None] | None:
        """(Destination-Realm, Destination-Host values) of a request, or None when one of
        its Route-Records names this node (a loop, RFC 6733 §6.1.3); DecodeError on broken
        AVPs. (The relay's hot loop asks this of a request naming a Destination-Host.)"""
        loop_possible = _ROUTE_RECORD_HEADER in data
        found = top_level(data, _SCAN[True, loop_possible], complete=loop_possible)
        for hop in found.get(ROUTE_RECORD, ()):
            if hop.lower() == self.identity:
                return None
        realm = found.get(DESTINATION_REALM)
        return realm[0] if realm else None, found.get(DESTINATION_HOST)

    def _route(
        self, connection: DiameterConnection, peer: Peer, data: bytes, realm: bytes | None,
        destination_host: list[bytes] | None,
    ) -> None:
        """RFC 6733 §6.1.4-§6.1.6: serve locally, forward, or answer 3002/3004."""
        node = self.node
        _, command, application_id, hop_by_hop_in, _ = _HEADER.unpack_from(data)
        command &= 0xFFFFFF
        if application_id not in self.advertised and APPLICATION_RELAY not in self.advertised:
            # RFC 6733 §6.1.4 / §7.1.3: an application we did not advertise in the CER/CEA
            self.answer_error(connection, data, ResultCode.DIAMETER_APPLICATION_UNSUPPORTED,
                              f"application {application_id} is not supported by this node")
            return
        if self.claimed(peer, application_id):  # the Cx roles' peers: served here, never relayed
            self.local(connection, data, application_id)
            return
        if realm is None or destination_host is not None and destination_host[0].lower() == self.identity:
            self.local(connection, data, application_id)
            return
        if destination_host is None and application_id in node.applications and realm.lower() == self.realm:
            # RFC 6733 §6.1.4: our realm, an application we serve, no Destination-Host
            self.local(connection, data, application_id)
            return
        route = node.routing.lookup_raw(realm, application_id)
        if route is None:
            self.answer_error(
                connection, data, ResultCode.DIAMETER_UNABLE_TO_DELIVER,
                f"no route for realm {realm.decode('ascii', 'replace')}, application {application_id}",
            )
            return
        if route.action is RouteAction.LOCAL:
            self.local(connection, data, application_id)
            return
        targets = route.targets
        target = node.peers.get(targets[0].key) if len(targets) == 1 and destination_host is None else None
        if (
            target is None
            or target is peer
            or not target.available
            or self.full(target)
            or len(node.pending) >= node.limits.max_pending
        ):
            target = None  # not the simple case: the general choice, with its limits
        try:
            if target is None:
                target = self.choose(route, destination_host, (peer,))
        except (NoRoute, Overloaded) as error:
            code = ResultCode.DIAMETER_TOO_BUSY if isinstance(error, Overloaded) else ResultCode.DIAMETER_UNABLE_TO_DELIVER
            self.answer_error(connection, data, code, str(error))
            return
        if node.counting:
            node.message_counts.count(peer.host, "in", command, "")
            node.message_counts.count(target.host, "out", command, "")
        pending = node.pending
        hop_by_hop = pending.new_id()
        forwarded = forward(data, hop_by_hop, self.route_record(peer.host))
        pending.add(hop_by_hop_in, connection, target, forwarded, command, hop_by_hop, None, node.now)
        target.send(forwarded)

    def forget(self, host: str) -> None:
        """A peer is gone for good (an unknown peer whose connection closed)."""
        self._route_records.pop(host, None)

    def route_record(self, host: str) -> bytes:
        """Route-Record with the identity of the peer the request came from (§6.1.9)."""
        record = self._route_records.get(host)
        if record is None:
            record = self._route_records[host] = avp_bytes("Route-Record", host)
        return record

    def choose(
        self, route: Route | None, destination_host: list[bytes] | None, exclude: tuple[Any, ...], moving: bool = False
    ) -> Peer:
        """The peer for a request; ``moving``: a pending request being failed over, already
        counted in the node's limit. With no route for the realm, only a connected
        Destination-Host will do (RFC 6733 §6.1.5)."""
        node = self.node
        if not moving and len(node.pending) >= node.limits.max_pending:
            node.count_overload("node")
            raise Overloaded(f"{len(node.pending)} requests pending, limits.max_pending reached")
        if destination_host is not None:
            # RFC 6733 §6.1.5: a Destination-Host we are connected to gets it directly
            named = self.available(destination_host[0].decode("ascii", "replace"))
            if named is not None and named not in exclude:
                if self.full(named):
                    raise self.overloaded(named)  # the request is for this peer only
                return named
        busy: list[Peer] = []

        def available(host: str) -> Peer | None:
            peer = self.available(host)
            if peer is not None and self.full(peer):
                busy.append(peer)
                return None
            return peer

        if route is None:
            raise NoRoute(f"Destination-Host {destination_host[0].decode('ascii', 'replace') if destination_host else '?'} "
                          "is not a connected peer and its realm has no route")
        try:
            return node.routing.select(route, available, exclude)
        except NoRoute:
            if busy:
                raise self.overloaded(busy[0]) from None
            raise

    def full(self, peer: Peer) -> bool:
        """``limits.max_pending_per_peer`` requests are pending on ``peer``."""
        return self.node.pending.outstanding(peer) >= self.node.limits.max_pending_per_peer

    def overloaded(self, peer: Peer) -> Overloaded:
        self.node.count_overload("peer")
        return Overloaded(f"peer {peer.host}: limits.max_pending_per_peer = {self.node.limits.max_pending_per_peer} reached")

    def available(self, host: str) -> Peer | None:
        peer = self.node.peers.get(host.lower())
        return peer if peer is not None and peer.available else None

    # -- answers -----------------------------------------------------------------------
    def answer(self, connection: DiameterConnection, peer: Peer, data: bytes) -> None:
        node = self.node
        hop_by_hop = int.from_bytes(data[12:16], "big")
        entry = node.pending.get(hop_by_hop)
        if entry is None or (entry.peer is not peer and peer not in entry.tried):
            # late (after Tx, or failover already answered it), or from a peer not asked
            log.info(
                "peer {peer}: answer with unknown hop-by-hop 0x{hbh:08x} dropped (late or not ours)",
                peer=peer.host, hbh=hop_by_hop,
            )
            node.count_late_answer()
            return
        node.pending.pop(hop_by_hop)
        origin = entry.origin
        if origin is None or entry.deferred is not None:
            self.own_answer(peer, entry, data)
            return
        if node.counting:
            result = answer_result(data)
            node.message_counts.count(peer.host, "in", entry.command_code, result)
            node.message_counts.count(origin.peer.host if origin.peer else "local", "out", entry.command_code, result)
            node.observe_latency(entry)
        # RFC 6733 §6.2.2: back where it came from, with the hop-by-hop id it had
        if origin.connected:
            origin.queue(data[:12] + _U32.pack(entry.original_hop_by_hop) + data[16:])

    def own_answer(self, peer: Peer, entry: PendingRequest, data: bytes, observe: bool = True) -> None:
        """The answer from ``peer`` to a request this node originated (``entry`` taken out
        of the pending table): counted, and given to its Deferred. The relay's hot loop
        calls this too (``observe`` False: it observes the latencies of a read at once)."""
        node = self.node
        if node.counting:
            result = answer_result(data)
            counts = node.message_counts  # (MessageCounts.count, inline: twice per answer)
            counts[peer.host, "in", entry.command_code, result] += 1
            counts["local", "out", entry.command_code, result] += 1
            if observe:
                node.observe_latency(entry)
        # a fast path's receiver (gateway.applications.fastpath.TranslatedAnswer) takes the
        # answer as it came and puts the original hop-by-hop id back in the same copy
        answered = getattr(entry.deferred, "answered", None)
        if answered is not None:
            answered(data, entry.original_hop_by_hop)
            return
        self.deliver(entry, data)

    def deliver(self, entry: PendingRequest, answer: bytes) -> None:
        if entry.deferred is not None:
            entry.deferred.callback(with_hop_by_hop(answer, entry.original_hop_by_hop))
            return
        origin = entry.origin
        if origin is not None and origin.connected:
            origin.queue(with_hop_by_hop(answer, entry.original_hop_by_hop))

    # -- local delivery and requests this node originates --------------------------------
    def local(self, connection: DiameterConnection, data: bytes, application_id: int) -> None:
        """Serve a request addressed to this node with a local application.

        The request is decoded strictly first (RFC 6733 §7: protocol errors answered with
        their result code and Failed-AVP); an unknown command of a served application is
        3001. Duplicates (RFC 6733 §6.1.3: same Origin-Host and End-to-End id, with the T
        flag) get the cached answer, or wait for the answer of the copy being served:
        the application sees each request once.
        """
        node = self.node
        application = node.applications.get(application_id)
        if application is None:
            self.answer_error(
                connection, data, ResultCode.DIAMETER_APPLICATION_UNSUPPORTED,
                f"this node serves no application {application_id} locally",
            )
            return
        try:
            message = decode(data)
        except DecodeError as error:
            self.answer_error(connection, data, error.result_code, error.reason, error.failed_avp)
            return
        if message.grammar is None:
            self.answer_error(
                connection, data, ResultCode.DIAMETER_COMMAND_UNSUPPORTED,
                f"command {message.command_code} is not part of application {application_id}",
            )
            return
        key = (str(message.get("Origin-Host", "")).lower(), message.end_to_end)
        if message.is_retransmit:
            cached = node.duplicates.get(key)
            if cached is not None:
                log.info("duplicate request from {host}: answering from cache", host=key[0])
                connection.queue(with_hop_by_hop(cached, message.hop_by_hop))
                return
        waiting = self._serving.get(key)
        if waiting is not None:
            log.info("request from {host} arrived again while being served: one answer for both", host=key[0])
            waiting.append((connection, message.hop_by_hop))
            return
        # local work is pending work: it counts against the limits and has a deadline
        peer = connection.peer
        if self.serving >= node.limits.max_pending or self._serving_per_peer.get(peer, 0) >= node.limits.max_pending_per_peer:
            node.count_overload("local")
            self.answer_error(connection, data, ResultCode.DIAMETER_TOO_BUSY,
                              f"{self.serving} requests being served here; limits.max_pending(_per_peer) reached")
            return
        self._begin_local(connection, peer, key, message.hop_by_hop)
        handle_message = getattr(application, "handle_message", None)
        if handle_message is not None:
            result = maybeDeferred(handle_message, message, peer)
        else:
            result = maybeDeferred(application.handle_request, data, peer)
        if not result.called:  # (an answer made at once, as an in-process store gives, needs no timer)
            # a backstop past Tx: forwarded work of the application gets its 3002 before it
            self._local_deadlines.add(result, node.now + node.pending.tx + LOCAL_GRACE)
        result.addBoth(self._local_done, peer)
        if node.counting:
            node.message_counts.count(peer.host, "in", message.command_code, "")
            result.addCallback(self._count_local, peer, message.command_code)
        result.addCallback(self._local_answered, key)
        result.addErrback(self._local_failed, key, data)

    def _begin_local(self, connection: DiameterConnection, peer: Any, key: Any, hop_by_hop: int) -> None:
        self._serving[key] = [(connection, hop_by_hop)]
        self.serving += 1
        self._serving_per_peer[peer] = self._serving_per_peer.get(peer, 0) + 1

    # -- local work on an application's fast path (``fast_request``, called by the hot loop) --
    def admit_local(self, connection: DiameterConnection, peer: Any, key: Any, hop_by_hop: int, command: int) -> bool:
        """Begin serving, as ``local`` does, a request an application's fast path checked
        strictly (RFC 6733 §7) and did not find to be a retransmission (T flag). False:
        ``local`` must take it (a copy of it is being served, or a limit is reached: it
        answers those); nothing was changed then."""
        node = self.node
        limits = node.limits
        serving = self._serving
        per_peer = self._serving_per_peer
        if key in serving or self.serving >= limits.max_pending or per_peer.get(peer, 0) >= limits.max_pending_per_peer:
            return False
        # _begin_local, inline (once per request on the fast path)
        serving[key] = [(connection, hop_by_hop)]
        self.serving += 1
        per_peer[peer] = per_peer.get(peer, 0) + 1
        if node.counting:
            node.message_counts[peer.host, "in", command, ""] += 1  # MessageCounts.count, inline
        return True

    def local_answer(self, answer: bytes, peer: Any, key: Any, command: int) -> None:
        """The answer of work admitted by ``admit_local``: what ``local``'s callbacks do with
        an application's answer (``_local_done``: limits released; ``_count_local``:
        counted; ``_local_answered``: kept for duplicates, sent to every copy of the
        request), in one call. An ``answer`` that carries the hop-by-hop id of a copy
        already goes to it as it is."""
        self.serving -= 1
        per_peer = self._serving_per_peer
        left = per_peer[peer] - 1
        if left:
            per_peer[peer] = left
        else:
            del per_peer[peer]
        node = self.node
        if node.counting:
            node.message_counts[peer.host, "out", command, answer_result(answer)] += 1
        node.duplicates.put(key, answer)
        for connection, hop_by_hop in self._serving.pop(key, ()):
            if connection.connected:
                connection.queue(answer if _U32.unpack_from(answer, 12)[0] == hop_by_hop
                                 else with_hop_by_hop(answer, hop_by_hop))

    def local_failed(self, error: BaseException, peer: Any, key: Any, request: bytes) -> None:
        """Work admitted by ``admit_local`` failed: what ``local``'s errback does (5012)."""
        self._local_done(None, peer)
        self._local_failed(Failure(error), key, request)

    def _local_done(self, result: Any, peer: Any) -> Any:
        self.serving -= 1
        self._serving_per_peer[peer] -= 1
        if not self._serving_per_peer[peer]:
            del self._serving_per_peer[peer]
        return result

    def _count_local(self, answer: bytes | Message, peer: Any, command: int) -> bytes | Message:
        data = answer.encode() if isinstance(answer, Message) else answer
        self.node.message_counts.count(peer.host, "out", command, answer_result(data))
        return data

    def _local_answered(self, answer: bytes | Message, key: Any) -> None:
        if isinstance(answer, Message):
            answer = answer.encode()
        self.node.duplicates.put(key, answer)
        for connection, hop_by_hop in self._serving.pop(key, ()):
            if connection.connected:
                connection.queue(with_hop_by_hop(answer, hop_by_hop))

    def _local_failed(self, failure: Any, key: Any, data: bytes) -> None:
        if failure.check(CancelledError):  # its deadline passed (Deadlines)
            log.warn("a request served here was not answered within Tx + {grace} s", grace=LOCAL_GRACE)
            reason = "not answered in time"
        else:
            log.failure("local application failed on a request", failure)
            reason = "internal error"
        answer = self.error_bytes(data, ResultCode.DIAMETER_UNABLE_TO_COMPLY, reason)
        for connection, hop_by_hop in self._serving.pop(key, ()):
            if connection.connected:
                connection.queue(with_hop_by_hop(answer, hop_by_hop))

    def originate(self, data: bytes) -> Deferred[bytes]:
        """Send a request this node originates; the Deferred fires with the answer bytes
        (an error answer of this node on 3002/3004/timeout, never an errback)."""
        node = self.node
        deferred: Deferred[bytes] = Deferred()
        try:
            found = top_level(data, ROUTING_AVPS)
            realm = found.get(DESTINATION_REALM, [b""])[0].decode("ascii", "replace")
            route = node.routing.lookup(realm, int.from_bytes(data[8:12], "big"))
            if route is None and DESTINATION_HOST not in found:
                raise NoRoute(f"no route for realm {realm}")
            target = self.choose(route, found.get(DESTINATION_HOST), ())
        except (NoRoute, Overloaded, DecodeError) as error:
            code = ResultCode.DIAMETER_TOO_BUSY if isinstance(error, Overloaded) else ResultCode.DIAMETER_UNABLE_TO_DELIVER
            deferred.callback(self.error_bytes(data, code, str(error)))
            return deferred
        hop_by_hop = node.pending.new_id()
        forwarded = with_hop_by_hop(data, hop_by_hop)
        node.pending.add(
            int.from_bytes(data[12:16], "big"), None, target, forwarded,
            int.from_bytes(data[5:8], "big"), hop_by_hop, deferred,
        )
        target.send(forwarded)
        node.flush_soon()
        return deferred

    # -- failover and expiry ----------------------------------------------------------------
    def failover(self, peer: Peer, down: bool) -> None:
        """Re-send what is pending on ``peer`` to alternates with the T flag (§5.5.4).

        When the peer is down and no alternate is left, answer 3002 at once; when it is only
        suspect, leave the request where it is until its Tx runs out.
        """
        node = self.node
        for entry in node.pending.for_peer(peer):
            try:
                found = top_level(entry.data, ROUTING_AVPS)
                realm = found.get(DESTINATION_REALM, [b""])[0].decode("ascii", "replace")
                route = node.routing.lookup(realm, int.from_bytes(entry.data[8:12], "big"))
                if route is None and DESTINATION_HOST not in found:
                    raise NoRoute(f"no route for realm {realm}")
                alternate = self.choose(route, found.get(DESTINATION_HOST), (*entry.tried, entry.peer), moving=True)
            except (NoRoute, Overloaded, DecodeError) as error:
                if down:
                    node.pending.pop(entry.hop_by_hop)
                    self.deliver(entry, self.error_bytes(entry.data, ResultCode.DIAMETER_UNABLE_TO_DELIVER, f"peer {peer.host} went down; {error}"))
                continue
            retransmission = with_flags(entry.data, FLAG_T)
            node.pending.move(entry, alternate, retransmission)
            log.info(
                "failover of 0x{hbh:08x} from {old} to {new}", hbh=entry.hop_by_hop, old=peer.host, new=alternate.host
            )
            alternate.send(retransmission)
        node.flush_soon()

    def expired(self, entry: PendingRequest) -> None:
        """Tx ran out (§5.5.4 / issue: a request that times out gets 3002)."""
        peer = getattr(entry.peer, "host", "?")
        log.info("request 0x{hbh:08x} to {peer} timed out", hbh=entry.hop_by_hop, peer=peer)
        self.deliver(entry, self.error_bytes(entry.data, ResultCode.DIAMETER_UNABLE_TO_DELIVER, f"no answer from {peer} within Tx"))
        self.node.flush_soon()

    # -- error answers of this node (RFC 6733 §7) ---------------------------------------------
    def error_bytes(self, request: bytes, code: int, reason: str, failed: bytes | None = None) -> bytes:
        """This node's answer to ``request`` however broken it is (cx_codec.error_answer_bytes:
        E bit for 3xxx only, the Session-Id, User-Name and Public-Identity echoed where
        readable and allowed; it passes our own strict decoding)."""
        local = self.node.local
        self.node.count_generated(code)
        return error_answer_bytes(
            request, code, origin_host=local.origin_host, origin_realm=local.origin_realm,
            error_message=reason[:200], failed=failed,
        )

    def answer_error(
        self, connection: DiameterConnection, request: bytes, code: int, reason: str, failed: bytes | None = None
    ) -> None:
        log.info(
            "answering {code} to {conn}: {reason}", code=code, conn=connection, reason=reason,
        )
        connection.queue(self.error_bytes(request, code, reason, failed))
