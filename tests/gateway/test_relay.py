"""gateway.routing.relay, the hot loop, against the general path it stands in for.

Two nodes with the same peers, routes and hop-by-hop counter: one relays through
``StreamRelay.stream``, the other through ``node.receive_general`` only (``Proxy.request``,
``_route``, ``answer``: the RFC 6733 §6.1/§6.2 rules spelled out). The same byte streams,
cut at the same places, go into both; every connection must see the same bytes come out,
and both pending tables must end the same. The streams are built to trip the shortcuts:
a routing AVP first or in place of the Session-Id, a vendor's AVP 283 or a whole
Destination-Realm AVP inside an OctetString before the real one, bytes 0x1a/0x1b/0x25 (the low code bytes searched
for) in values and lengths, Destination-Host or Route-Record after the usual prefix,
a request that comes back to us (3005), unknown realms (3002), error answers,
answers nobody asked for or from a peer not asked, and a broken header at the end.
Then what is left unanswered ends one of three ways, again on both nodes: Tx runs out
(3002), a server goes down (failover with the T flag to the other server of a two-target
realm, 3002 where there is none, RFC 6733 §5.5.4), or its watchdog turns suspect
(failover, the rest left to Tx); limits (3004) and per-peer counts are compared throughout.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import task
from twisted.internet.testing import StringTransport

from cx_codec.build import avp_bytes
from gateway.node import DiameterNode
from gateway.observe.counts import NodeMetrics
from gateway.peer import WatchdogState
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.routing.table import Route, RouteAction, RouteTarget, RoutingTable
from gateway.settings import Limits, PeerSettings, Timers
from gateway.transport.connection import DiameterConnection

CX = 16777216
US = "relay.partner.test"
CLIENTS = ("scscf-1.partner.test", "scscf-2.partner.test")
SERVERS = {"primary.test": "hss-a.primary.test", "other.test": "hss-b.other.test"}
BOTH = "both.test"  # a realm served by both servers: failover has an alternate
REALMS = (*SERVERS, BOTH, "unknown.test")
PEERS = (*CLIENTS, *SERVERS.values())


def _node(
    fast: bool, max_pending_per_peer: int, default_route: bool, counting: bool = False
) -> tuple[DiameterNode, dict[str, DiameterConnection]]:
    routes = [Route(realm, CX, RouteAction.RELAY, [RouteTarget(host)]) for realm, host in SERVERS.items()]
    routes.append(Route(BOTH, CX, RouteAction.RELAY, [RouteTarget(host) for host in SERVERS.values()]))
    if default_route:  # then a wrong realm (say a vendor's AVP 283 taken for it) is routed too
        routes.append(Route("*", CX, RouteAction.RELAY, [RouteTarget(SERVERS["other.test"])]))
    node = DiameterNode(
        LocalIdentity(US, "partner.test", applications=(Application(CX, 10415),)),
        reactor=task.Clock(),
        peers=[PeerSettings(host, realm, "127.0.0.1", 3868) for realm, host in SERVERS.items()]
        + [PeerSettings(host, "partner.test", connect=False) for host in CLIENTS],
        routes=routes,
        timers=Timers(tx=30.0),
        limits=Limits(max_pending_per_peer=max_pending_per_peer, max_pending=1000),
        metrics=NodeMetrics() if counting else None,  # counting must not change a byte, and counts alike
    )
    connections = {}
    for host in PEERS:
        # an open peer as the state machine leaves it (the hot loop reads only this)
        peer = node.peers[host]
        connection = DiameterConnection(node, "R" if host in CLIENTS else "I", peer)
        connection.transport = StringTransport()
        connection.connected = True
        peer.connection = connection
        peer.watchdog.state = WatchdogState.OKAY
        connections[host] = connection
    node.pending._next_id = 0xFFFFFFF0  # the same ids on both nodes, wrapping round
    if not fast:
        node.relay.stream = lambda connection, peer, data: node.receive_general(connection, data)  # type: ignore[method-assign]
    return node, connections


def _message(flags: int, code: int, hop_by_hop: int, end_to_end: int, avps: list[bytes]) -> bytes:
    body = b"".join(avps)
    return struct.pack(">IIIII", 1 << 24 | (20 + len(body)), flags << 24 | code, CX, hop_by_hop, end_to_end) + body


def _raw_avp(code: int, data: bytes, vendor: int | None = None, flags: int = 0x40) -> bytes:
    header = struct.pack(">II", code, (flags | (0x80 if vendor is not None else 0)) << 24 | (len(data) + (12 if vendor is not None else 8)))
    if vendor is not None:
        header += vendor.to_bytes(4, "big")
    return header + data + b"\0" * (-len(data) % 4)


# values with the bytes the hot loop searches for, and lengths that are those bytes
_text = st.text(alphabet="ab%\x1a\x1b.-@0123456789", min_size=0, max_size=40)
_octets = st.binary(max_size=24) | st.sampled_from([b"\x00\x00\x01\x1b\x40\x00\x00\x0cfake", b"\x01\x1a\x01\x25\x1b"])


@st.composite
def _request(draw: st.DrawFn, client: str) -> list[bytes]:
    """The AVPs of a request: usually the shape a client repeats, sometimes a trap."""
    realm = draw(st.sampled_from(REALMS))
    before = draw(st.lists(st.sampled_from(["vendor-283", "fake-header", "user"]), max_size=2))
    after = draw(st.lists(st.sampled_from(["host", "record-other", "record-us", "user", "octets"]), max_size=2))
    avps = [
        avp_bytes("Session-Id", f"{client};{draw(_text)}"),
        avp_bytes("Vendor-Specific-Application-Id", {"vendor_id": 10415, "auth_application_id": CX}),
        avp_bytes("Auth-Session-State", 1),
        avp_bytes("Origin-Host", client),
        avp_bytes("Origin-Realm", "partner.test"),
    ]
    extra = {
        "vendor-283": lambda: _raw_avp(283, b"vendor.test", vendor=10415),
        # a whole Destination-Realm AVP inside an OctetString, 4-aligned like a real one
        "fake-header": lambda: _raw_avp(610, avp_bytes("Destination-Realm", draw(st.sampled_from(REALMS))), vendor=10415),
        "user": lambda: avp_bytes("User-Name", draw(_text)),
        "host": lambda: avp_bytes("Destination-Host", draw(st.sampled_from([*SERVERS.values(), "nobody.test"]))),
        "record-other": lambda: avp_bytes("Route-Record", "earlier.partner.test"),
        "record-us": lambda: avp_bytes("Route-Record", US),
        "octets": lambda: _raw_avp(610, draw(_octets), vendor=10415),
    }
    avps += [extra[name]() for name in before]
    if realm != "none":
        avps.append(avp_bytes("Destination-Realm", realm))
    avps += [extra[name]() for name in after]
    first = draw(st.sampled_from(["usual"] * 6 + ["realm before", "realm instead", "host instead", "record instead"]))
    if first == "realm before":
        avps.insert(0, avp_bytes("Destination-Realm", draw(st.sampled_from(REALMS))))
    elif first != "usual":  # the first AVP, which the hot loop skips, is a routing AVP
        name, value = {
            "realm instead": ("Destination-Realm", draw(st.sampled_from(REALMS))),
            "host instead": ("Destination-Host", draw(st.sampled_from(list(SERVERS.values())))),
            "record instead": ("Route-Record", US),
        }[first]
        avps[0] = avp_bytes(name, value)
    return avps


def _cut(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False)]


def _frames(data: bytes) -> list[bytes]:
    messages, offset = [], 0
    while offset + 4 <= len(data):
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        messages.append(data[offset : offset + length])
        offset += length
    return messages


def _drain(connections: dict[str, DiameterConnection]) -> dict[str, bytes]:
    out = {}
    for host, connection in connections.items():
        out[host] = connection.transport.value()  # type: ignore[attr-defined]
        connection.transport.clear()  # type: ignore[attr-defined]
    return out


def _feed(node: DiameterNode, connections: dict[str, DiameterConnection], reads: list[tuple[str, bytes]]) -> None:
    for host, data in reads:
        connection = connections[host]
        if connection.connected and not connection.closing:
            node.receive(connection, data)


def _state(node: DiameterNode) -> tuple:
    pending = node.pending
    return (
        sorted((e.hop_by_hop, e.original_hop_by_hop, e.peer.host, e.data) for e in pending),
        sorted((peer.host, count) for peer, count in pending.per_peer.items() if count),
        pending._next_id,
        sorted(node.message_counts.items()),
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_the_hot_loop_does_what_the_general_path_does(data: st.DataObject) -> None:
    limit = data.draw(st.sampled_from([3, 1000]), label="max_pending_per_peer")
    default_route = data.draw(st.booleans(), label="default route")
    counting = data.draw(st.booleans(), label="metrics on")
    fast, fast_connections = _node(True, limit, default_route, counting)
    reference, reference_connections = _node(False, limit, default_route, counting)
    both = ((fast, fast_connections), (reference, reference_connections))

    # requests from two clients, each stream cut into reads, the reads interleaved
    chunks: dict[str, list[bytes]] = {}
    for number, client in enumerate(CLIENTS):
        requests = data.draw(st.lists(_request(client), min_size=1, max_size=8), label=client)
        stream = b"".join(
            _message(0xC0, 303, 0x100 * number + index, 0x7000 + index, avps) for index, avps in enumerate(requests)
        )
        if data.draw(st.booleans(), label="broken header at the end"):
            stream += b"\x01\x00\x00\x05" + bytes(16)  # a length that is no multiple of 4: framing lost
        chunks[client] = _cut(stream, data.draw(st.lists(st.integers(0, 1 << 16), max_size=4), label="cuts"))
    total = sum(map(len, chunks.values()))
    picks = data.draw(st.lists(st.sampled_from(CLIENTS), min_size=total, max_size=total), label="interleaving")
    reads: list[tuple[str, bytes]] = []
    for pick in picks:
        client = pick if chunks[pick] else next(c for c in CLIENTS if chunks[c])
        reads.append((client, chunks[client].pop(0)))
    for node, connections in both:
        _feed(node, connections, reads)
    out = [_drain(connections) for _, connections in both]
    assert out[0] == out[1]
    assert _state(fast) == _state(reference)

    # the servers answer some of what they got, some with the E bit, plus one nobody asked for
    answers: list[tuple[str, bytes]] = []
    asked = {host: _frames(out[0][host]) for host in SERVERS.values()}
    for host, other in zip(SERVERS.values(), reversed(SERVERS.values()), strict=True):
        received = [request for request in asked[host] if data.draw(st.integers(0, 3), label="answered") > 0]
        if asked[other] and data.draw(st.booleans(), label="answers what the other was asked"):
            received = [*received, asked[other][0]]
        stream = b"".join(
            _message(
                0x60 if data.draw(st.integers(0, 7), label="error answer") == 0 else 0x40, 303,
                int.from_bytes(request[12:16], "big"), int.from_bytes(request[16:20], "big"),
                [avp_bytes("Origin-Host", host), avp_bytes("Result-Code", 2001)],
            )
            for request in received
        )
        stream += _message(0x40, 303, 0x12345678, 1, [avp_bytes("Result-Code", 2001)])
        cuts = data.draw(st.lists(st.integers(0, 1 << 16), max_size=4), label="answer cuts")
        answers += [(host, chunk) for chunk in _cut(stream, cuts)]
    for node, connections in both:
        _feed(node, connections, answers)
    out = [_drain(connections) for _, connections in both]
    assert out[0] == out[1]
    assert _state(fast) == _state(reference)

    # what is left: Tx runs out, or a server goes down or turns suspect (RFC 6733 §5.5.4)
    ending = data.draw(st.sampled_from(["Tx", "down", "suspect"]), label="ending")
    server = data.draw(st.sampled_from(list(SERVERS.values())), label="server")
    # a reload that gives every realm both servers: the hot loop's entries fail over too
    reload = data.draw(st.booleans(), label="reload with alternates")
    for node, _ in both:
        peer = node.peers[server]
        if reload:
            targets = [RouteTarget(host) for host in SERVERS.values()]
            node.routing = RoutingTable([Route(realm, CX, RouteAction.RELAY, targets) for realm in (*SERVERS, BOTH)])
        if ending == "Tx":
            node.clock.advance(31.0)  # past Tx (30 s): every entry left expires, 3002
        elif ending == "down":
            peer.connection = None  # gone: out of routing, its entries fail over or get 3002
            node.peer_down(peer)
        else:
            peer.watchdog.state = WatchdogState.SUSPECT
            node.failover(peer)
    out = [_drain(connections) for _, connections in both]
    assert out[0] == out[1]
    assert _state(fast) == _state(reference)
    if ending == "Tx":
        assert len(fast.pending) == 0


def test_a_usual_request_takes_the_hot_loop_and_the_prefix_is_learnt() -> None:
    """The differential test above proves sameness; this one that the shortcut is taken."""
    node, connections = _node(True, 1000, False)
    dispatched = []
    general = node.dispatch
    node.dispatch = lambda connection, data: (dispatched.append(data), general(connection, data))  # type: ignore[method-assign]
    client = connections[CLIENTS[0]]
    for index in range(3):
        avps = [
            avp_bytes("Session-Id", f"{CLIENTS[0]};{'x' * index}"),
            avp_bytes("Origin-Host", CLIENTS[0]),
            avp_bytes("Origin-Realm", "partner.test"),
            avp_bytes("Destination-Realm", "primary.test"),
            avp_bytes("User-Name", "alice@partner.test"),
        ]
        node.receive(client, _message(0xC0, 303, index, index, avps))
    assert dispatched == []
    prefix, realm = client.relay_prefix
    assert realm == b"primary.test" and prefix is not None and prefix.endswith(avp_bytes("Destination-Realm", "primary.test"))
    assert len(_frames(connections[SERVERS["primary.test"]].transport.value())) == 3  # type: ignore[attr-defined]


class _BrokenTransport(StringTransport):
    """A transport whose loop refuses it, as uvloop refuses a socket whose poll handle it
    closed after the peer reset it (while Twisted still holds the connection open)."""

    def __init__(self, abort_raises: bool) -> None:
        super().__init__()
        self.abort_raises = abort_raises
        self.aborted = 0
        self.reactor = task.Clock()
        self.lost: list[object] = []

    def write(self, data: bytes) -> None:
        raise RuntimeError("unable to perform operation on <UVPoll closed=True>; the handler is closed")

    def abortConnection(self) -> None:
        self.aborted += 1
        if self.abort_raises:
            raise RuntimeError("the handler is closed")
        self.reactor.callLater(0, self.connectionLost, "aborted")

    def connectionLost(self, reason: object) -> None:
        self.lost.append(reason)


@pytest.mark.parametrize("abort_raises", [False, True])
def test_a_write_that_raises_ends_that_connection_only(abort_raises: bool) -> None:
    """One read relays requests to two servers; the socket of one is refused by the loop
    when the batch is written. The client's connection and the other server's writes go
    on; the broken connection is aborted (or, if its loop refuses that too, ended on the
    next turn), so that its peer goes down the usual way. Before, the exception left the
    client's read and the node closed the client's connection (seen with uvloop when an
    upstream was killed under load)."""
    from twisted.logger import formatEvent, globalLogPublisher

    node, connections = _node(True, 1000, False)
    broken = connections[SERVERS["primary.test"]]
    transport = broken.transport = _BrokenTransport(abort_raises)
    logged: list[str] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "cxgw.connection":
            logged.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        client = connections[CLIENTS[0]]
        node.receive(client, b"".join(_message(0xC0, 303, index, index, [
            avp_bytes("Session-Id", f"{CLIENTS[0]};{index}"),
            avp_bytes("Origin-Host", CLIENTS[0]),
            avp_bytes("Origin-Realm", "partner.test"),
            avp_bytes("Destination-Realm", realm),
            avp_bytes("User-Name", "alice@partner.test"),
        ]) for index, realm in enumerate(["primary.test", "other.test", "other.test"])))
    finally:
        globalLogPublisher.removeObserver(observe)
    assert client.connected and not client.closing
    assert len(_frames(connections[SERVERS["other.test"]].transport.value())) == 2  # type: ignore[attr-defined]
    assert transport.aborted == 1
    transport.reactor.advance(0)
    assert len(transport.lost) == 1  # its connectionLost comes, from the abort or in its place
    assert any(text.startswith(f"writing to {broken!r} failed") and "the handler is closed" in text for text in logged)
