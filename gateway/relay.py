"""The relay's hot loop: the bytes of one read from an open peer, framed, routed and
forwarded in one pass (RFC 6733 §6.1.9 requests, §6.2.2 answers).

It does inline, for the common cases only, what the general path (``node._dispatch``:
``Proxy.request``/``_route``/``answer``) does, and hands everything else to the general
path in stream order:

- an answer to a request this node relayed: its original hop-by-hop id is written into
  a copy of the read buffer in place, and consecutive answers for the same connection go
  out as one slice of that buffer (no per-message copy);
- a request with no Destination-Host and no Route-Record (so no loop is possible,
  §6.1.3), for a realm whose route is a single available peer, within the pending
  limits: a new header (hop-by-hop id, length), the body, and our Route-Record.

Finding the Destination-Realm without walking every AVP: its header bytes are searched
for, and the hit is known to be a top-level AVP when the bytes between the end of the
first AVP (the Session-Id) and the hit are a chain of AVPs already walked once
(``verified_chains``). A client sends the same Vendor-Specific-Application-Id,
Auth-Session-State, Origin-Host and Origin-Realm in every request, so after its first
request each one costs a search, a length read and a set lookup instead of a walk.
A cache that can only confirm what a walk confirmed, never change a verdict.

A function call per step costs more than the step at 100k messages/s; hence one long
function with everything in local variables.
"""

from __future__ import annotations

import re
import struct
from typing import TYPE_CHECKING

from cx_codec import DecodeError
from cx_codec.rewrite import find_base_avp
from gateway.peer import WatchdogState
from gateway.pending import PendingRequest
from gateway.routing import RouteAction

if TYPE_CHECKING:
    from gateway.connection import DiameterConnection
    from gateway.node import DiameterNode
    from gateway.peers import Peer

_HEADER = struct.Struct(">IIIII")  # version|length, flags|code, application, hop-by-hop, end-to-end
_U32 = struct.Struct(">I")
_V1 = 1 << 24
_V1_MIN = _V1 | 20
_BASE_COMMANDS = frozenset({257, 280, 282})  # CER/CEA, DWR/DWA, DPR/DPA: the peer machine's
_OKAY = WatchdogState.OKAY
_DESTINATION_REALM = (283).to_bytes(4, "big")  # the AVP code field, RFC 6733 §6.6
# Destination-Host (293, §6.5) or Route-Record (282, §6.7.1) code fields anywhere
_HOST_OR_ROUTE_RECORD = re.compile(rb"\x00\x00\x01[\x25\x1a]")
_LOCAL = RouteAction.LOCAL
_MAX_CHAINS = 1024
_new_entry = tuple.__new__


class StreamRelay:
    def __init__(self, node: DiameterNode) -> None:
        self.node = node
        self.verified_chains: set[bytes] = set()

    def walk_to_realm(self, data: bytes, start: int, stop: int) -> int:
        """The Destination-Realm's offset by walking the AVPs (-1: none, or an AVP before
        it is broken: the general path answers that); learns the chain after the first AVP."""
        try:
            found = find_base_avp(data, 283, start, stop)
        except DecodeError:
            return -1
        if found > start + 20:
            first_end = start + 20 + ((_U32.unpack_from(data, start + 24)[0] & 0xFFFFFF) + 3 & -4)
            if found > first_end:
                chains = self.verified_chains
                if len(chains) >= _MAX_CHAINS:
                    chains.clear()
                chains.add(data[first_end:found])
        return found

    def stream(self, connection: DiameterConnection, peer: Peer, data: bytes) -> None:
        """Relay what ``data`` completes; the node batches the writes around this call."""
        node = self.node
        framer = connection.framer
        if framer.buffered:
            message, used = framer.complete(data)  # FramingError: the caller's
            if message is None:
                return
            data = message + data[used:]
        dispatch = node._dispatch
        pending = node.pending
        entries = pending._entries
        per_peer = pending._per_peer
        lookup = node.routing.lookup_raw
        peers = node.peers
        applications = node.applications
        max_peer, max_all = node.limits.max_pending_per_peer, node.limits.max_pending
        record = node.proxy.route_record(peer.host)
        record_length = len(record)
        deadline = node.now + pending.tx
        dirty = node._dirty
        unpack = _HEADER.unpack_from
        pack_header = _HEADER.pack
        pack_into = _U32.pack_into
        find = data.find
        walk_to_realm = self.walk_to_realm
        chains = self.verified_chains
        unpack_u32 = _U32.unpack_from
        host_or_route_record = _HOST_OR_ROUTE_RECORD.search
        high = _V1 | node.max_message_size
        next_id = pending._next_id
        buffer = view = None  # a writable copy of ``data``, made for the first answer
        run_to = None  # the connection of the current run of answers, data[run_start:run_end]
        run_start = run_end = 0
        last_realm: bytes | None = None  # the last routing decision, until the general path runs
        last_application = -1
        target = out = None
        offset = 0
        end = len(data)

        def end_run() -> None:
            """Queue the current run of answers: one slice of the patched buffer."""
            outbox = run_to.outbox  # type: ignore[union-attr]
            if not outbox:
                dirty.append(run_to)
            outbox.append(view[run_start:run_end])  # type: ignore[index]

        while end - offset >= 20:
            word, flags_code, application_id, hop_by_hop_in, end_to_end = unpack(data, offset)
            if word < _V1_MIN or word > high or word & 3:
                break  # framing lost: the Framer below says how
            stop = offset + (word & 0xFFFFFF)
            if stop > end:
                break
            flags = flags_code >> 24
            command = flags_code & 0xFFFFFF
            if command not in _BASE_COMMANDS and not flags & 0x2F:
                if not flags & 0x80:  # an answer
                    entry = entries.get(hop_by_hop_in)
                    if entry is not None and entry.peer is peer and entry.deferred is None and entry.origin is not None:
                        del entries[hop_by_hop_in]
                        per_peer[peer] -= 1
                        origin = entry.origin
                        if origin.connected and not origin.closing:
                            if buffer is None:
                                buffer = bytearray(data)
                                view = memoryview(buffer)
                            pack_into(buffer, offset + 12, entry.original_hop_by_hop)
                            if origin is run_to and offset == run_end:
                                run_end = stop
                            else:
                                if run_to is not None:
                                    end_run()
                                run_to, run_start, run_end = origin, offset, stop
                        offset = stop
                        continue
                elif (
                    find(b"\x25", offset + 20, stop) < 0 and find(b"\x1a", offset + 20, stop) < 0
                    or host_or_route_record(data, offset + 20, stop) is None
                ):
                    # No Destination-Host (code 293 = 0x125) nor Route-Record (282 = 0x11a)
                    # can be in there: not even their low code byte is (one byte is found
                    # fastest; a length or a character of that value costs the full
                    # pattern's search). Destination-Realm (283 = 0x11b): the first 0x1b,
                    # else the first full code, confirmed as an AVP header by a chain.
                    realm_at = find(b"\x1b", offset + 23, stop) - 3
                    if realm_at >= offset + 20 and unpack_u32(data, realm_at)[0] != 283:
                        realm_at = find(_DESTINATION_REALM, realm_at + 1, stop)
                    if (
                        realm_at >= offset + 20
                        and realm_at + 8 <= stop
                        and not (realm_at - offset) & 3
                        and unpack_u32(data, realm_at)[0] == 283
                        and not data[realm_at + 4] & 0x80  # no Vendor-Id
                    ):
                        if realm_at != offset + 20:
                            first_length = unpack_u32(data, offset + 24)[0] & 0xFFFFFF
                            first_end = offset + 20 + ((first_length + 3) & -4)
                            if first_length < 8 or first_end != realm_at and (
                                first_end > realm_at or data[first_end:realm_at] not in chains
                            ):
                                realm_at = walk_to_realm(data, offset, stop)
                    else:
                        realm_at = walk_to_realm(data, offset, stop)
                    realm_length = unpack_u32(data, realm_at + 4)[0] & 0xFFFFFF if realm_at >= 0 else 0
                    if realm_length >= 8 and realm_at + realm_length <= stop:
                        realm = data[realm_at + 8 : realm_at + realm_length]
                        if realm != last_realm or application_id != last_application:
                            last_realm, last_application = realm, application_id
                            route = lookup(realm, application_id)
                            target = out = None
                            if (
                                route is not None
                                and route.action is not _LOCAL
                                and len(route.targets) == 1
                                and application_id not in applications
                            ):
                                target = peers.get(route.targets[0].key)
                                out = target.connection if target is not None else None
                                if (
                                    out is None
                                    or target is peer
                                    or out.closing
                                    or not out.connected
                                    or target.congested  # Peer.available, inline
                                    or target.watchdog.state is not _OKAY
                                ):
                                    out = None
                        count = per_peer.get(target, 0)
                        if out is not None and count < max_peer and len(entries) < max_all:
                            hop_by_hop = next_id
                            while hop_by_hop in entries:
                                hop_by_hop = (hop_by_hop + 1) & 0xFFFFFFFF
                            next_id = (hop_by_hop + 1) & 0xFFFFFFFF
                            forwarded = b"".join((
                                pack_header(word + record_length, flags_code, application_id, hop_by_hop, end_to_end),
                                data[offset + 20 : stop],
                                record,
                            ))
                            entries[hop_by_hop] = _new_entry(PendingRequest, (
                                hop_by_hop, hop_by_hop_in, connection, target, forwarded, deadline, command, (), None,
                            ))
                            per_peer[target] = count + 1
                            if run_to is not None:  # keep the stream's order on every connection
                                end_run()
                                run_to = None
                            outbox = out.outbox
                            if not outbox:
                                dirty.append(out)
                            outbox.append(forwarded)
                            offset = stop
                            continue
            # the general path, in stream order
            if run_to is not None:
                end_run()
                run_to = None
            pending._next_id = next_id
            dispatch(connection, data[offset:stop])
            next_id = pending._next_id
            last_realm = None
            offset = stop
            if peer.connection is not connection or node.stopping:
                break  # a DPR (say) changed the peer's state: the rest takes the general path
        if run_to is not None:
            end_run()
        pending._next_id = next_id
        pending.arm()
        if offset < end:
            node.receive_general(connection, data[offset:])
