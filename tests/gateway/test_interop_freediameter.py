"""gateway.node against a real freeDiameter 1.2.1 (gateway.testing.freediameter) on loopback.

- capabilities exchange in both directions (freeDiameter connects to us: R-Open; we
  connect to it: I-Open), each side seeing the other open;
- the watchdog both ways (our Twinit 6, its TwTimer 6): DWRs answered in both directions;
- DPR/DPA both ways: ``node.stop()`` gets freeDiameter's DPA; freeDiameter shutting down
  (SIGTERM) sends DPR, we answer DPA and the peer goes to Closed without a warning;
- relaying: a client node -> our relay node -> freeDiameter (MAR to freeDiameter itself,
  answered 3007 since it serves no Cx): the answer comes back with the original
  hop-by-hop id, the same End-to-End id and 3007 untouched, and freeDiameter saw our
  Route-Record; and a client node -> freeDiameter -> our node serving Cx (2001): it relays
  our messages and accepts our CER.

Every process and node binds 127.0.0.1 (freeDiameter: all addresses) on OS-chosen ports
and is stopped by its fixture; every wait polls with a deadline.
"""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from twisted.internet import reactor, task
from twisted.logger import LogLevel, globalLogPublisher

from cx_codec import answer_for, decode
from cx_codec.commands import MultimediaAuthRequest, new_session_id
from cx_codec.samples import AUTN, CK, IK, IMPI, IMPU, RAND, SCHEME_AKA, SERVER_NAME, XRES
from gateway.node import DiameterNode
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.routing.table import Route, RouteAction, RouteTarget
from gateway.settings import PeerSettings, Timers
from gateway.testing.freediameter import FdPeer, FdRoute, FreeDiameter

pytestmark = pytest.mark.interop

CX = 16777216
VENDOR_3GPP = 10415
FD = "fd.example"
FD_REALM = "example"
GATEWAY = "gw.partner.example"
GATEWAY2 = "gw2.partner.example"
CLIENT = "scscf.partner.example"
PARTNER_REALM = "partner.example"
HSS = "hss.primary.example"
PRIMARY_REALM = "primary.example"
DPR, DWR = 282, 280

TIMERS = Timers(twinit=6, tx=3, tc=2, dpa_timeout=3, cea_timeout=3)
SLOW_WATCHDOG = Timers(twinit=30, tx=3, tc=2, dpa_timeout=3, cea_timeout=3)


# -- helpers ---------------------------------------------------------------------------------
async def wait_for(predicate, what: str, timeout: float = 5.0, fd: FreeDiameter | None = None):
    """Poll ``predicate`` every 50 ms until it is true; fail naming ``what`` (and the end of
    freeDiameter's log) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(
                f"timed out after {timeout} s waiting for {what}"
                + (f"\n{fd.describe()}" if fd else "")
            )
        await task.deferLater(reactor, 0.05, lambda: None)


def spy(peer) -> list[tuple[int, bool]]:
    """Record (command code, is request) of every base-protocol message ``peer`` receives."""
    seen: list[tuple[int, bool]] = []
    received = peer.received

    def recording(connection, data):
        seen.append((int.from_bytes(data[5:8], "big"), bool(data[4] & 0x80)))
        return received(connection, data)

    peer.received = recording
    return seen


def sent_by(peer) -> list[bytes]:
    """Record the messages our node sends to ``peer`` (what the proxy forwards)."""
    sent: list[bytes] = []
    send = peer.send

    def recording(data):
        sent.append(data)
        return send(data)

    peer.send = recording
    return sent


class Nodes:
    """DiameterNodes made by a test, all stopped at its end."""

    def __init__(self) -> None:
        self.made: list[DiameterNode] = []

    def make(
        self,
        host: str,
        realm: str,
        *,
        peers=(),
        routes=(),
        listen: bool = False,
        timers: Timers = TIMERS,
    ):
        node = DiameterNode(
            LocalIdentity(host, realm, applications=(Application(CX, VENDOR_3GPP),)),
            reactor=reactor,
            peers=peers,
            routes=routes,
            timers=timers,
        )
        node.port = node.listen(0).getHost().port if listen else None
        self.made.append(node)
        return node


@pytest.fixture
def fd_binary(require_program):
    return require_program("freeDiameterd")


@pytest_twisted.async_yield_fixture()
async def nodes():
    made = Nodes()
    yield made
    for node in made.made:
        if not node.stopping:
            await node.stop()


@pytest_twisted.async_yield_fixture()
async def freediameter(fd_binary, tmp_path):
    """A factory: ``freediameter(peers=..., ...)`` starts one (TwTimer 6, Tc 2, message
    dumps so its log shows every message); each is stopped at the end
    of the test with SIGTERM while the reactor runs, so our nodes can answer its DPR."""
    started: list[FreeDiameter] = []

    def start(**settings) -> FreeDiameter:
        settings.setdefault("tw", 6)
        settings.setdefault("tc", 2)
        settings.setdefault("dump_messages", True)
        fd = FreeDiameter(
            FD, FD_REALM, binary=fd_binary, workdir=tmp_path / f"fd{len(started)}", **settings
        )
        started.append(fd)
        return fd.start()

    yield start
    for fd in started:
        await terminated(fd)


async def terminated(fd: FreeDiameter, timeout: float = 5.0) -> int | None:
    """SIGTERM, then let the reactor run until it exits (SIGKILL after ``timeout``)."""
    fd.terminate()
    deadline = time.monotonic() + timeout
    while fd.running and time.monotonic() < deadline:
        await task.deferLater(reactor, 0.05, lambda: None)
    return fd.stop(timeout=0)


@pytest.fixture
def warnings():
    """Warnings and errors our nodes log during the test (twisted.logger, cxgw.*)."""
    caught: list[str] = []

    def observer(event):
        if (
            event.get("log_namespace", "").startswith("cxgw")
            and event.get("log_level") >= LogLevel.warn
        ):
            from twisted.logger import formatEvent

            caught.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    yield caught
    globalLogPublisher.removeObserver(observer)


# -- the runner's configuration (no daemon needed) --------------------------------------------------
def test_runner_configuration(tmp_path):
    fd = FreeDiameter(
        FD,
        FD_REALM,
        peers=[FdPeer(GATEWAY, 4000, tw=30)],
        routes=[FdRoute(PRIMARY_REALM, HSS)],
        accept_realms=[PARTNER_REALM],
        dictionaries=True,
        workdir=tmp_path,
        port=3999,
    )
    config = fd.config()
    assert (
        'ConnectPeer = "gw.partner.example" {' in config
        and "Port = 4000;" in config
        and "TwTimer = 30;" in config
    )
    assert config.index("dict_nasreq") < config.index("dict_dcca.") < config.index("dict_dcca_3gpp")
    assert (
        FdRoute(PRIMARY_REALM, HSS).rule()
        == 'dr="primary.example" : "hss.primary.example" += 100 ;'
    )
    with pytest.raises(ValueError, match="at least 6"):
        FreeDiameter(FD, tw=5)
    with pytest.raises(ValueError, match="cannot be written"):
        FdRoute('a"b', HSS).rule()


# -- capabilities exchange ---------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_freediameter_connects_to_us_and_both_sides_open(nodes, freediameter, warnings):
    node = nodes.make(
        GATEWAY, PARTNER_REALM, peers=[PeerSettings(FD, FD_REALM, connect=False)], listen=True
    )
    fd = freediameter(peers=[FdPeer(GATEWAY, node.port)])
    peer = node.peers[FD]
    await wait_for(lambda: peer.state == "R-Open", "our peer fd.example to be R-Open", fd=fd)
    await wait_for(
        lambda: fd.peer_state(GATEWAY) == "STATE_OPEN",
        "freeDiameter to log gw.partner.example OPEN",
        fd=fd,
    )
    assert peer.capabilities.product_name == "freeDiameter"
    assert warnings == []


@pytest_twisted.ensureDeferred
async def test_we_connect_to_freediameter(nodes, freediameter, warnings):
    fd = freediameter(accept_realms=[PARTNER_REALM])
    node = nodes.make(
        GATEWAY, PARTNER_REALM, peers=[PeerSettings(FD, FD_REALM, "127.0.0.1", fd.port)]
    )
    node.start()
    peer = node.peers[FD]
    await wait_for(lambda: peer.state == "I-Open", "our peer fd.example to be I-Open", fd=fd)
    await wait_for(
        lambda: fd.peer_state(GATEWAY) == "STATE_OPEN",
        "freeDiameter to log gw.partner.example OPEN",
        fd=fd,
    )
    assert warnings == []


# -- watchdog --------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_watchdog_both_directions(nodes, freediameter, warnings):
    """DWR/DWA each way, in one test so the suite waits for Tw (6 s +/- 2 s jitter) once.

    RFC 3539 Appendix A: every message received re-arms the watchdog timer, on both sides,
    so on one connection only the side whose timer fires first keeps sending DWRs (which
    one is up to the jitter). Hence two connections: ``gw`` (our Twinit 6, freeDiameter's
    TwTimer 30 for it) sends the DWRs; freeDiameter (TwTimer 6 for ``gw2``, whose Twinit is
    30) sends them to ``gw2``.
    """
    ours = nodes.make(
        GATEWAY, PARTNER_REALM, peers=[PeerSettings(FD, FD_REALM, connect=False)], listen=True
    )
    theirs = nodes.make(
        GATEWAY2,
        PARTNER_REALM,
        peers=[PeerSettings(FD, FD_REALM, connect=False)],
        listen=True,
        timers=SLOW_WATCHDOG,
    )
    seen_ours, seen_theirs = spy(ours.peers[FD]), spy(theirs.peers[FD])
    fd = freediameter(
        peers=[FdPeer(GATEWAY, ours.port, tw=30), FdPeer(GATEWAY2, theirs.port, tw=6)]
    )
    await wait_for(
        lambda: ours.peers[FD].state == theirs.peers[FD].state == "R-Open",
        "both peers R-Open",
        fd=fd,
    )
    # Tw = 6 s +/- 2 s (RFC 3539 §3.4.1): both DWRs within 8 s of the opening
    await wait_for(
        lambda: (DWR, False) in seen_ours, "freeDiameter's DWA to our DWR", timeout=12, fd=fd
    )
    await wait_for(lambda: (DWR, True) in seen_theirs, "a DWR from freeDiameter", timeout=12, fd=fd)
    await wait_for(
        lambda: fd.log_search(rf"RCV from '{GATEWAY2}': Device-Watchdog-Answer.*DIAMETER_SUCCESS"),
        "freeDiameter to log our DWA",
        fd=fd,
    )
    assert fd.log_search(rf"RCV from '{GATEWAY}': Device-Watchdog-Request"), fd.describe()
    assert fd.log_search(rf"SND to '{GATEWAY}': Device-Watchdog-Answer.*DIAMETER_SUCCESS"), (
        fd.describe()
    )
    for node in (ours, theirs):
        assert node.peers[FD].watchdog.state.value == "OKAY"
        assert node.peers[FD].state == "R-Open"
    assert warnings == []


# -- disconnect ------------------------------------------------------------------------------
async def open_and_stop(nodes, freediameter):
    """Our node connects to freeDiameter, then ``node.stop()``: (node, peer spy, fd, seconds)."""
    fd = freediameter(accept_realms=[PARTNER_REALM])
    node = nodes.make(
        GATEWAY, PARTNER_REALM, peers=[PeerSettings(FD, FD_REALM, "127.0.0.1", fd.port)]
    )
    peer = node.peers[FD]
    seen = spy(peer)
    node.start()
    await wait_for(lambda: peer.state == "I-Open", "our peer fd.example to be I-Open", fd=fd)
    started = time.monotonic()
    await node.stop()
    return node, seen, fd, time.monotonic() - started


@pytest_twisted.ensureDeferred
async def test_node_stop_sends_dpr_to_freediameter(nodes, freediameter, warnings):
    node, seen, fd, elapsed = await open_and_stop(nodes, freediameter)
    await wait_for(
        lambda: fd.log_search(rf"RCV from '{GATEWAY}': Disconnect-Peer-Request"),
        "freeDiameter to get our DPR",
        fd=fd,
    )
    assert fd.log_search(rf"Peer '{GATEWAY}' sent a DPR with cause: REBOOTING"), fd.describe()
    await wait_for(
        lambda: node.peers[FD].state == "Closed", "our peer fd.example to be Closed", fd=fd
    )
    assert warnings == []


@pytest_twisted.ensureDeferred
async def test_node_stop_waits_for_freediameters_dpa(nodes, freediameter, warnings):
    node, seen, fd, elapsed = await open_and_stop(nodes, freediameter)
    assert (DPR, False) in seen, fd.describe()  # freeDiameter's DPA reached our peer and ended the wait
    await wait_for(
        lambda: fd.log_search(rf"SND to '{GATEWAY}': Disconnect-Peer-Answer"),
        "freeDiameter's DPA",
        fd=fd,
    )
    assert not fd.log_search(r"DROPPED|Connection reset by peer"), fd.describe()


@pytest_twisted.ensureDeferred
async def test_freediameter_shutdown_sends_dpr_and_we_answer_dpa(nodes, freediameter, warnings):
    node = nodes.make(
        GATEWAY, PARTNER_REALM, peers=[PeerSettings(FD, FD_REALM, connect=False)], listen=True
    )
    peer = node.peers[FD]
    seen = spy(peer)
    fd = freediameter(peers=[FdPeer(GATEWAY, node.port)])
    await wait_for(lambda: peer.state == "R-Open", "our peer fd.example to be R-Open", fd=fd)
    status = await terminated(fd)
    assert status == 0, fd.describe()
    assert (DPR, True) in seen
    await wait_for(lambda: peer.state == "Closed", "our peer fd.example to be Closed", fd=fd)
    assert fd.log_search(rf"SND to '{GATEWAY}': Disconnect-Peer-Request.*REBOOTING"), fd.describe()
    assert fd.log_search(rf"RCV from '{GATEWAY}': Disconnect-Peer-Answer.*DIAMETER_SUCCESS"), (
        fd.describe()
    )
    assert warnings == []


# -- relaying --------------------------------------------------------------------------------
def mar(destination_realm: str, destination_host: str | None = None, hop_by_hop: int = 0x2A00BEEF):
    fields = {"destination_host": destination_host} if destination_host else {}
    return MultimediaAuthRequest(
        hop_by_hop=hop_by_hop,
        end_to_end=0x6B00BEEF,
        session_id=new_session_id(CLIENT),
        origin_host=CLIENT,
        origin_realm=PARTNER_REALM,
        destination_realm=destination_realm,
        user_name=IMPI,
        public_identity=IMPU,
        sip_auth_data_item={"sip_authentication_scheme": SCHEME_AKA},
        sip_number_auth_items=1,
        server_name=SERVER_NAME,
        **fields,
    )


@pytest_twisted.ensureDeferred
async def test_mar_relayed_through_our_node_to_freediameter_comes_back_3007(
    nodes, freediameter, warnings
):
    fd = freediameter(accept_realms=[PARTNER_REALM])
    relay = nodes.make(
        GATEWAY,
        PARTNER_REALM,
        peers=[
            PeerSettings(FD, FD_REALM, "127.0.0.1", fd.port),
            PeerSettings(CLIENT, PARTNER_REALM, connect=False),
        ],
        routes=[Route(FD_REALM, CX, RouteAction.PROXY, [RouteTarget(FD)])],
        listen=True,
    )
    client = nodes.make(
        CLIENT,
        PARTNER_REALM,
        peers=[PeerSettings(GATEWAY, PARTNER_REALM, "127.0.0.1", relay.port)],
        routes=[Route(FD_REALM, CX, RouteAction.PROXY, [RouteTarget(GATEWAY)])],
    )
    relay.start()
    client.start()
    await wait_for(lambda: relay.peers[FD].state == "I-Open", "relay -> fd.example I-Open", fd=fd)
    await wait_for(lambda: client.peers[GATEWAY].state == "I-Open", "client -> relay I-Open", fd=fd)
    forwarded = sent_by(relay.peers[FD])
    request = mar(FD_REALM, FD)
    answer = decode(await client.send_request(request), validate=False)
    assert answer.result_code == 3007, (answer, fd.describe())  # DIAMETER_APPLICATION_UNSUPPORTED
    assert answer["Origin-Host"] == FD  # freeDiameter's own answer, passed through
    assert (answer.hop_by_hop, answer.end_to_end) == (request.hop_by_hop, request.end_to_end)
    assert answer["Session-Id"] == request["Session-Id"]
    # flags as freeDiameter sent them: E (RFC 6733 §7.1.3), and P clear although the
    # request had it (a freeDiameter quirk, RFC 6733 §6.2 wants P copied): untouched by us
    assert answer.flags == 0x20, hex(answer.flags)
    # what the relay sent (RFC 6733 §6.1.9): a new hop-by-hop id, the same End-to-End id,
    # the client appended in Route-Record
    (copy,) = [decode(data) for data in forwarded if data[5:8] == b"\0\1\x2f"]
    assert copy.hop_by_hop != request.hop_by_hop and copy.end_to_end == request.end_to_end
    assert [avp.value for avp in copy.find_all("Route-Record")] == [CLIENT]
    # freeDiameter received it: one Route-Record, the last AVP (its dump shows unknown
    # AVPs unparsed, so the value is checked on our side above), and answered 3007
    (received,) = fd.log_search(rf"RCV from '{GATEWAY}': .*unknown\(16777216/303\)\[RP")
    assert received.count("(282)") == 1 and received.rstrip().endswith(
        "{ unknown(282)[-M]=(not set) }"
    ), received
    assert fd.log_search(
        rf"SND to '{GATEWAY}': .*303\)\[--E-\].*DIAMETER_APPLICATION_UNSUPPORTED"
    ), fd.describe()
    assert warnings == []


@pytest_twisted.ensureDeferred
async def test_mar_relayed_through_freediameter_to_our_node_answered_2001(
    nodes, freediameter, warnings
):
    received: list[bytes] = []

    class Hss:
        def handle_request(self, request: bytes, peer):
            received.append(request)
            return answer_for(
                decode(request),
                origin_host=HSS,
                origin_realm=PRIMARY_REALM,
                result_code=2001,
                user_name=IMPI,
                public_identity=IMPU,
                sip_number_auth_items=1,
                sip_auth_data_item=[
                    {
                        "sip_item_number": 1,
                        "sip_authentication_scheme": SCHEME_AKA,
                        "sip_authenticate": RAND + AUTN,
                        "sip_authorization": XRES,
                        "confidentiality_key": CK,
                        "integrity_key": IK,
                    }
                ],
            )

    server = nodes.make(
        HSS, PRIMARY_REALM, peers=[PeerSettings(FD, FD_REALM, connect=False)], listen=True
    )
    server.applications[CX] = Hss()
    fd = freediameter(
        peers=[FdPeer(HSS, server.port)],
        routes=[FdRoute(PRIMARY_REALM, HSS)],
        accept_realms=[PARTNER_REALM],
        dictionaries=True,  # dict_nasreq, dict_dcca, dict_dcca_3gpp: the load order works
    )
    client = nodes.make(
        CLIENT,
        PARTNER_REALM,
        peers=[PeerSettings(FD, FD_REALM, "127.0.0.1", fd.port)],
        routes=[Route(PRIMARY_REALM, CX, RouteAction.PROXY, [RouteTarget(FD)])],
    )
    client.start()
    await wait_for(lambda: server.peers[FD].state == "R-Open", "fd.example -> server R-Open", fd=fd)
    await wait_for(lambda: client.peers[FD].state == "I-Open", "client -> fd.example I-Open", fd=fd)
    request = mar(PRIMARY_REALM)  # no Destination-Host: freeDiameter routes by rt_default
    answer = decode(await client.send_request(request))
    assert answer.result_code == 2001, (answer, fd.describe())
    assert answer["Origin-Host"] == HSS
    assert (answer.hop_by_hop, answer.end_to_end) == (request.hop_by_hop, request.end_to_end)
    (item,) = answer.find_all("SIP-Auth-Data-Item")
    assert (item.get("SIP-Authenticate"), item.get("SIP-Authorization")) == (RAND + AUTN, XRES)
    # what our server got: relayed by freeDiameter, Route-Record naming the client
    (forwarded,) = received
    relayed = decode(forwarded)
    assert [avp.value for avp in relayed.find_all("Route-Record")] == [CLIENT]
    assert relayed.end_to_end == request.end_to_end
    assert relayed["Session-Id"] == request["Session-Id"]
    assert warnings == []
