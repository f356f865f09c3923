"""The relay's hot loop: the bytes of one read from an open peer, framed, routed and
forwarded in one pass (RFC 6733 §6.1.9 requests, §6.2.2 answers).

It does inline, for the common cases only, what the general path (``node.dispatch``:
``Proxy.request``/``_route``/``answer``) does, and hands everything else to the general
path in stream order:

- an answer to a request this node relayed: its original hop-by-hop id is written into
  a copy of the read buffer in place, and consecutive answers for the same connection go
  out as one slice of that buffer (no per-message copy);
- a request with no Destination-Host and no Route-Record (so no loop is possible,
  §6.1.3), for a realm whose route is a single available peer, within the pending
  limits: a new header (hop-by-hop id, length), the body, and our Route-Record;
- a request served here (§6.1.4: our realm and an application we serve, a local route,
  or a Destination-Host naming us) whose application has a fast path
  (``application.fast_path(node)``: the Cx roles' MARs, gateway.applications.fastpath
  and hss_batch): handed to it, with the tables up to date; work it keeps for the end of
  the read (``after_read``: one store transaction for the MARs of a read) runs there, or
  before a later message of the read takes the general path;
- an answer to a request of the node's own (a translated MAR, an RTR):
  ``Proxy.own_answer``, as the general path does.

Finding the Destination-Realm without walking every AVP: a client sends the same
Vendor-Specific-Application-Id, Auth-Session-State, Origin-Host, Origin-Realm and
Destination-Realm in every request, after a Session-Id of its own. So each connection
remembers the AVPs from the end of the first AVP to the end of the Destination-Realm
(``DiameterConnection.relay_prefix``, learnt from a request walked or checked once); a
request that carries those bytes right after its first AVP has that Destination-Realm, and
no Destination-Host or Route-Record before it. When they differ, the realm's code is
searched for and the hit is known to be a top-level AVP if the bytes between the first
AVP and it are a chain of AVPs walked before (``verified_chains``); else the AVPs are
walked. Caches that can only confirm what a walk confirmed, never change a verdict.

A function call per step costs more than the step at 100k messages/s; hence one long
function with everything in local variables. What it shares with the general path rather
than copying: framing limits (gateway.transport.framing), hop-by-hop ids
(``PendingRequests.new_id``), pending entries (``PendingRequest``, settled per read),
the Route-Record (``Proxy.route_record``) and peer availability (``Peer.available``);
``tests/gateway/test_relay.py`` proves the rest equal, failover and timeouts included.

It cannot lose the node's bookkeeping: should handling one message raise all the same,
the counts kept in local variables are written back, that message alone is answered
5012 DIAMETER_UNABLE_TO_COMPLY (``DiameterNode.unable_to_comply``) and the rest of the
read is relayed.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from cx_codec import DecodeError
from cx_codec.dictionary import APPLICATION_RELAY
from cx_codec.rewrite import find_base_avp
from gateway.observe.counts import result_key
from gateway.routing.pending import PendingRequest
from gateway.routing.proxy import Proxy, ProxyHost
from gateway.routing.table import RouteAction
from gateway.transport.connection import WriteBatch
from gateway.transport.framing import HEADER_LENGTH, V1, V1_MIN

if TYPE_CHECKING:
    from gateway.peer.executor import Peer
    from gateway.transport.connection import DiameterConnection

_HEADER = struct.Struct(">IIIII")  # version|length, flags|code, application, hop-by-hop, end-to-end
_AVP_HEADER = struct.Struct(">II")  # code, flags|length
_U32 = struct.Struct(">I")
_BASE_COMMANDS = frozenset({257, 280, 282})  # CER/CEA, DWR/DWA, DPR/DPA: the peer machine's
_DESTINATION_REALM = (283).to_bytes(4, "big")  # the AVP code field, RFC 6733 §6.6
# Destination-Host (293, §6.5) or Route-Record (282, §6.7.1) code fields anywhere
_ROUTING_CODES = frozenset({282, 283, 293})
_HOST_OR_ROUTE_RECORD = re.compile(rb"\x00\x00\x01[\x25\x1a]")
_LOCAL = RouteAction.LOCAL
_MAX_CHAINS = 1024
_MAX_CHAIN_BYTES = 1024
_new_entry = tuple.__new__


class FastRequest(Protocol):
    """An application's fast path (``application.fast_path(node)``, e.g.
    gateway.applications.service.CxService.fast_request):
    serve the request in ``data[offset:stop]`` as the general path would (``Proxy.local``
    and the application), sharing its bookkeeping (``Proxy.admit_local``,
    ``Proxy.local_answer``); False, having changed nothing, when the general path must."""

    def __call__(self, connection: DiameterConnection, peer: Peer, data: bytes, offset: int, stop: int) -> bool: ...


class RelayHost(ProxyHost):
    """What the hot loop needs of the node besides the proxy's tables."""

    proxy: Proxy
    batch: WriteBatch
    max_message_size: int
    stopping: bool

    def dispatch(self, connection: DiameterConnection, data: bytes) -> None: ...

    def receive_general(self, connection: DiameterConnection, data: bytes) -> None: ...

    def unable_to_comply(self, connection: DiameterConnection, data: bytes, error: BaseException) -> None: ...

    def observe_latencies(self, entries: list[PendingRequest]) -> None: ...


class StreamRelay:
    def __init__(self, node: RelayHost) -> None:
        self.node = node
        self.verified_chains: set[bytes] = set()
        # work a fast path keeps for the end of the read (one store transaction for the
        # MARs of one read: gateway.applications.hss_batch), run before the writes go out
        self.after_read: list[Callable[[], None]] = []

    def learn_prefix(self, connection: DiameterConnection, data: bytes, start: int, first_end: int, stop: int) -> bytes | None:
        """The Destination-Realm of the request in ``data[start:stop]`` whose first AVP ends
        at ``first_end``, or None: the general path takes it (no Destination-Realm, a
        broken AVP, or maybe a Destination-Host or a Route-Record). Remembers the AVPs from
        ``first_end`` to the realm's end as the connection's prefix."""
        if (data.find(b"\x25", first_end, stop) >= 0 or data.find(b"\x1a", first_end, stop) >= 0) and (
            _HOST_OR_ROUTE_RECORD.search(data, first_end, stop) is not None
        ):
            return None
        # the first 0x1b, else the first full code; a top-level AVP header if the bytes
        # before it are a chain walked before
        realm_at = data.find(b"\x1b", first_end + 3, stop) - 3
        if realm_at >= first_end and data[realm_at : realm_at + 4] != _DESTINATION_REALM:
            realm_at = data.find(_DESTINATION_REALM, realm_at + 1, stop)
        chains = self.verified_chains
        if realm_at < first_end or (realm_at - start) & 3 or data[first_end:realm_at] not in chains:
            try:
                realm_at = find_base_avp(data, 283, start, stop)
            except DecodeError:
                return None
            if realm_at < first_end:
                return None
            if realm_at - first_end <= _MAX_CHAIN_BYTES:  # (memory: at most 1024 x 1 KiB)
                if len(chains) >= _MAX_CHAINS:
                    chains.clear()
                chains.add(data[first_end:realm_at])
        if realm_at + 8 > stop:
            return None  # a header cut short by the end of the message: the general path answers
        _, word = _AVP_HEADER.unpack_from(data, realm_at)
        length = word & 0xFFFFFF
        end = realm_at + ((length + 3) & -4)
        if word & 0x80000000 or length < 8 or end > stop:
            return None  # a vendor's AVP 283 (the walk skips those), or broken
        realm = data[realm_at + 8 : realm_at + length]
        connection.relay_prefix = (data[first_end:end], realm)
        return realm

    def decide(self, peer: Peer, realm: bytes, application_id: int) -> tuple[Peer | None, DiameterConnection | None, FastRequest | None]:
        """The single available peer a request from ``peer`` for ``realm`` goes to here, and
        its connection; or, for a request served here (RFC 6733 §6.1.4: our realm and an
        application we serve, or a local route; or a peer the application claims,
        ``Proxy.claimed``), the application's ``fast_request`` where
        it has one; (None, None, None): the general path decides (several targets, nothing
        available: answers, failover choices and limits are its)."""
        node = self.node
        route = node.routing.lookup_raw(realm, application_id)
        if (application_id in node.applications and realm.lower() == node.proxy.realm) or (
            route is not None and route.action is _LOCAL
        ) or node.proxy.claimed(peer, application_id):
            return None, None, self.fast_local(application_id)
        if route is None or len(route.targets) != 1:
            return None, None, None
        target = node.peers.get(route.targets[0].key)
        if target is None or target is peer or not target.available:
            return None, None, None
        out = target.connection
        if out is None or out.closing or not out.connected:
            return None, None, None
        return target, out, None

    def finish_read(self) -> None:
        """Run the work fast paths kept for the end of the read (``after_read``); also
        before a message of the read takes the general path, so that the store sees the
        requests in stream order."""
        work, self.after_read = self.after_read, []
        for finish in work:
            finish()  # (each answers its requests whatever fails: see hss_batch)

    def named_here(self, data: bytes, offset: int, stop: int, application_id: int) -> FastRequest | None:
        """The application's fast path for a request whose Destination-Host is this node
        (RFC 6733 §6.1.4, as ``Proxy._route`` decides it: no Route-Record of ours), else None."""
        serve = self.fast_local(application_id)
        if serve is None:
            return None
        proxy = self.node.proxy
        try:
            found = proxy.routing_avps(data[offset:stop])
        except DecodeError:
            return None
        if found is None or found[1] is None or found[1][0].lower() != proxy.identity:
            return None
        return serve

    def fast_local(self, application_id: int) -> FastRequest | None:
        """The fast path of the application serving ``application_id`` here, if it has one
        and the application is one we advertised (else the general path answers 3007)."""
        proxy = self.node.proxy
        if application_id not in proxy.advertised and APPLICATION_RELAY not in proxy.advertised:
            return None
        fast_path = getattr(self.node.applications.get(application_id), "fast_path", None)
        return fast_path(self.node) if fast_path is not None else None

    def stream(self, connection: DiameterConnection, peer: Peer, data: bytes) -> bool:
        """Relay what ``data`` completes; the node batches the writes around this call.
        True if it completed a message (a sign of life of the peer, RFC 3539 §3.4.1)."""
        node = self.node
        framer = connection.framer
        if framer.buffered:
            message, used = framer.complete(data)  # FramingError: the caller's
            if message is None:
                return False
            data = message + data[used:]
        pending = node.pending
        entries = pending.entries
        per_peer = pending.per_peer
        new_id = pending.new_id
        max_peer, max_all = node.limits.max_pending_per_peer, node.limits.max_pending
        record = node.proxy.route_record(peer.host)
        record_length = len(record)
        deadline = node.now + pending.tx
        dirty = node.batch.dirty
        unpack = _HEADER.unpack_from
        pack_header = _HEADER.pack
        pack_into = _U32.pack_into
        find = data.find
        unpack_avp = _AVP_HEADER.unpack_from
        prefix, prefix_realm = connection.relay_prefix
        prefix_length = len(prefix) if prefix is not None else 0
        high = V1 | node.max_message_size
        counting = node.counting  # metrics on: every message counted, here as on the general path
        requests: dict[tuple[Any, int], int] = {}  # (target peer, command) -> requests relayed
        answers: dict[tuple[Any, int, bytes], int] = {}  # (origin connection, command, result) -> answers
        answered_entries: list[PendingRequest] = []  # for the latency histogram
        buffer = view = None  # a writable copy of ``data``, made for the first answer
        run_to = None  # the connection of the current run of answers: buffer[run_start:run_end]
        run_start = run_end = 0
        answered = 0  # answers from ``peer``, taken off its pending count when settled
        last_realm: bytes | None = None  # the routing decision of the last request ...
        last_application = -1
        target = out = serve = None  # ... (None: the general path's), until the general path runs
        count = 0  # requests pending on ``target``, written back when settled
        offset = 0
        end = stop = len(data)
        while True:
            try:
                while end - offset >= HEADER_LENGTH:
                    word, flags_code, application_id, hop_by_hop_in, end_to_end = unpack(data, offset)
                    if word < V1_MIN or word > high or word & 3:
                        break  # framing lost: the Framer below says how
                    stop = offset + (word & 0xFFFFFF)
                    if stop > end:
                        break
                    flags = flags_code >> 24
                    command = flags_code & 0xFFFFFF
                    if command not in _BASE_COMMANDS and not flags & 0x2F:
                        if not flags & 0x80:  # an answer
                            entry = entries.get(hop_by_hop_in)
                            # origin None: a request of this node's own (PendingRequests.add with a Deferred)
                            if entry is not None and entry.peer is peer and entry.origin is not None and entry.deferred is None:
                                del entries[hop_by_hop_in]
                                answered += 1
                                origin = entry.origin
                                if counting:
                                    key = (origin, command, result_key(data, offset, stop))
                                    answers[key] = answers.get(key, 0) + 1
                                    answered_entries.append(entry)
                                if origin.connected and not origin.closing:
                                    if buffer is None:
                                        buffer = bytearray(data)
                                        view = memoryview(buffer)
                                    pack_into(buffer, offset + 12, entry.original_hop_by_hop)
                                    if origin is run_to and offset == run_end:
                                        run_end = stop
                                    else:
                                        if run_to is not None:
                                            _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
                                        run_to, run_start, run_end = origin, offset, stop
                                offset = stop
                                continue
                            if entry is not None and entry.peer is peer:
                                # the answer to a request of this node's own (a translated MAR,
                                # an RTR): Proxy.own_answer, with the tables up to date
                                if run_to is not None:
                                    _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
                                    run_to = None
                                if target is not None:
                                    per_peer[target] = count
                                target = out = serve = last_realm = None
                                del entries[hop_by_hop_in]
                                per_peer[peer] -= answered + 1
                                answered = 0
                                if counting:
                                    answered_entries.append(entry)
                                node.proxy.own_answer(peer, entry, data[offset:stop], False)
                                offset = stop
                                if peer.connection is not connection or node.stopping:
                                    break
                                continue
                        elif stop - offset >= 28:
                            first_code, first_word = unpack_avp(data, offset + 20)  # usually Session-Id
                            first_end = offset + 20 + ((first_word & 0xFFFFFF) + 3 & -4)
                            if first_word & 0xFFFFFF < 8 or first_code in _ROUTING_CODES or first_end > stop:
                                realm = None
                            elif prefix is not None and first_end + prefix_length <= stop and data.startswith(prefix, first_end):
                                # the AVPs up to the Destination-Realm are this connection's usual
                                # ones, and no Destination-Host or Route-Record is among them:
                                # are any in the rest? (one byte is found fastest; a length or a
                                # character of that value costs the full pattern's search)
                                after = first_end + prefix_length
                                if find(b"\x25", after, stop) < 0 and find(b"\x1a", after, stop) < 0 or (
                                    _HOST_OR_ROUTE_RECORD.search(data, after, stop) is None
                                ):
                                    realm = prefix_realm
                                else:
                                    realm = None
                            else:
                                realm = self.learn_prefix(connection, data, offset, first_end, stop)
                                prefix, prefix_realm = connection.relay_prefix
                                prefix_length = len(prefix) if prefix is not None else 0
                            if realm is not None:
                                if realm is not last_realm or application_id != last_application:
                                    if target is not None:
                                        per_peer[target] = count
                                    target, out, serve = self.decide(peer, realm, application_id)
                                    last_realm, last_application = realm, application_id
                                    count = per_peer.get(target, 0)
                                if out is not None and count < max_peer and len(entries) < max_all:
                                    hop_by_hop = new_id()
                                    forwarded = b"".join((
                                        pack_header(word + record_length, flags_code, application_id, hop_by_hop, end_to_end),
                                        data[offset + 20 : stop],
                                        record,
                                    ))
                                    entries[hop_by_hop] = _new_entry(PendingRequest, (
                                        hop_by_hop, hop_by_hop_in, connection, target, forwarded, deadline, command, (), None,
                                    ))
                                    count += 1
                                    if counting:
                                        key = (target, command)
                                        requests[key] = requests.get(key, 0) + 1
                                    if run_to is not None:  # keep the stream's order on every connection
                                        _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
                                        run_to = None
                                    outbox = out.outbox
                                    if not outbox:
                                        dirty.append(out)
                                    outbox.append(forwarded)
                                    offset = stop
                                    continue
                                if serve is not None:  # served here, by the application's fast path
                                    if run_to is not None:
                                        _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
                                        run_to = None
                                    if answered:
                                        per_peer[peer] -= answered
                                        answered = 0
                                    if serve(connection, peer, data, offset, stop):
                                        offset = stop
                                        continue
                            else:
                                # a Destination-Host or Route-Record, maybe: a request naming this
                                # node (a partner gateway's, to a primary) is served here too
                                here = self.named_here(data, offset, stop, application_id)
                                if here is not None:
                                    if run_to is not None:
                                        _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
                                        run_to = None
                                    if target is not None:
                                        per_peer[target] = count
                                    target = out = serve = last_realm = None
                                    if answered:
                                        per_peer[peer] -= answered
                                        answered = 0
                                    if here(connection, peer, data, offset, stop):
                                        offset = stop
                                        continue
                    # the general path, in stream order, with the node's tables up to date
                    if run_to is not None:
                        _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
                        run_to = None
                    if target is not None:
                        per_peer[target] = count
                    target = out = serve = last_realm = None
                    if answered:
                        per_peer[peer] -= answered
                        answered = 0
                    if self.after_read:  # the store's work in stream order: what came before, first
                        self.finish_read()
                    node.dispatch(connection, data[offset:stop])
                    offset = stop
                    if peer.connection is not connection or node.stopping:
                        break  # a DPR (say) changed the peer's state: the rest takes the general path
                break
            except Exception as error:  # the net under the loop: see the module's docstring
                if run_to is not None:
                    _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
                    run_to = None
                if target is not None:
                    per_peer[target] = count
                target = out = serve = last_realm = None
                if answered:
                    per_peer[peer] -= answered
                    answered = 0
                if self.after_read:
                    self.finish_read()
                node.unable_to_comply(connection, data[offset:stop], error)
                offset = stop
                prefix, prefix_realm = connection.relay_prefix
                prefix_length = len(prefix) if prefix is not None else 0
        if run_to is not None:
            _queue(run_to, view[run_start:run_end], dirty)  # type: ignore[index]
        if target is not None:
            per_peer[target] = count
        if answered:
            per_peer[peer] -= answered
        if self.after_read:
            self.finish_read()
        if counting:
            node.message_counts.settle(peer.host, requests, answers)
            if answered_entries:
                node.observe_latencies(answered_entries)
        pending.arm()
        if offset < end:
            node.receive_general(connection, data[offset:])
        return offset > 0

def _queue(connection: DiameterConnection, data: bytes | memoryview, dirty: list[DiameterConnection]) -> None:
    """DiameterConnection.queue during a batch, without its checks (made by the caller)."""
    outbox = connection.outbox
    if not outbox:
        dirty.append(connection)
    outbox.append(data)
