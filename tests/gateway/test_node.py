"""gateway.node over loopback: the capabilities exchange as a responder, protocol errors
(RFC 6733 §7), overload, DPR/DPA, reconnects (Tc) and duplicate detection, driven by
raw TCP peers that send crafted bytes and by other nodes."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.protocol import Factory

from cx_codec import answer_for, decode, new_request
from cx_codec.commands import MultimediaAuthRequest
from gateway.settings import Limits, PeerSettings, Timers
from gateway.testing.diamtest import (  # the loopback harness the multi-node tests share
    CER,
    CLIENT,
    CLIENT2,
    CX,
    DPR,
    PARTNER,
    PRIMARY,
    PROXY,
    SERVER_A,
    SERVER_B,
    Answering,
    Errors,
    Net,
    RawPeer,
    all_open,
    header_of,
    mar,
    route,
    sleep,
    wait_for,
)


class RawServer(RawPeer):
    """A raw peer on the accepting side: answers a CER with a CEA 2001 (or ``cea_result``)."""

    def __init__(self, host=SERVER_A, realm=PRIMARY, cea_result=2001, abort_at_once=False):
        super().__init__()
        self.host, self.realm, self.cea_result, self.abort_at_once = host, realm, cea_result, abort_at_once

    def connectionMade(self):
        super().connectionMade()
        if self.abort_at_once:
            self.transport.abortConnection()

    def dataReceived(self, data):
        before = len(self.messages)
        super().dataReceived(data)
        for message in self.messages[before:]:
            if message[4] & 0x80 and int.from_bytes(message[5:8], "big") == CER:
                cea = answer_for(decode(message), origin_host=self.host, origin_realm=self.realm,
                                 result_code=self.cea_result, host_ip_address=["127.0.0.1"], vendor_id=0,
                                 product_name="raw", auth_application_id=[CX])
                self.send(cea.encode())


class RawServerFactory(Factory):
    def __init__(self, **options):
        self.options = options
        self.accepted = []  # (time, protocol)

    def buildProtocol(self, addr):
        protocol = RawServer(**self.options)
        protocol.factory = self
        self.accepted.append((reactor.seconds(), protocol))
        return protocol


def server_node(net, app=None, **options):
    """The node under test serving Cx locally for realm primary.example; the raw clients
    are its configured peers CLIENT and CLIENT2."""
    app = app or Answering(SERVER_A)
    peers = [PeerSettings(CLIENT, PARTNER, connect=False), PeerSettings(CLIENT2, PARTNER, connect=False)]
    return net.node(SERVER_A, PRIMARY, peers=peers, app=app, **options), app




# -- reading (gateway.transport.connection: the asyncio loop calls doRead directly) ---------------------


@pytest_twisted.inlineCallbacks
def test_a_failure_while_handling_a_read_closes_that_connection_only_and_is_logged():
    net = Net()
    try:
        node, app = server_node(net)
        first = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT)
        second = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT2)
        receive = node.receive

        def failing(connection, data):
            if connection.peer is not None and connection.peer.host == CLIENT:
                raise RuntimeError("broken on purpose")
            receive(connection, data)

        node.receive = failing
        with Errors() as errors:
            first.send(mar(hop_by_hop=1, end_to_end=1).encode())
            yield first.wait_closed()
        assert [event["log_failure"].value.args for event in errors.events] == [("broken on purpose",)]
        second.send(mar(hop_by_hop=2, end_to_end=2).encode())
        answer = yield second.next()
        assert answer.result_code == 2001
    finally:
        yield net.stop()


# -- capabilities exchange as a responder (RFC 6733 §5.3, §5.6.1) ----------------------------


@pytest_twisted.inlineCallbacks
def test_known_peer_gets_2001_and_is_open():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        cea = yield client.exchange_cer(CLIENT.upper(), PARTNER)  # identities compare case-insensitively
        assert cea.result_code == 2001 and not cea.is_error
        assert cea["Origin-Host"] == SERVER_A
        decode(client.messages[0])  # strictly valid
        yield wait_for(lambda: node.peers[CLIENT].available, what="peer open")
        assert node.peers[CLIENT].state == "R-Open"
        assert node.peers[CLIENT].capabilities.product_name == "raw"
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_unknown_peer_gets_3010_and_is_closed():
    net = Net()
    try:
        node, app = server_node(net)
        stranger = yield net.raw_peer(net.ports[SERVER_A], host=None)
        cea = yield stranger.exchange_cer("stranger.elsewhere.example", "elsewhere.example")
        assert cea.result_code == 3010
        assert cea.is_error
        assert "stranger.elsewhere.example" in cea["Error-Message"]
        yield stranger.wait_closed()
        assert "stranger.elsewhere.example" not in node.peers
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_unknown_peer_of_an_accepted_realm_is_adopted():
    net = Net()
    try:
        node, app = server_node(net, accept_realms=["Visited.Example"])
        visitor = yield net.raw_peer(net.ports[SERVER_A], host=None)
        cea = yield visitor.exchange_cer("cscf.visited.example", "visited.example")
        assert cea.result_code == 2001
        peer = node.peers["cscf.visited.example"]
        assert peer.settings.connect is False and peer.realm == "visited.example"
        visitor.send(mar(end_to_end=3, hop_by_hop=4, origin_host="cscf.visited.example").encode())
        answer = yield visitor.next()
        assert answer.result_code == 2001 and app.calls == 1
        # another realm is still refused
        other = yield net.raw_peer(net.ports[SERVER_A], host=None)
        cea = yield other.exchange_cer("cscf.other.example", "other.example")
        assert cea.result_code == 3010
        yield other.wait_closed()
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_no_common_application_gets_5010_and_a_close():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        cea = yield client.exchange_cer(CLIENT, PARTNER, applications=(4,))
        assert cea.result_code == 5010
        assert not cea.is_error
        assert "no common application" in cea["Error-Message"]
        yield client.wait_closed()
        assert node.peers[CLIENT].state == "Closed"
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_inband_tls_only_gets_5017_and_a_close():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        cea = yield client.exchange_cer(CLIENT, PARTNER, inband_security_id=[1])
        assert cea.result_code == 5017
        yield client.wait_closed()
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_cer_without_host_ip_address_is_accepted_quietly():
    # Kamailio (docs/interop.md): tolerated, with a warning only
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        client.host, client.realm = CLIENT, PARTNER
        with Errors() as errors:
            client.send(new_request("Capabilities-Exchange-Request", hop_by_hop=1, end_to_end=1, origin_host=CLIENT,
                                    origin_realm=PARTNER, vendor_id=0, product_name="Kamailio",
                                    auth_application_id=[CX]).encode())
            cea = yield client.next()
        assert cea.result_code == 2001
        assert errors.events == []
        assert node.peers[CLIENT].capabilities.warnings
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_malformed_cer_is_answered_5005_and_closed():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        client.send(new_request("Capabilities-Exchange-Request", hop_by_hop=0x10, end_to_end=0x20, origin_host=CLIENT,
                                host_ip_address=["127.0.0.1"], vendor_id=0, product_name="x",
                                auth_application_id=[CX]).encode())
        answer = yield client.next()
        assert answer.result_code == 5005
        assert (answer.hop_by_hop, answer.end_to_end) == (0x10, 0x20)
        assert answer.find("Failed-AVP") is not None
        yield client.wait_closed()
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_application_message_before_cer_closes():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        client.send(mar(end_to_end=1, hop_by_hop=1).encode())
        yield client.wait_closed()
        assert app.calls == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_no_cer_within_the_timeout_closes():
    net = Net()
    try:
        timers = Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=0.5, cea_timeout=0.3)
        node, app = server_node(net, timers=timers)
        client = yield net.raw_peer(net.ports[SERVER_A], host=None)
        yield client.wait_closed(timeout=5)  # nothing but the CER timer closes a silent connection
        assert not node.connections
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_dwr_is_answered_with_dwa():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A])
        client.send(new_request("Device-Watchdog-Request", hop_by_hop=0x99, end_to_end=0x98, origin_host=CLIENT,
                                origin_realm=PARTNER).encode())
        dwa = yield client.next()
        assert (dwa.command_code, dwa.is_request, dwa.result_code) == (280, False, 2001)
        assert (dwa.hop_by_hop, dwa.end_to_end) == (0x99, 0x98)
        decode(client.messages[-1])
    finally:
        yield net.stop()


# -- protocol errors (RFC 6733 §7) --------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_error_bit_in_a_request_gets_3008_with_the_e_bit():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A])
        data = bytearray(mar(end_to_end=0x41, hop_by_hop=0x42).encode())
        data[4] |= 0x20
        client.send(bytes(data))
        answer = yield client.next()
        assert answer.result_code == 3008
        assert answer.is_error and not answer.is_request
        assert (answer.hop_by_hop, answer.end_to_end) == (0x42, 0x41)
        assert answer["Origin-Host"] == SERVER_A
        assert app.calls == 0
        assert client.connected
        decode(client.messages[-1])
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_avp_overrunning_the_message_gets_5014_with_failed_avp():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A])
        good = mar(end_to_end=0x43, hop_by_hop=0x44).encode()
        # before the routing AVPs, a User-Name whose length (4) is shorter than its own header
        bad_avp = (1).to_bytes(4, "big") + bytes((0x40,)) + (4).to_bytes(3, "big")
        data = good[:1] + (len(good) + len(bad_avp)).to_bytes(3, "big") + good[4:20] + bad_avp + good[20:]
        client.send(data)
        answer = yield client.next()
        assert answer.result_code == 5014
        assert not answer.is_error  # a permanent failure, not a protocol error (§7.1.5)
        assert (answer.hop_by_hop, answer.end_to_end) == (0x44, 0x43)
        failed = answer.find("Failed-AVP")
        assert failed is not None
        assert failed.data.startswith(bad_avp[:8])
        assert app.calls == 0
        assert client.connected  # the framing is intact: the connection stays
        client.send(mar(end_to_end=0x45, hop_by_hop=0x46).encode())
        answer = yield client.next()
        assert answer.result_code == 2001
    finally:
        yield net.stop()


def _broken_header(version=1, length=21, hop_by_hop=0x0A0B0C0D, end_to_end=0x01020304):
    return (bytes((version,)) + length.to_bytes(3, "big") + bytes((0xC0,)) + (303).to_bytes(3, "big")
            + CX.to_bytes(4, "big") + hop_by_hop.to_bytes(4, "big") + end_to_end.to_bytes(4, "big"))


@pytest.mark.parametrize(
    ("version", "length", "result_code"),
    [(1, 21, 5015), (1, 12, 5015), (1, 0x10000 + 4, 5015), (2, 100, 5011)],
)
@pytest_twisted.inlineCallbacks
def test_broken_framing_best_effort_answer_then_close_others_carry_on(version, length, result_code):
    net = Net()
    try:
        node, app = server_node(net)
        victim = yield net.raw_peer(net.ports[SERVER_A])
        bystander = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT2)
        # a good request, then the impossible header, in one write
        victim.send(mar(end_to_end=0x61, hop_by_hop=0x62).encode() + _broken_header(version, length) + b"\0" * 40)
        yield victim.wait_closed()
        answers = [decode(m, validate=False) for m in victim.application_answers()]
        # the message completed before the broken one was still served
        assert [(a.end_to_end, a.result_code) for a in answers] == [(0x61, 2001), (0x01020304, result_code)]
        assert answers[1].hop_by_hop == 0x0A0B0C0D
        assert answers[1]["Origin-Host"] == SERVER_A
        assert app.calls == 1
        yield wait_for(lambda: node.peers[CLIENT].state == "Closed", what="peer closed")
        # the other connection carries on
        bystander.send(mar(end_to_end=0x71, hop_by_hop=0x72, origin_host=CLIENT2).encode())
        answer = yield bystander.next()
        assert answer.result_code == 2001 and answer.end_to_end == 0x71
        assert bystander.connected and node.peers[CLIENT2].available
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_message_above_max_message_size_closes():
    net = Net()
    try:
        node, app = server_node(net, limits=Limits(max_message_size=256))
        client = yield net.raw_peer(net.ports[SERVER_A])
        request = mar(end_to_end=0x81, hop_by_hop=0x82).encode()
        assert len(request) > 256
        client.send(request)
        yield client.wait_closed()
        answer = decode(client.application_answers()[0], validate=False)
        assert answer.result_code == 5015 and answer.end_to_end == 0x81
        assert app.calls == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_broken_framing_in_an_answer_just_closes():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A])
        header = bytearray(_broken_header(length=22))
        header[4] = 0x40  # an answer: nothing to answer
        client.send(bytes(header))
        yield client.wait_closed()
        assert client.application_answers() == []
    finally:
        yield net.stop()


# -- overload (limits.max_pending_per_peer, limits.max_pending) ------------------------------


class _TrackingEntries(dict):
    """The pending table's dict, recording its largest size after every insertion
    (the general path and the relay's hot loop both insert into it)."""

    largest = 0

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        self.largest = max(self.largest, len(self))


def _track_max_pending(node):
    entries = node.pending.entries = _TrackingEntries(node.pending.entries)
    return entries


def _proxy_with_silent_servers(net, hosts, limits):
    for host in hosts:
        net.node(host, PRIMARY, peers=[PeerSettings(PROXY, PARTNER, connect=False)], app=Answering(host, never=True))
    peers = [PeerSettings(host, PRIMARY, "127.0.0.1", net.ports[host]) for host in hosts]
    peers.append(PeerSettings(CLIENT, PARTNER, connect=False))
    timers = Timers(tc=0.3, twinit=6.0, tx=2.0, dpa_timeout=0.3, cea_timeout=2.0)
    return net.node(PROXY, PARTNER, peers=peers, routes=[route(PRIMARY, *hosts)], limits=limits, timers=timers)


@pytest_twisted.inlineCallbacks
def test_per_peer_limit_answers_3004_at_once():
    net = Net()
    try:
        proxy = _proxy_with_silent_servers(net, [SERVER_A], Limits(max_pending_per_peer=5, max_pending=100))
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        seen = _track_max_pending(proxy)
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(300)))
        yield wait_for(lambda: len(client.application_answers()) == 295, what="295 answers 3004")
        answers = [decode(m) for m in client.application_answers()]
        assert {(a.result_code, a.is_error, a["Origin-Host"]) for a in answers} == {(3004, True, PROXY)}
        assert sorted(a.end_to_end for a in answers) == list(range(5, 300))
        assert "max_pending_per_peer = 5" in answers[0]["Error-Message"]
        assert len(proxy.pending) == 5 and seen.largest == 5
        assert proxy.pending.outstanding(proxy.peers[SERVER_A]) == 5
        assert proxy.counters.overload == {"peer": 295}
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_global_limit_answers_3004_and_memory_stays_bounded_under_a_flood():
    net = Net()
    try:
        proxy = _proxy_with_silent_servers(net, [SERVER_A, SERVER_B], Limits(max_pending_per_peer=50, max_pending=8))
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        seen = _track_max_pending(proxy)
        client = yield net.raw_peer(net.ports[PROXY])
        batch = b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(250))
        for _ in range(8):  # 2000 requests in several writes
            client.send(batch)
            yield sleep(0.01)
        yield wait_for(lambda: len(client.application_answers()) == 2000 - 8, timeout=5, what="1992 answers")
        answers = [decode(m) for m in client.application_answers()]
        assert {a.result_code for a in answers} == {3004}
        assert "limits.max_pending reached" in answers[0]["Error-Message"]
        assert seen.largest == 8 and len(proxy.pending) == 8
        assert proxy.pending.outstanding(proxy.peers[SERVER_A]) == proxy.pending.outstanding(proxy.peers[SERVER_B]) == 4
        assert proxy.counters.overload == {"node": 1992}
        # after Tx the pending ones get 3002; then new requests are taken again
        yield wait_for(lambda: len(client.application_answers()) == 2000, timeout=4, what="the 3002s")
        assert [decode(m).result_code for m in client.application_answers()[-8:]] == [3002] * 8
        assert len(proxy.pending) == 0
        client.send(mar(end_to_end=9999, hop_by_hop=9999).encode())
        yield wait_for(lambda: len(proxy.pending) == 1, what="a new request pending")
    finally:
        yield net.stop()


# -- DPR/DPA, closes without DPR, reconnects ----------------------------------------------


@pytest.mark.parametrize("cause", [0, 2])
@pytest_twisted.inlineCallbacks
def test_shutdown_sends_dpr_with_the_cause(cause):
    net = Net()
    try:
        node, app = server_node(net, timers=Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=3.0, cea_timeout=2.0))
        client = yield net.raw_peer(net.ports[SERVER_A])
        yield node.stop(cause)
        dprs = [decode(m) for m in client.messages if header_of(m)[1] == DPR]
        assert len(dprs) == 1
        assert dprs[0].is_request and dprs[0]["Disconnect-Cause"] == cause
        assert dprs[0]["Origin-Host"] == SERVER_A
        yield client.wait_closed()
        assert node.peers[CLIENT].state == "Closed"
    finally:
        yield net.stop()


@pytest.mark.parametrize("failing", ["a peer's DPR", "the last step"])
@pytest_twisted.inlineCallbacks
def test_a_failure_while_stopping_is_logged_and_the_stop_still_ends(failing):
    """A stop that raised half-way used to leave its Deferred unfired, with no timer left
    to fire it: the process never exited. Now each step's failure is logged and the rest
    of the stop goes on (the other peers still get their DPR)."""
    net = Net()
    try:
        node, app = server_node(net, timers=Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=1.0, cea_timeout=2.0))
        yield net.raw_peer(net.ports[SERVER_A], CLIENT)
        other = yield net.raw_peer(net.ports[SERVER_A], CLIENT2)

        def broken(*args):
            raise RuntimeError(f"{failing} broke")

        if failing == "a peer's DPR":
            node.peers[CLIENT].stop = broken
        else:
            node.pending.stop = broken
        with Errors() as errors:
            stopping = node.stop(0)
            yield wait_for(lambda: stopping.called, timeout=5, what="the stop to end")
        assert [str(e["log_failure"].value) for e in errors.events] == [f"{failing} broke"]
        assert any(header_of(m)[1] == DPR for m in other.messages)
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_shutdown_waits_for_the_dpa():
    net = Net()
    try:
        # dpa_timeout far beyond the waits below: only the DPA can end the stop in time
        node, app = server_node(net, timers=Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=60.0, cea_timeout=2.0))
        client = yield net.raw_peer(net.ports[SERVER_A])
        client.answer_dpr = False
        stopping = node.stop(2)
        yield wait_for(lambda: any(header_of(m)[1] == DPR for m in client.messages), what="the DPR")
        dpr = decode(next(m for m in client.messages if header_of(m)[1] == DPR))
        yield sleep(0.2)  # a slow peer: the node must still be waiting for its DPA
        assert client.connected
        assert not stopping.called
        client.send(answer_for(dpr, origin_host=CLIENT, origin_realm=PARTNER, result_code=2001).encode())
        yield wait_for(lambda: stopping.called, timeout=5, what="the DPA to end the stop")
        yield client.wait_closed()
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_shutdown_without_dpa_ends_after_dpa_timeout():
    net = Net()
    try:
        node, app = server_node(net, timers=Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=1.5, cea_timeout=2.0))
        client = yield net.raw_peer(net.ports[SERVER_A])
        client.answer_dpr = False
        stopping = node.stop()
        yield wait_for(lambda: any(header_of(m)[1] == DPR for m in client.messages), what="the DPR")
        assert not stopping.called  # no DPA: the node keeps waiting ...
        yield wait_for(lambda: stopping.called, timeout=10, what="dpa_timeout to end the stop")  # ... until it gives up
        yield client.wait_closed()
    finally:
        yield net.stop()


@pytest.mark.parametrize(("cause", "hold_min"), [(0, 0.0), (2, 1.0)])
@pytest_twisted.inlineCallbacks
def test_peer_dpr_cause_decides_when_we_reconnect(cause, hold_min):
    net = Net()
    try:
        factory = RawServerFactory()
        port = net.listen(factory)
        timers = Timers(tc=0.2, twinit=6.0, tx=1.5, dpa_timeout=0.5, cea_timeout=2.0, do_not_want_to_talk_hold=1.0)
        node = net.node(CLIENT, PARTNER, peers=[PeerSettings(SERVER_A, PRIMARY, "127.0.0.1", port)], timers=timers,
                        listen=False)
        yield wait_for(all_open(node, SERVER_A), what="open")
        server = factory.accepted[0][1]
        server.send(new_request("Disconnect-Peer-Request", hop_by_hop=0x33, end_to_end=0x34, origin_host=SERVER_A,
                                origin_realm=PRIMARY, disconnect_cause=cause).encode())
        sent = reactor.seconds()
        dpa = yield server.next()
        assert (dpa.command_code, dpa.is_request, dpa.result_code, dpa.hop_by_hop) == (282, False, 2001, 0x33)
        assert dpa["Origin-Host"] == CLIENT
        server.transport.loseConnection()  # the DPR sender closes after the DPA (RFC 6733 §5.4)
        yield wait_for(lambda: node.peers[SERVER_A].state == "Closed", what="peer closed")
        yield wait_for(lambda: len(factory.accepted) == 2, timeout=3, what="the reconnect")
        delay = factory.accepted[1][0] - sent
        # DO_NOT_WANT_TO_TALK_TO_YOU: not before do_not_want_to_talk_hold (1 s); REBOOTING: at Tc (0.2 s)
        assert hold_min - 0.05 <= delay < hold_min + 0.5
        yield wait_for(lambda: node.peers[SERVER_A].machine.is_open, what="open again")
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_peer_closing_without_dpr_is_handled_quietly():
    # Kamailio closes without DPR (docs/interop.md)
    net = Net()
    try:
        node, app = server_node(net)
        with Errors() as errors:
            client = yield net.raw_peer(net.ports[SERVER_A])
            other = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT2)
            client.transport.loseConnection()
            yield wait_for(lambda: node.peers[CLIENT].state == "Closed", what="peer closed")
            # it may come back at once
            again = yield net.raw_peer(net.ports[SERVER_A])
            again.send(mar(end_to_end=1, hop_by_hop=1).encode())
            answer = yield again.next()
            other.send(mar(end_to_end=2, hop_by_hop=2, origin_host=CLIENT2).encode())
            answer2 = yield other.next()
        assert answer.result_code == answer2.result_code == 2001
        assert errors.events == []
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_initiated_connection_reconnects_with_tc_backoff():
    net = Net()
    try:
        factory = RawServerFactory(abort_at_once=True)
        port = net.listen(factory)
        # reconnect_initial = min(1, tc) = 1.0 s, doubling up to Tc = 1.6 s
        timers = Timers(tc=1.6, twinit=6.0, tx=1.5, dpa_timeout=0.5, cea_timeout=2.0)
        net.node(CLIENT, PARTNER, peers=[PeerSettings(SERVER_A, PRIMARY, "127.0.0.1", port)], timers=timers,
                 listen=False)
        yield wait_for(lambda: len(factory.accepted) == 3, timeout=5, what="three connection attempts")
        times = [when for when, _ in factory.accepted]
        first_gap, second_gap = times[1] - times[0], times[2] - times[1]
        assert 0.9 < first_gap < 1.3
        assert 1.5 < second_gap < 1.9
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_refused_connect_is_retried_and_the_peer_opens_when_it_listens():
    net = Net()
    try:
        factory = RawServerFactory()
        # a port nobody listens on yet
        probe = reactor.listenTCP(0, factory, interface="127.0.0.1")
        number = probe.getHost().port
        yield probe.stopListening()
        timers = Timers(tc=0.2, twinit=6.0, tx=1.5, dpa_timeout=0.5, cea_timeout=2.0)
        node = net.node(CLIENT, PARTNER, peers=[PeerSettings(SERVER_A, PRIMARY, "127.0.0.1", number)],
                        timers=timers, listen=False)
        attempts = []
        connect_to = node.connect_to
        node.connect_to = lambda peer: (attempts.append(reactor.seconds()), connect_to(peer))
        yield wait_for(lambda: len(attempts) >= 3, timeout=3, what="retries")
        assert not node.peers[SERVER_A].machine.is_open
        net.listeners.append(reactor.listenTCP(number, factory, interface="127.0.0.1"))
        yield wait_for(lambda: node.peers[SERVER_A].available, timeout=3, what="open after the peer listens")
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_requests_during_shutdown_get_3004():
    net = Net()
    try:
        proxy = _proxy_with_silent_servers(net, [SERVER_A], Limits())
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(mar(end_to_end=1, hop_by_hop=1).encode())
        yield wait_for(lambda: len(proxy.pending) == 1, what="pending")
        stopped = proxy.stop()  # drains pending up to Tx before the DPRs
        client.send(mar(end_to_end=2, hop_by_hop=2).encode())
        answer = yield client.next()
        assert answer.result_code == 3004 and answer.end_to_end == 2
        assert "shutting down" in answer["Error-Message"]
        yield stopped
        ends = {decode(m).end_to_end: decode(m).result_code for m in client.application_answers()}
        assert ends == {1: 3002, 2: 3004}
    finally:
        yield net.stop()


# -- duplicate detection (RFC 6733 §5.5.4, §6.1.3) -----------------------------------------


def _with_t_flag(data, hop_by_hop):
    return data[:4] + bytes((data[4] | 0x10,)) + data[5:12] + hop_by_hop.to_bytes(4, "big") + data[16:]


@pytest_twisted.inlineCallbacks
def test_retransmission_gets_the_cached_answer_and_the_app_is_called_once():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A])
        request = mar(end_to_end=0xE2E, hop_by_hop=0x100).encode()
        client.send(request)
        first = yield client.next()
        client.send(_with_t_flag(request, 0x200))
        second = yield client.next()
        assert app.calls == 1
        assert (second.hop_by_hop, second.end_to_end) == (0x200, 0xE2E)
        assert client.messages[-1][16:] == client.messages[-2][16:]
        assert second.result_code == first.result_code == 2001
        # another End-to-End id, or the same one from another Origin-Host, is a new request
        client.send(mar(end_to_end=0xE2F, hop_by_hop=0x300).encode())
        yield client.next()
        other = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT2)
        other.send(mar(end_to_end=0xE2E, hop_by_hop=0x400, origin_host=CLIENT2).encode())
        yield other.next()
        assert app.calls == 3
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_retransmission_arriving_through_another_peer_gets_the_cached_answer():
    net = Net()
    try:
        node, app = server_node(net)
        first = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT)
        second = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT2)
        request = mar(end_to_end=0xABC, hop_by_hop=0x1).encode()
        first.send(request)
        yield first.next()
        second.send(_with_t_flag(request, 0x2))
        answer = yield second.next()
        assert answer.result_code == 2001 and (answer.hop_by_hop, answer.end_to_end) == (0x2, 0xABC)
        assert app.calls == 1
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_retransmission_while_the_first_is_still_being_served_calls_the_app_once():
    net = Net()
    try:
        node, app = server_node(net, app=Answering(SERVER_A, delay=0.3))
        first = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT)
        second = yield net.raw_peer(net.ports[SERVER_A], host=CLIENT2)
        request = mar(end_to_end=0xABD, hop_by_hop=0x1).encode()
        first.send(request)
        yield wait_for(lambda: app.calls == 1, what="the first at the app")
        second.send(_with_t_flag(request, 0x2))  # failed over to us through another peer
        yield wait_for(lambda: first.application_answers() and second.application_answers(), what="both answers")
        assert header_of(first.application_answers()[0])[3:] == (0x1, 0xABD)
        assert header_of(second.application_answers()[0])[3:] == (0x2, 0xABD)
        assert app.calls == 1
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_node_originated_requests_beyond_the_limit_get_3004_at_once():
    net = Net()
    try:
        silent = Answering(SERVER_A, never=True)
        net.node(SERVER_A, PRIMARY, peers=[PeerSettings(CLIENT, PARTNER, connect=False)], app=silent)
        client = net.node(CLIENT, PARTNER, peers=[PeerSettings(SERVER_A, PRIMARY, "127.0.0.1", net.ports[SERVER_A])],
                          routes=[route(PRIMARY, SERVER_A)], limits=Limits(max_pending_per_peer=3), listen=False)
        yield wait_for(all_open(client, SERVER_A), what="open")
        results = [client.send_request(mar(end_to_end=i, hop_by_hop=0x70 + i)) for i in range(5)]
        assert [result.called for result in results] == [False, False, False, True, True]
        for i in (3, 4):
            message = decode(results[i].result)
            assert (message.result_code, message.is_error, message["Origin-Host"]) == (3004, True, CLIENT)
            assert (message.hop_by_hop, message.end_to_end) == (0x70 + i, i)
        assert len(client.pending) == 3
        # no route at all: 3002 at once
        nowhere = yield client.send_request(mar(end_to_end=9, hop_by_hop=9, realm="nowhere.example"))
        assert decode(nowhere).result_code == 3002
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_connections_beyond_max_connections_are_refused():
    net = Net()
    try:
        node, app = server_node(net, limits=Limits(max_connections=1))
        first = yield net.raw_peer(net.ports[SERVER_A])
        second = yield net.raw_peer(net.ports[SERVER_A], host=None)
        yield second.wait_closed()
        assert second.messages == []
        assert first.connected and len(node.connections) == 1
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_malformed_avp_after_the_routing_avps_without_origin_host_is_answered():
    net = Net()
    try:
        node, app = server_node(net)
        client = yield net.raw_peer(net.ports[SERVER_A])
        good = MultimediaAuthRequest(
            hop_by_hop=0x44, end_to_end=0x43, session_id="s;1;2", destination_realm=PRIMARY, user_name="u",
            public_identity="sip:u", sip_auth_data_item={"sip_authentication_scheme": "x"},
            sip_number_auth_items=1, server_name="sip:s").encode()
        bad_avp = (1).to_bytes(4, "big") + bytes((0x40,)) + (4).to_bytes(3, "big")  # length below its header
        data = good[:1] + (len(good) + len(bad_avp)).to_bytes(3, "big") + good[4:] + bad_avp
        with Errors() as errors:
            client.send(data)
            yield wait_for(lambda: client.application_answers() or not client.connected, what="an answer")
            yield sleep(0.05)
        assert client.connected
        assert errors.events == []
        answer = decode(client.application_answers()[0], validate=False)
        assert answer.end_to_end == 0x43
        assert answer.result_code in (5005, 5014)
        assert app.calls == 0
    finally:
        yield net.stop()
