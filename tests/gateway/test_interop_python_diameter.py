"""gateway.node serving an independent Diameter stack: python-diameter's ``Node`` (its own
sockets, threads, CER/CEA, DWR, DPR) connects as a client over TCP to our node on
127.0.0.1 and gets answers:

- the capabilities exchange succeeds both ways (its CEA parser accepts ours: Cx in
  Vendor-Specific-Application-Id; our peer goes R-Open);
- a Cx MAR built by python-diameter (Cx AVPs by number, docs/interop.md) is
  answered 2001 with a SIP-Auth-Data-Item by a local application registered on our node;
- a MAR for a realm we have no route for is answered 3002 DIAMETER_UNABLE_TO_DELIVER by
  our node itself;
- its ``stop()`` (DPR) closes the peer cleanly on our side.

python-diameter blocks (``send_request`` waits on a threading.Event): its calls run in
the reactor's thread pool via ``deferToThread``, each with its own timeout.
"""

from __future__ import annotations

import logging
import time

import pytest
import pytest_twisted
from diameter.message import constants
from diameter.message.avp import Avp as PdAvp
from diameter.message.avp.grouped import VendorSpecificApplicationId
from diameter.message.commands import MultimediaAuthRequest as PdMultimediaAuthRequest
from diameter.message.packer import Unpacker
from diameter.node import Node as PdNode
from diameter.node.application import Application as PdApplication
from twisted.internet import reactor, task, threads
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from cx_codec import answer_for, decode
from cx_codec.samples import AUTN, CK, IK, IMPI, IMPU, RAND, SCHEME_AKA, SERVER_NAME, XRES
from gateway.node import DiameterNode
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.settings import PeerSettings, Timers

pytestmark = pytest.mark.interop

CX = 16777216
VENDOR_3GPP = 10415
GATEWAY = "gw.partner.example"
CLIENT = "pd.partner.example"
REALM = "partner.example"
UNKNOWN_REALM = "nowhere.example"
TIMEOUT = 5  # seconds, for every blocking python-diameter call


async def wait_for(predicate, what: str, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
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


@pytest.fixture
def warnings():
    """Warnings and errors our node logs during the test (twisted.logger, cxgw.*)."""
    caught: list[str] = []

    def observer(event):
        if (
            event.get("log_namespace", "").startswith("cxgw")
            and event.get("log_level") >= LogLevel.warn
        ):
            caught.append(formatEvent(event))

    globalLogPublisher.addObserver(observer)
    yield caught
    globalLogPublisher.removeObserver(observer)


class Hss:
    """Our local Cx application: 2001 with one IMS-AKA vector (TS 29.229 §6.1.8)."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []

    def handle_request(self, request: bytes, peer):
        self.requests.append(request)
        return answer_for(
            decode(request),
            origin_host=GATEWAY,
            origin_realm=REALM,
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


class CxClient(PdApplication):
    """python-diameter application sending Cx requests; it serves none."""

    def __init__(self) -> None:
        super().__init__(CX, is_auth_application=True)

    def handle_request(self, message) -> None:  # pragma: no cover - nothing is sent to it
        pass


@pytest_twisted.async_yield_fixture()
async def gateway():
    node = DiameterNode(
        LocalIdentity(GATEWAY, REALM, applications=(Application(CX, VENDOR_3GPP),)),
        reactor=reactor,
        peers=[PeerSettings(CLIENT, REALM, connect=False)],
        timers=Timers(twinit=6, tx=3, tc=2, dpa_timeout=2, cea_timeout=3),
    )
    node.hss = Hss()
    node.applications[CX] = node.hss
    node.port = node.listen(0).getHost().port
    yield node
    if not node.stopping:
        await node.stop()


@pytest_twisted.async_yield_fixture()
async def client(gateway):
    """python-diameter's Node connected to ``gateway`` (CER/CEA done), and its Cx app."""
    node = PdNode(CLIENT, REALM)
    node.wakeup_interval = 1  # its select() timeout: bounds how long stop() takes
    peer = node.add_peer(
        f"aaa://{GATEWAY}:{gateway.port};transport=tcp",
        REALM,
        ip_addresses=["127.0.0.1"],
        is_persistent=True,
    )
    app = CxClient()
    node.add_application(app, [peer], realms=[UNKNOWN_REALM])
    node.start()
    try:
        await threads.deferToThread(app.wait_for_ready, TIMEOUT)
        yield node, app
    finally:
        if not node._stopping:
            await threads.deferToThread(node.stop, TIMEOUT)


def pd_mar(destination_realm: str):
    """A Cx MAR built by python-diameter: its typed MAR for the base and the Cx AVPs it
    codes right (601, 602), Cx 612/607 by number (its typed ones are RFC 4740's 376/382)."""
    mar = PdMultimediaAuthRequest()
    mar.session_id = f"{CLIENT};{int(time.time())};42"
    mar.vendor_specific_application_id = VendorSpecificApplicationId(
        vendor_id=VENDOR_3GPP, auth_application_id=CX
    )
    mar.auth_session_state = constants.E_AUTH_SESSION_STATE_NO_STATE_MAINTAINED
    mar.origin_host = CLIENT.encode()
    mar.origin_realm = REALM.encode()
    mar.destination_realm = destination_realm.encode()
    mar.user_name = IMPI
    mar.public_identity = [IMPU]
    mar.server_name = SERVER_NAME
    mar.append_avp(
        PdAvp.new(612, VENDOR_3GPP, [PdAvp.new(608, VENDOR_3GPP, SCHEME_AKA)])
    )  # SIP-Auth-Data-Item
    mar.append_avp(PdAvp.new(607, VENDOR_3GPP, 1))  # SIP-Number-Auth-Items
    mar.header.application_id = CX
    return mar


def cx_avps(answer, code: int) -> list[PdAvp]:
    return [avp for avp in answer.avps if (avp.code, avp.vendor_id) == (code, VENDOR_3GPP)]


def children(avp: PdAvp) -> dict[int, bytes]:
    unpacker = Unpacker(avp.payload)
    found = {}
    while not unpacker.is_done():
        child = PdAvp.from_unpacker(unpacker)
        found[child.code] = bytes(child.payload)
    return found


# -- tests -----------------------------------------------------------------------------------
@pytest_twisted.ensureDeferred
async def test_capabilities_exchange(gateway, client, warnings):
    node, app = client
    peer = gateway.peers[CLIENT]
    await wait_for(lambda: peer.state == "R-Open", "our peer pd.partner.example to be R-Open")
    assert peer.capabilities.product_name == "python-diameter"
    (connection,) = node.connections.values()
    assert connection.host_identity == GATEWAY
    assert connection.auth_application_ids == [
        CX
    ]  # it read Cx from our Vendor-Specific-Application-Id
    assert warnings == []


@pytest_twisted.ensureDeferred
async def test_mar_answered_2001_by_our_local_application(gateway, client):
    node, app = client
    request = pd_mar(REALM)
    answer = await threads.deferToThread(app.send_request, request, TIMEOUT)
    assert answer.result_code == 2001
    assert answer.origin_host == GATEWAY.encode()
    assert answer.session_id == request.session_id
    assert answer.header.end_to_end_identifier == request.header.end_to_end_identifier
    (item,) = cx_avps(answer, 612)
    members = children(item)
    assert members[608] == SCHEME_AKA.encode()
    assert members[609] == RAND + AUTN and members[610] == XRES
    assert (members[625], members[626]) == (CK, IK)
    # what reached our application decodes strictly in cx_codec
    (received,) = gateway.hss.requests
    mar = decode(received)
    assert mar.name == "Multimedia-Auth-Request"
    assert mar["User-Name"] == IMPI and mar["Public-Identity"] == IMPU
    assert mar.find("SIP-Auth-Data-Item").get("SIP-Authentication-Scheme") == SCHEME_AKA


@pytest_twisted.ensureDeferred
async def test_mar_for_an_unknown_realm_answered_3002_by_our_node(gateway, client):
    node, app = client
    request = pd_mar(UNKNOWN_REALM)
    answer = await threads.deferToThread(app.send_request, request, TIMEOUT)
    assert answer.result_code == constants.E_RESULT_CODE_DIAMETER_UNABLE_TO_DELIVER
    assert answer.header.is_error  # RFC 6733 §7.1.3: protocol errors carry the E bit
    assert answer.origin_host == GATEWAY.encode()
    assert answer.header.end_to_end_identifier == request.header.end_to_end_identifier
    assert gateway.hss.requests == []


@pytest_twisted.ensureDeferred
async def test_its_stop_disconnects_cleanly(gateway, client, warnings, caplog):
    node, app = client
    peer = gateway.peers[CLIENT]
    seen = spy(peer)
    await wait_for(lambda: peer.state == "R-Open", "our peer pd.partner.example to be R-Open")
    with caplog.at_level(logging.INFO, logger="diameter.node"):
        await threads.deferToThread(node.stop, TIMEOUT)
    await wait_for(lambda: peer.state == "Closed", "our peer pd.partner.example to be Closed")
    assert (282, True) in seen  # its DPR (RFC 6733 §5.4)
    messages = [record.getMessage() for record in caplog.records]
    assert any("got DPA" in message for message in messages), messages  # our DPA reached it
    assert not any("shutdown timeout" in message for message in messages), messages
    assert warnings == []
