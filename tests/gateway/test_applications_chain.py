"""The migration's steps 16-21 over loopback: an S-CSCF (a raw peer) -> the partner core
(partner role) -> the primary core (primary + hss roles), each with its own SQLite store
provisioned as an operator would (TR 23.781 steps 4-6 and 9-11).

Every MAA's vectors are checked by a software ISIM holding the subscriber's K and OPc
(MAC-A, SQN freshness, RES = XRES, CK, IK), and the bytes on each leg are checked: no
primary identity reaches the S-CSCF's connection, no inbound identity reaches the primary.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor

from cx_codec import answer_for, decode
from cx_codec.commands import MultimediaAuthRequest, ServerAssignmentRequest, new_session_id
from gateway.applications.cx import CX, Local
from gateway.applications.primary import PrimaryApplication
from gateway.applications.service import CxService
from gateway.applications.storage import StoreAccess
from gateway.applications.translation import Destination
from gateway.settings import PeerSettings
from gateway.testing.cores import (
    OPC,
    PARTNER,
    PARTNER_GW,
    PRIMARY,
    PRIMARY_GW,
    REAL_IMPI,
    REAL_IMPU,
    SCSCF,
    Cores,
    K,
)
from gateway.testing.diamtest import Answering, Net, header_of, route, wait_for
from gateway.testing.isim import Isim
from gateway.transport.framing import Framer
from hss_store import open_store
from hss_store.records import Agreement, PrimaryDatabase, Subscriber

AKA = "Digest-AKAv1-MD5"


@pytest.fixture
def cores(tmp_path):
    net = Net()
    built = Cores(net, open_store(str(tmp_path / "primary.sqlite")), open_store(str(tmp_path / "partner.sqlite")))
    yield built
    pytest_twisted.blockon(net.stop())
    built.close()


def _mar(cores: Cores, hop: int, *, impi: str | None = None, impu: str | None = None, scheme: str = AKA,
         authorization: bytes | None = None, count: int = 1) -> bytes:
    """The MAR Kamailio's S-CSCF sends at a registration (to its own realm, no Destination-Host)."""
    item: dict[str, object] = {"sip_authentication_scheme": scheme}
    if authorization is not None:
        item["sip_authorization"] = authorization
    return MultimediaAuthRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
        destination_realm=PARTNER, user_name=impi or cores.inbound.inbound_impi,
        public_identity=impu or cores.inbound.inbound_impu, sip_auth_data_item=item, sip_number_auth_items=count,
        server_name="sip:scscf.partner.example:6060",
    ).encode()


def _vectors(answer):
    items = answer.find_all("SIP-Auth-Data-Item")
    return [tuple(bytes(item.get(name)) for name in ("SIP-Authenticate", "SIP-Authorization", "Confidentiality-Key",
                                                     "Integrity-Key")) for item in items]


@pytest_twisted.inlineCallbacks
def test_a_migrated_user_gets_vectors_its_isim_accepts_with_the_inbound_identities(cores):
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.scscf()
    scscf.send(_mar(cores, 1, count=3))
    answer = yield scscf.next()
    raw = scscf.messages[-1]
    answer = decode(raw)  # strictly: what the S-CSCF gets is valid Cx
    assert answer.result_code == 2001 and header_of(raw)[3] == 1
    assert answer["User-Name"] == cores.inbound.inbound_impi  # step 20: the inbound identities again
    assert answer["Public-Identity"] == cores.inbound.inbound_impu
    assert answer["Origin-Host"] == PARTNER_GW
    isim = Isim(K, OPC)
    vectors = _vectors(answer)
    assert len(vectors) == 3
    for authenticate, xres, ck, ik in vectors:
        response = isim.challenge(authenticate[:16], authenticate[16:])
        assert response.result == "ok"
        assert (response.res, response.ck, response.ik) == (xres, ck, ik)  # IMS-AKA survives translation
    # on the wire: no primary identity towards the S-CSCF, no inbound one towards the primary
    towards_scscf = b"".join(scscf.messages)
    for secret in (cores.outbound.outbound_impi, cores.outbound.outbound_impu, REAL_IMPI, REAL_IMPU, PRIMARY_GW):
        assert secret.encode() not in towards_scscf, secret
    towards_primary = b"".join(cores.primary_leg)
    for secret in (cores.inbound.inbound_impi, cores.inbound.inbound_impu, SCSCF):
        assert secret.encode() not in towards_primary, secret


@pytest_twisted.inlineCallbacks
def test_resynchronisation_goes_through_both_gateways(cores):
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.scscf()
    isim = Isim(K, OPC)
    isim.advance(1000)  # the card has seen SQNs the HSS has not issued
    scscf.send(_mar(cores, 1))
    first = decode((yield scscf.next()) and scscf.messages[-1])
    authenticate = _vectors(first)[0][0]
    response = isim.challenge(authenticate[:16], authenticate[16:])
    assert response.result == "synch failure"
    scscf.send(_mar(cores, 2, authorization=authenticate[:16] + response.auts))
    yield scscf.next()
    second = decode(scscf.messages[-1])
    assert second.result_code == 2001
    authenticate, xres, _, _ = _vectors(second)[0]
    assert isim.challenge(authenticate[:16], authenticate[16:]).res == xres


@pytest.mark.parametrize(
    "case", ["unknown inbound", "revoked", "other partner's user", "no agreement", "agreement ended", "impu not bound"]
)
@pytest_twisted.inlineCallbacks
def test_users_the_chain_must_not_serve_get_5001_or_5002_with_the_inbound_identities(cores, case):
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    impi, impu, expected = cores.inbound.inbound_impi, cores.inbound.inbound_impu, 5001
    if case == "unknown inbound":
        impi, impu = "mig-nobody@partner.example", "sip:mig-nobody@partner.example"
    elif case == "revoked":
        cores.partner_store.revoke_inbound(impi)
    elif case == "other partner's user":
        cores.primary_role.partners[PARTNER_GW.lower()] = "partner-b"  # the binding is partner-a's
        cores.primary_store.add_agreement(Agreement("partner-b", "all"))
    elif case == "no agreement":
        cores.primary_store.revoke_outbound(cores.outbound.outbound_impi)
        cores.primary_store.remove_agreement(Agreement("partner-a", "all"))
        inbound = cores.partner_store.allocate_inbound(PrimaryDatabase(PRIMARY, PRIMARY_GW), REAL_IMPI, REAL_IMPU)
        impi, impu = inbound.inbound_impi, inbound.inbound_impu
    elif case == "agreement ended":  # the outbound binding stays, the agreement goes
        cores.primary_store.remove_agreement(Agreement("partner-a", "all"))
    else:
        impu, expected = "sip:someone-else@partner.example", 5002
    scscf = yield cores.scscf()
    scscf.send(_mar(cores, 7, impi=impi, impu=impu))
    yield scscf.next()
    answer = decode(scscf.messages[-1])
    assert answer.find("Experimental-Result").get("Experimental-Result-Code") == expected
    assert answer["User-Name"] == impi and answer.find_all("SIP-Auth-Data-Item") == []
    assert REAL_IMPI.encode() not in scscf.messages[-1]


@pytest_twisted.inlineCallbacks
def test_refusals_at_the_primary_say_nothing_of_why(cores):
    """An unknown user and another partner's user get the same answer (TS 29.229 5001)."""
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.scscf()
    unknown = cores.partner_store.allocate_inbound(
        PrimaryDatabase(PRIMARY, PRIMARY_GW), "out-nobody@primary.example", "sip:out-nobody@primary.example"
    )
    scscf.send(_mar(cores, 1, impi=unknown.inbound_impi, impu=unknown.inbound_impu))
    yield scscf.next()
    cores.primary_role.partners[PARTNER_GW.lower()] = "partner-b"
    scscf.send(_mar(cores, 2))
    yield scscf.next()
    first, second = (decode(raw) for raw in scscf.messages[-2:])
    assert first.get("Error-Message") == second.get("Error-Message")
    assert first.find("Experimental-Result") == second.find("Experimental-Result")


@pytest_twisted.inlineCallbacks
def test_a_digest_scheme_is_refused_at_the_partner_and_never_forwarded(cores):
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.scscf()
    before = len(cores.primary_leg)
    scscf.send(_mar(cores, 3, scheme="SIP Digest"))
    yield scscf.next()
    answer = decode(scscf.messages[-1])
    assert answer.find("Experimental-Result").get("Experimental-Result-Code") == 5006
    assert answer["User-Name"] == cores.inbound.inbound_impi
    assert len(cores.primary_leg) == before  # nothing went to the primary


@pytest_twisted.inlineCallbacks
def test_with_the_primary_core_down_the_scscf_gets_a_server_error_at_once(cores):
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    yield cores.primary.stop()
    yield wait_for(lambda: not cores.partner.peers[PRIMARY_GW].available, what="the interconnect down")
    scscf = yield cores.scscf()
    scscf.send(_mar(cores, 4))
    yield scscf.next()
    raw = scscf.messages[-1]
    answer = decode(raw)
    assert answer.result_code == 3002  # DIAMETER_UNABLE_TO_DELIVER, from the partner gateway
    # with the inbound User-Name: Kamailio reports a server error, not "identity not found"
    assert answer["User-Name"] == cores.inbound.inbound_impi
    assert cores.outbound.outbound_impi.encode() not in raw


@pytest_twisted.inlineCallbacks
def test_a_binding_revoked_while_registered_sends_an_rtr_to_the_scscf(cores):
    """TS 29.228 §6.1.3: the registration ends at once, not at its expiry."""
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    cores.watcher.start()
    yield wait_for(lambda: cores.watcher.last_id is not None, what="the watch started")
    scscf = yield cores.scscf()
    inbound = cores.inbound
    scscf.send(ServerAssignmentRequest(
        hop_by_hop=5, end_to_end=5, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
        destination_realm=PARTNER, user_name=inbound.inbound_impi, public_identity=[inbound.inbound_impu],
        server_name="sip:scscf.partner.example:6060", server_assignment_type=1, user_data_already_available=0,
    ).encode())
    yield scscf.next()
    saa = decode(scscf.messages[-1])
    assert saa.result_code == 2001 and inbound.inbound_impu.encode() in bytes(saa["User-Data"])
    assert cores.partner_store.inbound_registration(inbound.inbound_impi) == "sip:scscf.partner.example:6060"
    cores.partner_store.revoke_inbound(inbound.inbound_impi)  # as `cxgw provision binding revoke` would
    rtr = yield scscf.next(timeout=5.0)
    assert rtr.command_code == 304 and rtr.flags & 0x80
    assert rtr["User-Name"] == inbound.inbound_impi and rtr["Destination-Host"] == SCSCF
    decode(scscf.messages[-1])  # a valid RTR
    scscf.send(answer_for(rtr, origin_host=SCSCF, origin_realm=PARTNER, result_code=2001).encode())
    yield wait_for(lambda: cores.partner_store.inbound_registration(inbound.inbound_impi) is None,
                   what="the registration cleared")
    assert cores.watcher.terminated == 1


# -- nothing crosses the interconnect untranslated (CxService.claims) ------------------------------
@pytest_twisted.inlineCallbacks
def test_an_scscfs_requests_naming_the_primary_realm_are_served_by_the_partner_role(cores):
    """An S-CSCF that addresses the primary's realm (and its gateway) itself: the partner role
    still serves its requests, so the MAR crosses translated and the rest not at all; a plain
    relay would have carried the inbound identities and the S-CSCF's name across."""
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.scscf()
    request = MultimediaAuthRequest(
        hop_by_hop=1, end_to_end=1, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
        destination_realm=PRIMARY, destination_host=PRIMARY_GW, user_name=cores.inbound.inbound_impi,
        public_identity=cores.inbound.inbound_impu, sip_auth_data_item={"sip_authentication_scheme": AKA},
        sip_number_auth_items=1, server_name="sip:scscf.partner.example:6060",
    )
    scscf.send(request.encode())
    yield scscf.next()
    answer = decode(scscf.messages[-1])
    assert answer.result_code == 2001 and answer["User-Name"] == cores.inbound.inbound_impi
    sar = ServerAssignmentRequest(
        hop_by_hop=2, end_to_end=2, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
        destination_realm=PRIMARY, user_name=cores.inbound.inbound_impi, public_identity=[cores.inbound.inbound_impu],
        server_name="sip:scscf.partner.example:6060", server_assignment_type="REGISTRATION",
        user_data_already_available="USER_DATA_NOT_AVAILABLE",
    )
    scscf.send(sar.encode())
    yield scscf.next()
    assert decode(scscf.messages[-1]).result_code == 2001  # from the binding (step 25), at the partner
    towards_primary = b"".join(cores.primary_leg)
    commands = [header_of(frame)[1] for frame in Framer(1 << 24).feed(towards_primary) if header_of(frame)[0] & 0x80]
    assert 303 in commands and 301 not in commands  # the MAR, translated; the SAR stayed
    for secret in (cores.inbound.inbound_impi, cores.inbound.inbound_impu, SCSCF):
        assert secret.encode() not in towards_primary, secret


HSS_HOST = "hss.primary.example"


@pytest.mark.parametrize("command", ["SAR", "MAR of a real user"])
@pytest_twisted.inlineCallbacks
def test_a_partner_gateway_cannot_reach_a_routed_hss_past_the_primary_role(tmp_path, command):
    """The primary role with its HSS in another node (``hss_realm``/``hss_host``, a route to
    it): a partner gateway's request naming the HSS's Destination-Host is still the primary
    role's, refused there (only MAR crosses; a real identity needs an agreement), and the
    HSS never sees it; a route must not carry it past the agreements."""
    net = Net()
    store = open_store(str(tmp_path / "primary.sqlite"))
    store.add_subscriber(Subscriber.new(REAL_IMPI, [REAL_IMPU], K, opc=OPC))  # and no agreement at all
    try:
        hss = Answering(HSS_HOST)
        net.node(HSS_HOST, PRIMARY, peers=[PeerSettings(PRIMARY_GW, PRIMARY, connect=False)], app=hss)
        primary = net.node(PRIMARY_GW, PRIMARY, peers=[PeerSettings(PARTNER_GW, PARTNER, connect=False),
                                                       PeerSettings(HSS_HOST, PRIMARY, "127.0.0.1", net.ports[HSS_HOST])],
                           routes=[route(PRIMARY, HSS_HOST)])
        access = StoreAccess(store, reactor)
        local = Local(PRIMARY_GW, PRIMARY)
        role = PrimaryApplication(access, local, {PARTNER_GW: "partner-a"}, send=primary.send_request,
                                  hss_destination=Destination(PRIMARY, HSS_HOST))
        primary.applications[CX] = CxService(local, primary, primary=role)
        yield wait_for(lambda: primary.peers[HSS_HOST].available, what="the HSS open")
        partner = yield net.raw_peer(net.ports[PRIMARY_GW], host=PARTNER_GW, realm=PARTNER)
        common = dict(hop_by_hop=5, end_to_end=5, session_id=new_session_id(PARTNER_GW), origin_host=PARTNER_GW,
                      origin_realm=PARTNER, destination_realm=PRIMARY, destination_host=HSS_HOST)
        if command == "SAR":
            request = ServerAssignmentRequest(**common, user_name=REAL_IMPI, public_identity=[REAL_IMPU],
                                              server_name="sip:scscf.partner.example", server_assignment_type="REGISTRATION",
                                              user_data_already_available="USER_DATA_NOT_AVAILABLE")
            expected = ("result", 3001)
        else:
            request = MultimediaAuthRequest(**common, user_name=REAL_IMPI, public_identity=REAL_IMPU,
                                            sip_auth_data_item={"sip_authentication_scheme": AKA}, sip_number_auth_items=1,
                                            server_name="sip:scscf.partner.example")
            expected = ("experimental", 5001)
        partner.send(request.encode())
        yield partner.next()
        answer = decode(partner.messages[-1])
        if expected[0] == "result":
            assert answer.result_code == expected[1]
        else:
            assert answer.find("Experimental-Result").get("Experimental-Result-Code") == expected[1]
        assert answer["Origin-Host"] == PRIMARY_GW
        assert hss.requests == []  # nothing reached the HSS
    finally:
        yield net.stop()
        access.close()
