"""The node against hostile and broken peers: one test per finding of the adversarial
review, each failing on the code before its fix.

- unknown peers admitted by ``accept_realms`` are forgotten when their connection ends,
  and only ``limits.max_unknown_peers`` are admitted at once (the peer table and
  /metrics must not grow with invented Origin-Hosts);
- a malformed CER gets a whole CEA that passes our own strict decoding (RFC 6733 §5.3.2);
- a CER above ``limits.max_cer_size`` is refused before it is decoded;
- idle connections that never send a CER cannot lock a configured peer out;
- shutdown ends connections with a FIN, not a reset;
- a failure while handling one message is answered 5012 and costs that message only,
  on the relay's hot loop and on the general path.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, error, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol

from cx_codec import decode, new_request
from gateway.observe.counts import NodeMetrics
from gateway.settings import Limits, PeerSettings, Timers
from gateway.testing.diamtest import (
    CLIENT,
    CLIENT2,
    CX,
    FAST,
    PARTNER,
    PRIMARY,
    SERVER_A,
    Answering,
    Errors,
    Net,
    RawPeer,
    header_of,
    mar,
    three_nodes,
    wait_for,
)


def _cer(host: str, realm: str = PARTNER, hop_by_hop: int = 1) -> bytes:
    return new_request(
        "Capabilities-Exchange-Request", hop_by_hop=hop_by_hop, end_to_end=hop_by_hop, origin_host=host,
        origin_realm=realm, host_ip_address=["127.0.0.1"], vendor_id=0, product_name="raw", auth_application_id=[CX],
    ).encode()


def _serving_node(
    net: Net, limits: Limits | None = None, accept_realms: tuple[str, ...] = (), metrics: bool = False,
    timers: Timers = FAST,
):
    app = Answering(SERVER_A)
    node = net.node(
        SERVER_A, PRIMARY, peers=[PeerSettings(CLIENT, PARTNER, connect=False)], app=app, limits=limits,
        accept_realms=accept_realms, timers=timers,
    )
    if metrics:
        node.metrics = NodeMetrics()
        node.counting = True
    return node, app


# -- unknown peers (finding 3) --------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_unknown_peers_are_forgotten_when_their_connection_ends():
    net = Net()
    try:
        node, _ = _serving_node(net, accept_realms=(PARTNER,), metrics=True)
        configured = set(node.peers)
        for number in range(30):
            host = f"invented-{number}.{PARTNER}"
            peer = yield net.raw_peer(net.ports[SERVER_A], host=host)
            peer.send(mar(hop_by_hop=number, end_to_end=number, origin_host=host).encode())
            answer = yield peer.next()
            assert answer.result_code == 2001
            peer.transport.loseConnection()
            yield peer.wait_closed()
            yield wait_for(lambda host=host: host not in node.peers, what=f"{host} forgotten")
        assert set(node.peers) == configured
        node.metrics.collect(node)
        assert "invented-" not in node.metrics.metrics.registry.expose()
        assert not [key for key in node.message_counts if key[0].startswith("invented-")]
        assert not [host for host in node.proxy._route_records if host.startswith("invented-")]
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_only_max_unknown_peers_are_admitted_at_once():
    net = Net()
    try:
        node, _ = _serving_node(net, limits=Limits(max_unknown_peers=2), accept_realms=(PARTNER,))
        for number in range(2):
            yield net.raw_peer(net.ports[SERVER_A], host=f"invented-{number}.{PARTNER}")
        third = yield net.raw_peer(net.ports[SERVER_A], host=None)
        third.send(_cer(f"invented-2.{PARTNER}"))
        cea = yield third.next()
        assert cea.result_code == 3004 and cea.flags & 0x20  # DIAMETER_TOO_BUSY, a protocol error (E)
        decode(third.messages[-1])  # a CEA that passes our own strict decoding
        yield third.wait_closed()
        configured = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT)  # configured peers still get in
        assert configured.connected
    finally:
        yield net.stop()


# -- the capabilities exchange of a hostile peer (findings 6 and 7) ---------------------------


@pytest.mark.parametrize("breakage", ["avp overruns the message", "avp length below 8"])
@pytest_twisted.inlineCallbacks
def test_a_malformed_cer_gets_a_whole_cea_that_passes_strict_decoding(breakage):
    net = Net()
    try:
        _serving_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        cer = bytearray(_cer(CLIENT, hop_by_hop=0x77))
        # the first AVP (Origin-Host) gets a length that breaks it
        cer[25:28] = (len(cer) if breakage == "avp overruns the message" else 5).to_bytes(3, "big")
        client.send(bytes(cer))
        yield wait_for(lambda: client.messages, what="the CEA")
        cea = decode(client.messages[0])  # strict: every AVP a CEA must carry (RFC 6733 §5.3.2)
        assert cea.command_code == 257 and cea.result_code == 5014 and not cea.flags & 0x20
        assert header_of(client.messages[0])[3] == 0x77
        for name in ("Origin-Host", "Origin-Realm", "Host-IP-Address", "Vendor-Id", "Product-Name"):
            assert cea.find(name) is not None, name
        assert cea.find("Failed-AVP") is not None
        yield client.wait_closed()
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_a_cer_above_max_cer_size_is_refused_before_it_is_decoded():
    net = Net()
    try:
        node, _ = _serving_node(net, limits=Limits(max_cer_size=4096))
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        big = new_request(
            "Capabilities-Exchange-Request", hop_by_hop=5, end_to_end=5, origin_host=CLIENT, origin_realm=PARTNER,
            host_ip_address=["127.0.0.1"] * 600, vendor_id=0, product_name="raw", auth_application_id=[CX],
        ).encode()
        assert len(big) > 4096
        client.send(big)
        yield wait_for(lambda: client.messages, what="the CEA")
        cea = decode(client.messages[0])
        assert cea.result_code == 5015  # DIAMETER_INVALID_MESSAGE_LENGTH
        yield client.wait_closed()
        assert CLIENT in node.peers and node.peers[CLIENT].connection is None
    finally:
        yield net.stop()


# -- idle connections (finding 8) -----------------------------------------------------------------


class _Idle(Protocol):
    """Connects and says nothing."""

    def __init__(self) -> None:
        self.closed = defer.Deferred()

    def connectionLost(self, reason: object = None) -> None:  # type: ignore[override]
        self.closed.callback(None)


@pytest_twisted.inlineCallbacks
def test_idle_connections_cannot_lock_a_configured_peer_out():
    net = Net()
    idle = []
    try:
        # idle sockets would wait out the whole CEA timeout: only the budget can drop them
        timers = Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=0.5, cea_timeout=60.0)
        node, _ = _serving_node(net, limits=Limits(max_connections=20, max_awaiting_cer=8), timers=timers)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", net.ports[SERVER_A])
        for _ in range(60):
            idle.append((yield connectProtocol(endpoint, _Idle())))
        yield wait_for(lambda: len(node.connections) <= 8, what="idle sockets dropped")
        peer = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT)  # asserts the CEA is 2001
        peer.send(mar(hop_by_hop=9, end_to_end=9).encode())
        answer = yield peer.next()
        assert answer.result_code == 2001
    finally:
        for protocol in idle:
            protocol.transport.abortConnection()
        yield net.stop()


# -- shutdown (finding 9) ------------------------------------------------------------------------


class _Watching(RawPeer):
    """A raw peer that keeps why its connection ended."""

    def connectionLost(self, reason: object = None) -> None:  # type: ignore[override]
        self.reason = reason
        super().connectionLost(reason)


@pytest_twisted.inlineCallbacks
def test_shutdown_ends_every_connection_with_a_fin_not_a_reset():
    net = Net()
    try:
        node, _ = _serving_node(net)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", net.ports[SERVER_A])
        peer = yield connectProtocol(endpoint, _Watching())
        yield peer.exchange_cer(CLIENT, PARTNER)
        idle = yield connectProtocol(endpoint, _Watching())  # no CER yet: closed too
        yield node.stop()
        yield wait_for(lambda: not peer.connected and not idle.connected, what="both closed")
        for watched in (peer, idle):
            assert watched.reason.check(error.ConnectionDone), watched.reason  # a FIN; a reset is ConnectionLost
    finally:
        yield net.stop()


# -- the net under message handling (defence in depth) ------------------------------------------


@pytest.mark.parametrize("path", ["hot loop", "general path"])
@pytest_twisted.inlineCallbacks
def test_a_failure_while_handling_one_message_costs_that_message_only(path):
    net = Net()
    try:
        proxy, apps = three_nodes(net)
        if path == "general path":  # every read takes the general path
            proxy.relay.stream = lambda connection, peer, data: proxy.receive_general(connection, data)
        yield wait_for(lambda: proxy.peers[SERVER_A].available, what="server open")
        client = yield net.raw_peer(net.ports[proxy.local.origin_host], host=CLIENT)
        other = yield net.raw_peer(net.ports[proxy.local.origin_host], host=CLIENT2)
        broken = 0x0BAD
        target = proxy.relay if path == "hot loop" else proxy.proxy
        name = "decide" if path == "hot loop" else "request"
        original = getattr(target, name)

        def failing(*args):
            data = args[2] if path == "general path" else None
            if (data is not None and header_of(data)[3] == broken) or (data is None and failing.armed):
                failing.armed = False
                raise RuntimeError("broken on purpose")
            return original(*args)

        failing.armed = True
        setattr(target, name, failing)
        # the first request of the read trips the failure (hot loop: its routing decision)
        requests = [mar(hop_by_hop=hop, end_to_end=hop).encode() for hop in (broken, 2, 3)]
        with Errors() as errors:
            client.send(b"".join(requests))
            yield wait_for(lambda: len(client.application_answers()) == 3, what="three answers")
        by_hop = {header_of(answer)[3]: decode(answer) for answer in client.application_answers()}
        assert by_hop[broken].result_code == 5012  # DIAMETER_UNABLE_TO_COMPLY
        assert by_hop[2].result_code == 2001 and by_hop[3].result_code == 2001
        assert [event["log_failure"].value.args for event in errors.events] == [("broken on purpose",)]
        assert client.connected
        assert len(proxy.pending) == 0 and proxy.pending.outstanding(proxy.peers[SERVER_A]) == 0
        other.send(mar(hop_by_hop=4, end_to_end=4, origin_host=CLIENT2).encode())
        answer = yield other.next()
        assert answer.result_code == 2001
        assert apps[SERVER_A].calls == 3
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_new_connections_beyond_max_accept_rate_wait_in_the_backlog():
    net = Net()
    idle = []
    try:
        node, _ = _serving_node(net, limits=Limits(max_accept_rate=5, max_awaiting_cer=2))
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", net.ports[SERVER_A])
        for _ in range(3):
            idle.append((yield connectProtocol(endpoint, _Idle())))
        yield wait_for(lambda: node._resume_accepting is not None, what="accepting paused")
        peer = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT)  # accepted once the bucket refills
        assert peer.connected
    finally:
        for protocol in idle:
            protocol.transport.abortConnection()
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_an_unknown_peers_cer_is_refused_without_being_decoded(monkeypatch):
    import gateway.node

    decoded = []
    real = gateway.node.decode_capabilities
    monkeypatch.setattr(gateway.node, "decode_capabilities", lambda data: decoded.append(data) or real(data))
    net = Net()
    try:
        _serving_node(net)
        stranger = yield net.raw_peer(net.ports[SERVER_A], host=None)
        stranger.send(_cer("stranger.elsewhere.example", realm="elsewhere.example", hop_by_hop=0x42))
        yield wait_for(lambda: stranger.messages, what="the CEA")
        cea = decode(stranger.messages[0])
        assert cea.result_code == 3010 and cea.flags & 0x20 and header_of(stranger.messages[0])[3] == 0x42
        assert "stranger.elsewhere.example" in cea["Error-Message"]
        assert decoded == []
        yield stranger.wait_closed()
        known = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT)
        assert known.connected and len(decoded) == 1
    finally:
        yield net.stop()
