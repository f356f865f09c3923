"""A loopback test network of Diameter nodes (like go-diameter's diamtest, Go's httptest).

``Net`` starts DiameterNodes and raw TCP peers on 127.0.0.1 with ports the OS picks and
stops them all; ``RawPeer`` speaks bytes, for crafted and malformed messages; ``Answering``
is a local application that answers after an optional delay. Used by the gateway's
multi-node tests; also handy to try a configuration by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Protocol
from twisted.logger import LogLevel, globalLogPublisher

from cx_codec import Message, answer_for, decode, new_request
from cx_codec.commands import MultimediaAuthRequest, new_session_id
from gateway.node import DiameterNode
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.routing.table import Route, RouteAction, RouteTarget
from gateway.settings import Limits, PeerSettings, Timers
from gateway.transport.framing import Framer, FramingError

CX = 16777216
VENDOR_3GPP = 10415
APPS = (Application(CX, VENDOR_3GPP),)
PARTNER, PRIMARY = "partner.example", "primary.example"
CLIENT, CLIENT2 = "scscf.partner.example", "icscf.partner.example"
PROXY = "dra.partner.example"
SERVER_A, SERVER_B = "hss-a.primary.example", "hss-b.primary.example"
FAST = Timers(tc=0.3, twinit=6.0, tx=1.5, dpa_timeout=0.5, cea_timeout=2.0)
# the longest a test node may take to stop (Tx, DPA and close timers of the slowest test, and
# room): beyond it Net.stop fails naming the node rather than hanging the run
STOP_BOUND = 60.0
CER, DWR, DPR = 257, 280, 282


class Answering:
    """A Cx server application: answers 2001 (or ``result_code``), after ``delay`` s,
    or never; keeps the request bytes it was given and the answers it gave."""

    def __init__(
        self, host: str, realm: str = PRIMARY, delay: float = 0.0, result_code: int = 2001, never: bool = False
    ) -> None:
        self.host, self.realm, self.delay, self.result_code, self.never = host, realm, delay, result_code, never
        self.requests: list[bytes] = []
        self.answers: list[bytes] = []
        self.waiting: list[defer.Deferred[bytes]] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    def handle_request(self, request: bytes, peer: Any) -> bytes | defer.Deferred[bytes]:
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


def mar(
    end_to_end: int = 0, hop_by_hop: int = 0, realm: str = PRIMARY, origin_host: str = CLIENT,
    user: str = "mig-0001", **fields: Any,
) -> Message:
    return MultimediaAuthRequest(
        hop_by_hop=hop_by_hop, end_to_end=end_to_end,
        session_id=new_session_id(origin_host), origin_host=origin_host, origin_realm=PARTNER,
        destination_realm=realm, user_name=f"{user}@{PARTNER}", public_identity=f"sip:{user}@{PARTNER}",
        sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"}, sip_number_auth_items=1,
        server_name="sip:scscf.partner.example:6060", **fields,
    )


def header_of(data: bytes) -> tuple[int, int, int, int, int]:
    """(flags, command code, application id, hop-by-hop, end-to-end) of encoded bytes."""
    return (data[4], int.from_bytes(data[5:8], "big"), int.from_bytes(data[8:12], "big"),
            int.from_bytes(data[12:16], "big"), int.from_bytes(data[16:20], "big"))


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def wait_for(predicate: Callable[[], object], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        yield sleep(0.01)


def route(realm: str, *targets: str | tuple[str, int, int], app: int = CX) -> Route:
    """Targets: host names, or (host, priority, weight)."""
    return Route(realm, app, RouteAction.PROXY,
                 [RouteTarget(t) if isinstance(t, str) else RouteTarget(*t) for t in targets])


class RawPeer(Protocol):
    """A hand-driven Diameter peer over TCP: sends crafted bytes, keeps every message it
    receives (framed), answers DWR and DPR so that nodes see a well-behaved peer."""

    def __init__(self, answer_dpr: bool = True) -> None:
        self.framer = Framer(1 << 24)
        self.messages: list[bytes] = []
        self.connected = False
        self.answer_dpr = answer_dpr
        self.lost = defer.Deferred()

    def connectionMade(self) -> None:
        self.connected = True

    def dataReceived(self, data: bytes) -> None:
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

    def connectionLost(self, reason: object = None) -> None:  # type: ignore[override]
        self.connected = False
        self.lost.callback(None)

    def send(self, data: bytes) -> None:
        self.transport.write(data)

    def application_answers(self) -> list[bytes]:
        return [m for m in self.messages if not m[4] & 0x80 and int.from_bytes(m[5:8], "big") not in (CER, DWR, DPR)]

    @defer.inlineCallbacks
    def next(self, timeout: float = 3.0) -> Any:
        """The next message received, decoded without validation."""
        count = len(self.messages)
        yield wait_for(lambda: len(self.messages) > count or not self.connected, timeout, "a message")
        if len(self.messages) == count:
            raise AssertionError("connection closed instead of a message")
        return decode(self.messages[count], validate=False)

    @defer.inlineCallbacks
    def wait_closed(self, timeout: float = 3.0) -> Any:
        yield wait_for(lambda: not self.connected, timeout, "the node to close the connection")

    @defer.inlineCallbacks
    def exchange_cer(self, host: str, realm: str, applications: tuple[int, ...] = (CX,), **fields: Any) -> Any:
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

    def __init__(self) -> None:
        self.nodes: list[DiameterNode] = []
        self.ports: dict[str, int] = {}
        self.raw: list[RawPeer] = []
        self.listeners: list[Any] = []

    def node(
        self, host: str, realm: str, peers: Any = (), routes: Any = (), timers: Timers = FAST,
        limits: Limits | None = None, accept_realms: Any = (), listen: bool = True, app: Any = None,
    ) -> DiameterNode:
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
    def raw_peer(self, port: int, host: str | None = CLIENT, realm: str = PARTNER, **cer_fields: Any) -> Any:
        """A raw peer connected to ``port``; with ``host``, after a successful CER/CEA."""
        peer = yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawPeer())
        self.raw.append(peer)
        if host is not None:
            cea = yield peer.exchange_cer(host, realm, **cer_fields)
            assert cea.result_code == 2001, cea
        return peer

    def listen(self, factory: Any) -> int:
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.listeners.append(port)
        return port.getHost().port

    @defer.inlineCallbacks
    def stop(self) -> Any:
        """Stop every node (each within STOP_BOUND), the listeners and the raw peers."""
        for raw in self.raw:
            if raw.connected:
                raw.transport.abortConnection()
        stops = {node.local.origin_host: node.stop() for node in self.nodes if not node.stopping}
        for stopping in stops.values():  # a stop that never ends fails the test, naming the node
            stopping.addTimeout(STOP_BOUND, reactor)
        results = yield defer.DeferredList(list(stops.values()), consumeErrors=True)
        stuck = [host for host, (ok, _) in zip(stops, results, strict=True) if not ok]
        assert not stuck, f"{stuck}: node.stop() did not end within {STOP_BOUND} s"
        yield defer.DeferredList([defer.maybeDeferred(port.stopListening) for port in self.listeners])
        yield sleep(0.02)  # let the aborted connections' connectionLost run
        for node in self.nodes:
            assert not node.connections, f"{node.local.origin_host} still has {node.connections}"


class Errors:
    """Collects log events of level error or above while in use (``with Errors() as e``):
    a quiet node logs none, a double answer or an unhandled failure logs one."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("log_level") is not None and event["log_level"] >= LogLevel.error:
            self.events.append(event)

    def __enter__(self) -> Errors:
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc: object) -> None:
        globalLogPublisher.removeObserver(self)


def three_nodes(
    net: Net, proxy_timers: Timers = FAST, limits: Limits | None = None,
    servers: Any = ((SERVER_A, None),), routes: Any = None, proxy_app: Any = None, accept_realms: Any = (),
) -> tuple[DiameterNode, dict[str, Any]]:
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


def all_open(node: DiameterNode, *hosts: str) -> Callable[[], bool]:
    return lambda: all(node.peers[host].available for host in hosts)
