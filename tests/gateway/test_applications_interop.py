"""Steps 16-21 of TR 23.781 solution 2 with an independent Diameter stack as the S-CSCF:
python-diameter's ``Node`` (its own sockets and threads, CER/CEA, DWR) connects to the
partner core over TCP on 127.0.0.1 and sends a Cx Multimedia-Auth-Request (TS 29.229
§6.1.7) whose Cx AVPs it builds by number, vendor 10415 (its typed MAR helpers carry the
RFC 4740 AVPs, not Cx). The partner core translates and forwards it to the primary core,
whose hss role generates the vectors; python-diameter parses the MAA, and a software ISIM
holding K checks every vector (TS 33.102 §6.3.3).

python-diameter blocks (``send_request`` waits on a threading.Event): its calls run in the
reactor's thread pool via ``deferToThread``, each with its own timeout.
"""

from __future__ import annotations

import time

import pytest
import pytest_twisted
from diameter.message import constants
from diameter.message.avp import Avp as PdAvp
from diameter.message.avp.grouped import VendorSpecificApplicationId
from diameter.message.commands import MultimediaAuthRequest as PdMultimediaAuthRequest
from diameter.node import Node as PdNode
from diameter.node.application import Application as PdApplication
from twisted.internet import threads

from cx_codec import decode
from gateway.testing.cores import OPC, PARTNER, PARTNER_GW, PRIMARY_GW, REAL_IMPI, SCSCF, Cores, K
from gateway.testing.diamtest import CX, Net, wait_for
from gateway.testing.isim import Isim
from hss_store import open_store

pytestmark = pytest.mark.interop

SERVER_NAME = "sip:scscf.partner.example:6060"
AKA = "Digest-AKAv1-MD5"
VENDOR_3GPP = 10415
TIMEOUT = 5  # seconds, for every blocking python-diameter call

# Cx AVP codes, TS 29.229 §6.3 (vendor 10415)
PUBLIC_IDENTITY, SERVER_NAME_AVP, SIP_NUMBER_AUTH_ITEMS = 601, 602, 607
SIP_AUTHENTICATION_SCHEME, SIP_AUTHENTICATE, SIP_AUTHORIZATION, SIP_AUTH_DATA_ITEM = 608, 609, 610, 612
CONFIDENTIALITY_KEY, INTEGRITY_KEY = 625, 626


class CxClient(PdApplication):
    """python-diameter's S-CSCF side of Cx: it sends requests and serves none."""

    def __init__(self) -> None:
        super().__init__(CX, is_auth_application=True)

    def handle_request(self, message) -> None:  # pragma: no cover - nothing is sent to it
        pass


@pytest.fixture
def cores(tmp_path):
    net = Net()
    built = Cores(net, open_store(str(tmp_path / "primary.sqlite")), open_store(str(tmp_path / "partner.sqlite")))
    yield built
    pytest_twisted.blockon(net.stop())
    built.close()


@pytest_twisted.async_yield_fixture()
async def scscf(cores):
    """python-diameter's Node connected to the partner core (CER/CEA done), and its Cx app."""
    await wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    node = PdNode(SCSCF, PARTNER)  # no ip_addresses: it listens on nothing
    node.wakeup_interval = 1  # its select() timeout: bounds how long stop() takes
    peer = node.add_peer(f"aaa://{PARTNER_GW}:{cores.net.ports[PARTNER_GW]};transport=tcp", PARTNER,
                         ip_addresses=["127.0.0.1"], is_persistent=True)
    app = CxClient()
    node.add_application(app, [peer], realms=[PARTNER])
    node.start()
    try:
        await threads.deferToThread(app.wait_for_ready, TIMEOUT)
        yield app
    finally:
        if not node._stopping:
            await threads.deferToThread(node.stop, TIMEOUT)


_sessions = iter(range(1, 1 << 30))


def pd_mar(impi: str, impu: str, *, count: int = 1, scheme: str = AKA, authorization: bytes | None = None):
    """The MAR of a registration (to the S-CSCF's own realm, no Destination-Host): base AVPs
    through python-diameter's message class, every Cx AVP by number with vendor 10415."""
    mar = PdMultimediaAuthRequest()
    mar.session_id = f"{SCSCF};{int(time.time())};{next(_sessions)}"
    mar.vendor_specific_application_id = VendorSpecificApplicationId(vendor_id=VENDOR_3GPP, auth_application_id=CX)
    mar.auth_session_state = constants.E_AUTH_SESSION_STATE_NO_STATE_MAINTAINED
    mar.origin_host = SCSCF.encode()
    mar.origin_realm = PARTNER.encode()
    mar.destination_realm = PARTNER.encode()
    mar.user_name = impi
    item = [PdAvp.new(SIP_AUTHENTICATION_SCHEME, VENDOR_3GPP, scheme)]
    if authorization is not None:
        item.append(PdAvp.new(SIP_AUTHORIZATION, VENDOR_3GPP, authorization))
    mar.append_avp(PdAvp.new(PUBLIC_IDENTITY, VENDOR_3GPP, impu))
    mar.append_avp(PdAvp.new(SIP_AUTH_DATA_ITEM, VENDOR_3GPP, item))
    mar.append_avp(PdAvp.new(SIP_NUMBER_AUTH_ITEMS, VENDOR_3GPP, count))
    mar.append_avp(PdAvp.new(SERVER_NAME_AVP, VENDOR_3GPP, SERVER_NAME))
    mar.header.application_id = CX
    return mar


def avps_of(answer, code: int, vendor: int = 0) -> list:
    return [avp for avp in answer.avps if (avp.code, avp.vendor_id) == (code, vendor)]


def the(answer, code: int, vendor: int = 0):
    (avp,) = avps_of(answer, code, vendor)
    return avp.value


def items_of(answer) -> list[dict[int, bytes]]:
    """The SIP-Auth-Data-Items as python-diameter parsed them: member code -> payload."""
    return [
        {member.code: bytes(member.payload) for member in avp.value}
        for avp in avps_of(answer, SIP_AUTH_DATA_ITEM, VENDOR_3GPP)
    ]


async def exchange(app, request):
    answer = await threads.deferToThread(app.send_request, request, TIMEOUT)
    assert answer is not None
    assert answer.header.end_to_end_identifier == request.header.end_to_end_identifier
    assert answer.session_id == request.session_id
    return answer


@pytest_twisted.ensureDeferred
async def test_python_diameter_scscf_gets_vectors_the_isim_accepts(cores, scscf):
    impi, impu = cores.inbound.inbound_impi, cores.inbound.inbound_impu
    answer = await exchange(scscf, pd_mar(impi, impu, count=3))
    assert answer.result_code == constants.E_RESULT_CODE_DIAMETER_SUCCESS
    assert not answer.header.is_error
    # step 20: the inbound identities, as the S-CSCF keys its state on them
    assert the(answer, constants.AVP_USER_NAME) == impi
    assert the(answer, PUBLIC_IDENTITY, VENDOR_3GPP) == impu
    assert the(answer, constants.AVP_ORIGIN_HOST) == PARTNER_GW.encode()
    assert the(answer, SIP_NUMBER_AUTH_ITEMS, VENDOR_3GPP) == 3
    items = items_of(answer)
    assert len(items) == 3
    isim = Isim(K, OPC)
    for item in items:
        assert item[SIP_AUTHENTICATION_SCHEME] == AKA.encode()
        authenticate = item[SIP_AUTHENTICATE]  # RAND || AUTN (TS 29.229 §6.3.10)
        response = isim.challenge(authenticate[:16], authenticate[16:])
        assert response.result == "ok", response.result
        assert (response.res, response.ck, response.ik) == (
            item[SIP_AUTHORIZATION], item[CONFIDENTIALITY_KEY], item[INTEGRITY_KEY]
        )
    # what python-diameter got is also valid Cx for our strict decoder
    ours = decode(answer.as_bytes())
    assert ours.name == "Multimedia-Auth-Answer" and ours["User-Name"] == impi
    # no primary-side identity reached the S-CSCF
    raw = answer.as_bytes()
    for secret in (cores.outbound.outbound_impi, cores.outbound.outbound_impu, REAL_IMPI, PRIMARY_GW):
        assert secret.encode() not in raw, secret


@pytest_twisted.ensureDeferred
async def test_python_diameter_scscf_resynchronises_through_both_gateways(cores, scscf):
    impi, impu = cores.inbound.inbound_impi, cores.inbound.inbound_impu
    isim = Isim(K, OPC)
    isim.advance(3000)  # the card is ahead of the HSS
    first = await exchange(scscf, pd_mar(impi, impu))
    authenticate = items_of(first)[0][SIP_AUTHENTICATE]
    response = isim.challenge(authenticate[:16], authenticate[16:])
    assert response.result == "synch failure"
    # TS 29.229 §6.3.11: SIP-Authorization = RAND || AUTS
    second = await exchange(scscf, pd_mar(impi, impu, authorization=authenticate[:16] + response.auts))
    assert second.result_code == constants.E_RESULT_CODE_DIAMETER_SUCCESS
    (item,) = items_of(second)
    fresh = item[SIP_AUTHENTICATE]
    accepted = isim.challenge(fresh[:16], fresh[16:])
    assert accepted.result == "ok" and accepted.res == item[SIP_AUTHORIZATION]


@pytest_twisted.ensureDeferred
async def test_python_diameter_decodes_the_5001_of_an_unknown_user(cores, scscf):
    impi, impu = "mig-nobody@partner.example", "sip:mig-nobody@partner.example"
    answer = await exchange(scscf, pd_mar(impi, impu))
    assert answer.result_code is None
    # Experimental-Result { Vendor-Id 10415, Experimental-Result-Code 5001 } (TS 29.229 §6.2.2.1)
    assert answer.experimental_result is not None
    assert answer.experimental_result.vendor_id == VENDOR_3GPP
    assert answer.experimental_result.experimental_result_code == 5001
    assert not answer.header.is_error  # an application answer, not a protocol error
    assert the(answer, constants.AVP_USER_NAME) == impi
    assert the(answer, PUBLIC_IDENTITY, VENDOR_3GPP) == impu
    assert items_of(answer) == []
    assert decode(answer.as_bytes()).experimental_result == (VENDOR_3GPP, 5001)


@pytest_twisted.ensureDeferred
async def test_python_diameter_gets_5006_for_a_digest_scheme(cores, scscf):
    answer = await exchange(scscf, pd_mar(cores.inbound.inbound_impi, cores.inbound.inbound_impu, scheme="SIP Digest"))
    assert answer.experimental_result.experimental_result_code == 5006
    assert the(answer, constants.AVP_USER_NAME) == cores.inbound.inbound_impi
