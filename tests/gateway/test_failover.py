"""Failover over loopback (RFC 6733 §5.5.4): requests pending on a peer that goes down are
re-sent to an alternate with the T flag; with none left, or when Tx runs out, the node
answers 3002 itself. Every request gets exactly one answer."""

from __future__ import annotations

from collections import Counter

import pytest_twisted
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import LogLevel, globalLogPublisher

from cx_codec import answer_for, decode, new_request
from cx_codec.commands import MultimediaAuthRequest, new_session_id
from gateway.capabilities import Application, LocalIdentity
from gateway.framing import Framer, FramingError
from gateway.node import DiameterNode, Limits, PeerSettings, Timers
from gateway.routing import Route, RouteAction, RouteTarget

# -- loopback harness: the same in each multi-node test file (tests cannot import each other)

CX = 16777216
VENDOR_3GPP = 10415
APPS = (Application(CX, VENDOR_3GPP),)
PARTNER, PRIMARY = "partner.example", "primary.example"
CLIENT, CLIENT2 = "scscf.partner.example", "icscf.partner.example"
PROXY = "dra.partner.example"
SERVER_A, SERVER_B = "hss-a.primary.example", "hss-b.primary.example"
FAST = Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=0.5, cea_timeout=2.0)
CER, DWR, DPR = 257, 280, 282


class Answering:
    """A Cx server application: answers 2001 (or ``result_code``), after ``delay`` s,
    or never; keeps the request bytes it was given and the answers it gave."""

    def __init__(self, host, realm=PRIMARY, delay=0.0, result_code=2001, never=False):
        self.host, self.realm, self.delay, self.result_code, self.never = host, realm, delay, result_code, never
        self.requests = []
        self.answers = []
        self.waiting = []

    @property
    def calls(self):
        return len(self.requests)

    def handle_request(self, request, peer):
        self.requests.append(request)
        if self.never:
            waiting = defer.Deferred()
            self.waiting.append(waiting)
            return waiting
        answer = answer_for(decode(request), origin_host=self.host, origin_realm=self.realm,
                            result_code=self.result_code).encode()
        self.answers.append(answer)
        if self.delay:
            return task.deferLater(reactor, self.delay, lambda: answer)
        return answer


def mar(end_to_end=0, hop_by_hop=0, realm=PRIMARY, origin_host=CLIENT, user="mig-0001", **fields):
    return MultimediaAuthRequest(
        hop_by_hop=hop_by_hop, end_to_end=end_to_end,
        session_id=new_session_id(origin_host), origin_host=origin_host, origin_realm=PARTNER,
        destination_realm=realm, user_name=f"{user}@{PARTNER}", public_identity=f"sip:{user}@{PARTNER}",
        sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"}, sip_number_auth_items=1,
        server_name="sip:scscf.partner.example:6060", **fields,
    )


def header_of(data):
    """(flags, command code, application id, hop-by-hop, end-to-end) of encoded bytes."""
    return (data[4], int.from_bytes(data[5:8], "big"), int.from_bytes(data[8:12], "big"),
            int.from_bytes(data[12:16], "big"), int.from_bytes(data[16:20], "big"))


def sleep(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def wait_for(predicate, timeout=5.0, what="condition"):
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        yield sleep(0.01)


def route(realm, *targets, app=CX):
    """Targets: host names, or (host, priority, weight)."""
    return Route(realm, app, RouteAction.PROXY,
                 [RouteTarget(t) if isinstance(t, str) else RouteTarget(*t) for t in targets])


class RawPeer(Protocol):
    """A hand-driven Diameter peer over TCP: sends crafted bytes, keeps every message it
    receives (framed), answers DWR and DPR so that nodes see a well-behaved peer."""

    def __init__(self, answer_dpr=True):
        self.framer = Framer(1 << 24)
        self.messages = []
        self.connected = False
        self.answer_dpr = answer_dpr
        self.lost = defer.Deferred()

    def connectionMade(self):
        self.connected = True

    def dataReceived(self, data):
        try:
            messages = self.framer.feed(data)
        except FramingError:
            self.transport.abortConnection()
            return
        for message in messages:
            self.messages.append(message)
            flags, code = message[4], int.from_bytes(message[5:8], "big")
            if flags & 0x80 and (code == DWR or (code == DPR and self.answer_dpr)):
                request = decode(message)
                self.send(answer_for(request, origin_host=self.host, origin_realm=self.realm,
                                     result_code=2001).encode())

    def connectionLost(self, reason=None):
        self.connected = False
        self.lost.callback(None)

    def send(self, data):
        self.transport.write(data)

    def application_answers(self):
        return [m for m in self.messages if not m[4] & 0x80 and int.from_bytes(m[5:8], "big") not in (CER, DWR, DPR)]

    @defer.inlineCallbacks
    def next(self, timeout=3.0):
        """The next message received, decoded without validation."""
        count = len(self.messages)
        yield wait_for(lambda: len(self.messages) > count or not self.connected, timeout, "a message")
        if len(self.messages) == count:
            raise AssertionError("connection closed instead of a message")
        return decode(self.messages[count], validate=False)

    @defer.inlineCallbacks
    def wait_closed(self, timeout=3.0):
        yield wait_for(lambda: not self.connected, timeout, "the node to close the connection")

    @defer.inlineCallbacks
    def exchange_cer(self, host, realm, applications=(CX,), **fields):
        self.host, self.realm = host, realm
        fields.setdefault("auth_application_id", list(applications))
        cer = new_request("Capabilities-Exchange-Request", hop_by_hop=1, end_to_end=1, origin_host=host,
                          origin_realm=realm, host_ip_address=["127.0.0.1"], vendor_id=0, product_name="raw",
                          **fields)
        self.send(cer.encode())
        cea = yield self.next()
        return cea


class Net:
    """The nodes, listeners and raw peers of one test; ``stop()`` stops them all."""

    def __init__(self):
        self.nodes = []
        self.ports = {}
        self.raw = []
        self.listeners = []

    def node(self, host, realm, peers=(), routes=(), timers=FAST, limits=None, accept_realms=(),
             listen=True, app=None):
        node = DiameterNode(LocalIdentity(host, realm, applications=APPS), reactor=reactor, peers=peers,
                            routes=routes, timers=timers, limits=limits or Limits(), accept_realms=accept_realms)
        if app is not None:
            node.applications[CX] = app
        if listen:
            self.ports[host] = node.listen(0).getHost().port
        self.nodes.append(node)
        node.start()
        return node

    @defer.inlineCallbacks
    def raw_peer(self, port, host=CLIENT, realm=PARTNER, **cer_fields):
        """A raw peer connected to ``port``; with ``host``, after a successful CER/CEA."""
        peer = yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawPeer())
        self.raw.append(peer)
        if host is not None:
            cea = yield peer.exchange_cer(host, realm, **cer_fields)
            assert cea.result_code == 2001, cea
        return peer

    def listen(self, factory):
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.listeners.append(port)
        return port.getHost().port

    @defer.inlineCallbacks
    def stop(self):
        for raw in self.raw:
            if raw.connected:
                raw.transport.abortConnection()
        yield defer.DeferredList([node.stop() for node in self.nodes if not node.stopping])
        yield defer.DeferredList([defer.maybeDeferred(port.stopListening) for port in self.listeners])
        yield sleep(0.02)  # let the aborted connections' connectionLost run
        for node in self.nodes:
            assert not node.connections, f"{node.local.origin_host} still has {node.connections}"


def three_nodes(net, proxy_timers=FAST, limits=None, servers=((SERVER_A, None),), routes=None,
                proxy_app=None, accept_realms=()):
    """Servers (each with an ``Answering`` app unless one is given) and a proxy that
    connects to them; the client connects later as a raw peer or a node."""
    apps = {}
    for host, app in servers:
        apps[host] = app or Answering(host)
        net.node(host, PRIMARY, peers=[PeerSettings(PROXY, PARTNER, connect=False)], app=apps[host])
    peers = [PeerSettings(host, PRIMARY, "127.0.0.1", net.ports[host]) for host, _ in servers]
    peers += [PeerSettings(CLIENT, PARTNER, connect=False), PeerSettings(CLIENT2, PARTNER, connect=False)]
    if routes is None:
        routes = [route(PRIMARY, *[host for host, _ in servers])]
    proxy = net.node(PROXY, PARTNER, peers=peers, routes=routes, timers=proxy_timers, limits=limits,
                     app=proxy_app, accept_realms=accept_realms)
    return proxy, apps


def all_open(node, *hosts):
    return lambda: all(node.peers[host].available for host in hosts)


FLAG_T = 0x10


class Errors:
    """Collects log events of level error or above (a double answer would log one)."""

    def __init__(self):
        self.events = []

    def __call__(self, event):
        if event.get("log_level") is not None and event["log_level"] >= LogLevel.error:
            self.events.append(event)

    def __enter__(self):
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self)


def kill(node):
    """Drop every connection of ``node`` at once, no DPR (a crash, a cable pulled)."""
    for connection in list(node.connections):
        connection.transport.abortConnection()


def by_end_to_end(raw):
    """End-to-End id -> list of (Result-Code, Origin-Host, E bit) of the answers received."""
    answers = {}
    for data in raw.application_answers():
        message = decode(data, validate=False)
        answers.setdefault(message.end_to_end, []).append(
            (message.result_code, message["Origin-Host"], message.is_error)
        )
    return answers


def slow_servers(net, delay, hosts=(SERVER_A, SERVER_B)):
    nodes, apps = {}, {}
    for host in hosts:
        apps[host] = Answering(host, delay=delay)
        nodes[host] = net.node(host, PRIMARY, peers=[PeerSettings(PROXY, PARTNER, connect=False),
                                                     PeerSettings(CLIENT, PARTNER, connect=False)], app=apps[host])
    return nodes, apps


def failover_proxy(net, hosts, tx=3.0, limits=None):
    timers = Timers(tc=0.3, twinit=6.0, tx=tx, dpa_timeout=0.3, cea_timeout=2.0)
    peers = [PeerSettings(host, PRIMARY, "127.0.0.1", net.ports[host]) for host in hosts]
    peers.append(PeerSettings(CLIENT, PARTNER, connect=False))
    return net.node(PROXY, PARTNER, peers=peers, routes=[route(PRIMARY, *hosts)], timers=timers, limits=limits)


def end_to_ends(requests, t_flag=None):
    return {header_of(r)[4] for r in requests if t_flag is None or bool(r[4] & FLAG_T) is t_flag}


# -- failover to an alternate -----------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_pending_requests_fail_over_to_the_alternate_with_the_t_flag():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.4)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B])
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        with Errors() as errors:
            client.send(b"".join(mar(end_to_end=i, hop_by_hop=0x1000 + i).encode() for i in range(200)))
            yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 200, what="200 requests at the servers")
            assert apps[SERVER_A].calls == apps[SERVER_B].calls == 100
            assert len(proxy.pending) == 200
            kill(nodes[SERVER_A])
            yield wait_for(lambda: len(client.application_answers()) >= 200, timeout=5, what="200 answers")
            yield sleep(0.6)  # anything more would be a second answer
        answers = by_end_to_end(client)
        assert sorted(answers) == list(range(200))
        assert Counter(len(got) for got in answers.values()) == {1: 200}
        assert {got[0][0] for got in answers.values()} == {2001}
        # what was pending on A was answered by B, having been re-sent with the T flag
        sent_to_a = end_to_ends(apps[SERVER_A].requests)
        assert len(sent_to_a) == 100
        assert {answers[e2e][0][1] for e2e in sent_to_a} == {SERVER_B}
        assert end_to_ends(apps[SERVER_B].requests, t_flag=True) == sent_to_a
        assert end_to_ends(apps[SERVER_B].requests, t_flag=False) == set(range(200)) - sent_to_a
        assert apps[SERVER_B].calls == 200
        # the client sees its own hop-by-hop ids, and no T flag it did not send
        for data in client.application_answers():
            assert header_of(data)[3] == 0x1000 + header_of(data)[4]
        assert len(proxy.pending) == 0
        assert proxy.counters.late_answers == 0
        assert errors.events == []
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_one_of_two_upstreams_killed_mid_load_no_request_lost_or_answered_twice():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.1)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B])
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        total = 600
        with Errors() as errors:
            for start in range(0, total, 20):
                client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(start, start + 20)))
                if start == 200:
                    kill(nodes[SERVER_A])
                yield sleep(0.005)
            yield wait_for(lambda: len(client.application_answers()) >= total, timeout=8, what=f"{total} answers")
            yield sleep(0.4)
        answers = by_end_to_end(client)
        assert sorted(answers) == list(range(total))
        assert Counter(len(got) for got in answers.values()) == {1: total}
        results = Counter(got[0][0] for got in answers.values())
        assert set(results) <= {2001, 3002}
        assert results[2001] >= total - 20  # at most a handful raced the close
        # every request sent to A and not answered by A was answered by B after a T-flagged re-send
        answered_by_a = {e2e for e2e, got in answers.items() if got[0][1] == SERVER_A}
        moved = end_to_ends(apps[SERVER_A].requests) - answered_by_a
        assert moved, "the kill came too late to leave anything pending on A"
        assert moved <= end_to_ends(apps[SERVER_B].requests, t_flag=True) | {
            e2e for e2e, got in answers.items() if got[0][0] == 3002
        }
        # after the kill A is not used again: it reconnects but must prove itself (RFC 3539 REOPEN)
        assert not proxy.peers[SERVER_A].available
        assert len(proxy.pending) == 0
        assert errors.events == []
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_no_alternate_left_gives_3002_at_once():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=1.0, hosts=(SERVER_A,))
        proxy = failover_proxy(net, [SERVER_A], tx=3.0)
        yield wait_for(all_open(proxy, SERVER_A), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(50)))
        yield wait_for(lambda: apps[SERVER_A].calls == 50, what="50 requests at the server")
        killed = reactor.seconds()
        kill(nodes[SERVER_A])
        yield wait_for(lambda: len(client.application_answers()) == 50, what="50 answers")
        assert reactor.seconds() - killed < 1.0  # not after Tx (3 s)
        answers = by_end_to_end(client)
        assert sorted(answers) == list(range(50))
        assert {tuple(got) for got in answers.values()} == {((3002, PROXY, True),)}
        message = decode(client.application_answers()[0])
        assert "went down" in message["Error-Message"]
        assert len(proxy.pending) == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_alternate_at_its_limit_gives_3002_for_what_it_cannot_take():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.5)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B], limits=Limits(max_pending_per_peer=15, max_pending=1000))
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(20)))
        yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 20, what="20 at the servers")
        kill(nodes[SERVER_A])  # 10 pending on A, 10 on B; B takes 5 more
        yield wait_for(lambda: len(client.application_answers()) == 20, what="20 answers")
        results = Counter(got[0][0] for got in by_end_to_end(client).values())
        assert results == {2001: 15, 3002: 5}
        assert len(end_to_ends(apps[SERVER_B].requests, t_flag=True)) == 5
    finally:
        yield net.stop()


# -- Tx ------------------------------------------------------------------------------------------


@pytest_twisted.inlineCallbacks
def test_request_that_times_out_gets_3002_after_tx():
    net = Net()
    try:
        silent = Answering(SERVER_A, never=True)
        net.node(SERVER_A, PRIMARY, peers=[PeerSettings(CLIENT, PARTNER, connect=False)], app=silent)
        timers = Timers(tc=0.3, twinit=6.0, tx=0.6, dpa_timeout=0.3, cea_timeout=2.0)
        client = net.node(CLIENT, PARTNER, peers=[PeerSettings(SERVER_A, PRIMARY, "127.0.0.1", net.ports[SERVER_A])],
                          routes=[route(PRIMARY, SERVER_A)], timers=timers, listen=False)
        yield wait_for(all_open(client, SERVER_A), what="open")
        started = reactor.seconds()
        answers = yield defer.gatherResults([client.send_request(mar(end_to_end=i, hop_by_hop=0x40 + i)) for i in range(5)])
        assert 0.55 < reactor.seconds() - started < 1.2
        assert silent.calls == 5
        for i, data in enumerate(answers):
            message = decode(data)
            assert (message.result_code, message.is_error, message["Origin-Host"]) == (3002, True, CLIENT)
            assert (message.hop_by_hop, message.end_to_end) == (0x40 + i, i)
            assert "within Tx" in message["Error-Message"]
        assert len(client.pending) == 0
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_node_originated_requests_fail_over_and_each_deferred_fires_once():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.3)
        timers = Timers(tc=0.3, twinit=6.0, tx=3.0, dpa_timeout=0.3, cea_timeout=2.0)
        client = net.node(
            CLIENT, PARTNER, listen=False, timers=timers, routes=[route(PRIMARY, SERVER_A, SERVER_B)],
            peers=[PeerSettings(host, PRIMARY, "127.0.0.1", net.ports[host]) for host in (SERVER_A, SERVER_B)],
        )
        yield wait_for(all_open(client, SERVER_A, SERVER_B), what="open")
        with Errors() as errors:
            results = [client.send_request(mar(end_to_end=i, hop_by_hop=i)) for i in range(100)]
            yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 100, what="100 at the servers")
            kill(nodes[SERVER_A])
            answers = yield defer.gatherResults(results)
            yield sleep(0.4)
        messages = [decode(a) for a in answers]
        assert [m.end_to_end for m in messages] == list(range(100))
        assert {m.result_code for m in messages} == {2001}
        assert {m["Origin-Host"] for m in messages} == {SERVER_B}
        assert end_to_ends(apps[SERVER_B].requests, t_flag=True) == end_to_ends(apps[SERVER_A].requests)
        assert errors.events == []
    finally:
        yield net.stop()


@pytest_twisted.inlineCallbacks
def test_failover_with_the_pending_table_full_still_moves_requests():
    net = Net()
    try:
        nodes, apps = slow_servers(net, delay=0.5)
        proxy = failover_proxy(net, [SERVER_A, SERVER_B], limits=Limits(max_pending_per_peer=100, max_pending=20))
        yield wait_for(all_open(proxy, SERVER_A, SERVER_B), what="open")
        client = yield net.raw_peer(net.ports[PROXY])
        client.send(b"".join(mar(end_to_end=i, hop_by_hop=i).encode() for i in range(20)))
        yield wait_for(lambda: apps[SERVER_A].calls + apps[SERVER_B].calls == 20, what="20 at the servers")
        assert len(proxy.pending) == 20
        kill(nodes[SERVER_A])  # moving 10 requests from A to B adds nothing to the table
        yield wait_for(lambda: len(client.application_answers()) == 20, what="20 answers")
        results = Counter(got[0][0] for got in by_end_to_end(client).values())
        assert results == {2001: 20}
        assert len(end_to_ends(apps[SERVER_B].requests, t_flag=True)) == 10
    finally:
        yield net.stop()
