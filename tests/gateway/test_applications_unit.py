"""The Cx applications without sockets: translation as pure functions on bytes, and the
hss, partner and primary roles driven with strictly decoded requests over SQLite stores.

A StoreAccess over SQLite calls the store in the calling thread (``in_process``), so every
Deferred an application returns has fired by the time ``handle_message`` returns, except
where the partner or primary role forwards: there a fake ``send`` records the request and
the test fires the answer by hand. Every answer is decoded strictly (cx_codec.decode
validates the TS 29.229 §6.1 grammar); vectors are checked by a software ISIM
(gateway.testing.isim, TS 33.102 §6.3.3).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from cx_codec import answer_for, decode, error_answer
from cx_codec.commands import (
    LocationInfoRequest,
    MultimediaAuthRequest,
    RegistrationTerminationRequest,
    ServerAssignmentRequest,
    UserAuthorizationRequest,
    new_session_id,
)
from cx_codec.rewrite import top_level
from gateway.applications.cx import Local
from gateway.applications.hss import HssApplication
from gateway.applications.partner import PartnerApplication
from gateway.applications.primary import NOT_SERVED, PrimaryApplication
from gateway.applications.service import CxService
from gateway.applications.storage import StoreAccess
from gateway.applications.translation import (
    Destination,
    Identities,
    Restore,
    restore_of,
    translate_answer,
    translate_request,
)
from gateway.testing.isim import Isim
from hss_store import open_store
from hss_store.allocation import AllocationPolicy
from hss_store.records import Agreement, PrimaryDatabase, Subscriber

K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
K_BOB = bytes.fromhex("0396eb317b6d1c36f19c1c84cd6ffd16")
PRIMARY, PARTNER = "primary.example", "partner.example"
PRIMARY_GW, PARTNER_GW, OTHER_GW = "gw.primary.example", "gw.partner.example", "gw.other.example"
HSS_HOST = "hss.primary.example"
SCSCF, ICSCF = "scscf.partner.example", "icscf.partner.example"
SCSCF_NAME = "sip:scscf.partner.example:6060"
ALICE, ALICE_IMPU, ALICE_TEL = "alice@primary.example", "sip:alice@primary.example", "tel:+4915100000001"
BOB, BOB_IMPU = "bob@primary.example", "sip:bob@primary.example"
AKA, AKA_V2 = "Digest-AKAv1-MD5", "Digest-AKAv2-SHA-256"
DIGEST_SCHEMES = ("SIP Digest", "Digest-MD5", "HTTP_DIGEST_MD5", "NASS-Bundled", "Early-IMS-Security")
VENDOR_3GPP = 10415
# TS 35.208 test set 1, as a vector the primary's HSS might have sent (opaque to translation)
RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
AUTN = bytes.fromhex("55f328b43577b9b94a9ffac354dfafb3")
XRES = bytes.fromhex("a54211d5e3ba50bf")
CK = bytes.fromhex("b40ba9a3c58b2a05bbf0d987b21bf8cb")
IK = bytes.fromhex("f769bcd751044604127672711c6d3441")
ITEM = (612, VENDOR_3GPP)  # SIP-Auth-Data-Item
PROXY_INFO = (284, 0)
ROUTE_RECORD = (282, 0)


# -- helpers ------------------------------------------------------------------------------
class FakeClock:
    """A store clock moved by hand (bindings expire without sleeping)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeSend:
    """DiameterNode.send_request as the roles see it: records each request, returns a
    Deferred the test fires with the answer it crafts."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.waiting: list[Deferred[bytes]] = []

    def __call__(self, data: bytes) -> Deferred[bytes]:
        self.requests.append(data)
        waiting: Deferred[bytes] = Deferred()
        self.waiting.append(waiting)
        return waiting

    @property
    def calls(self) -> int:
        return len(self.requests)


class RecordingHss:
    """An in-process hss role that records what the primary role asks it."""

    def __init__(self, hss: HssApplication) -> None:
        self.hss = hss
        self.messages: list[Any] = []

    def handle_message(self, message, peer):
        self.messages.append(message)
        return self.hss.handle_message(message, peer)


def fired(result: Deferred[bytes]) -> bytes:
    """The result of a Deferred that must have fired already (in-process store)."""
    got: list[Any] = []
    result.addBoth(got.append)
    assert got, "the answer is not ready: an in-process store should answer at once"
    if isinstance(got[0], Failure):
        got[0].raiseException()
    assert isinstance(got[0], bytes), got[0]
    return got[0]


def serve(application: Any, request: bytes, peer: Any = None):
    """What a node does with a request for a local application: a strict decode, then
    handle_message; the answer bytes decoded strictly (a grammar violation raises)."""
    raw = fired(application.handle_message(decode(request), peer))
    answer = decode(raw)
    assert not answer.is_request
    assert (answer.command_code, answer.hop_by_hop, answer.end_to_end) == (
        request[5] << 16 | request[6] << 8 | request[7], int.from_bytes(request[12:16], "big"),
        int.from_bytes(request[16:20], "big"),
    )
    return answer


def peer(host: str) -> SimpleNamespace:
    return SimpleNamespace(host=host)


def experimental(answer) -> int | None:
    found = answer.experimental_result
    if found is None:
        return None
    assert found[0] == VENDOR_3GPP, found  # TS 29.229 §6.2: Cx codes are vendor 10415's
    return found[1]


def mar(impi: str, impu: str, *, scheme: str = AKA, count: int = 1, authorization: bytes | None = None,
        origin: str = SCSCF, realm: str = PRIMARY, hop: int = 1, **fields: Any) -> bytes:
    item: dict[str, object] = {"sip_authentication_scheme": scheme}
    if authorization is not None:
        item["sip_authorization"] = authorization
    return MultimediaAuthRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(origin), origin_host=origin,
        origin_realm=PARTNER, destination_realm=realm, user_name=impi, public_identity=impu,
        sip_auth_data_item=item, sip_number_auth_items=count, server_name=fields.pop("server_name", SCSCF_NAME),
        **fields,
    ).encode()


def sar(impi: str, impus: list[str], assignment: int, *, realm: str = PRIMARY, already: int = 0, hop: int = 2) -> bytes:
    return ServerAssignmentRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(SCSCF), origin_host=SCSCF,
        origin_realm=PARTNER, destination_realm=realm, user_name=impi, public_identity=impus,
        server_name=SCSCF_NAME, server_assignment_type=assignment, user_data_already_available=already,
    ).encode()


def uar(impi: str, impu: str, *, realm: str = PRIMARY, hop: int = 3) -> bytes:
    return UserAuthorizationRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(ICSCF), origin_host=ICSCF,
        origin_realm=PARTNER, destination_realm=realm, user_name=impi, public_identity=impu,
        visited_network_identifier=PARTNER.encode(),
    ).encode()


def lir(impu: str, *, realm: str = PRIMARY, hop: int = 4) -> bytes:
    return LocationInfoRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(ICSCF), origin_host=ICSCF,
        origin_realm=PARTNER, destination_realm=realm, public_identity=impu,
    ).encode()


def vectors(answer) -> list[tuple[bytes, bytes, bytes, bytes]]:
    return [
        tuple(bytes(item.get(name)) for name in ("SIP-Authenticate", "SIP-Authorization", "Confidentiality-Key",
                                                  "Integrity-Key"))
        for item in answer.find_all("SIP-Auth-Data-Item")
    ]


def accepted_by(isim: Isim, answer) -> None:
    """Each vector passes the ISIM (MAC-A, SQN fresh) and RES, CK, IK match (TS 33.102 §6.3.3)."""
    found = vectors(answer)
    assert found
    for authenticate, xres, ck, ik in found:
        response = isim.challenge(authenticate[:16], authenticate[16:])
        assert response.result == "ok", response.result
        assert (response.res, response.ck, response.ik) == (xres, ck, ik)


def raw_avps(data: bytes, key: tuple[int, int]) -> list[bytes]:
    return top_level(data, {key}).get(key, [])


def profile_identities(user_data: bytes) -> tuple[str, list[str]]:
    """PrivateID and the Identity values of an IMSSubscription (TS 29.228 Annex E)."""
    root = ET.fromstring(user_data)
    assert root.tag == "IMSSubscription"
    return root.findtext("PrivateID"), [node.text for node in root.iter("Identity")]


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def primary_store(tmp_path):
    """The primary SIP database: alice (AKAv1 only), bob (AKAv2 first), an agreement for
    partner-a, an outbound binding of alice for partner-a."""
    store = open_store(str(tmp_path / "primary.sqlite"))
    store.add_subscriber(Subscriber.new(ALICE, [ALICE_IMPU, ALICE_TEL], K, opc=OPC))
    store.add_subscriber(Subscriber.new(BOB, [BOB_IMPU], K_BOB, opc=OPC, schemes=[AKA_V2, AKA]))
    store.add_agreement(Agreement("partner-a", "all"))
    store.set_policy(AllocationPolicy("outbound", impi_pattern="out-<random>@primary.example",
                                      impu_pattern="sip:out-<random>@primary.example"))
    yield store
    store.close()


@pytest.fixture
def hss(primary_store):
    return HssApplication(StoreAccess(primary_store, reactor), Local(HSS_HOST, PRIMARY), max_vectors=5)


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def partner_store(tmp_path, clock):
    store = open_store(str(tmp_path / "partner.sqlite"), clock=clock)
    store.set_policy(AllocationPolicy("inbound", impi_pattern="mig-<random>@partner.example",
                                      impu_pattern="sip:mig-<random>@partner.example"))
    yield store
    store.close()


OUT_IMPI, OUT_IMPU = "out-abc@primary.example", "sip:out-abc@primary.example"


@pytest.fixture
def inbound(partner_store):
    return partner_store.allocate_inbound(PrimaryDatabase(PRIMARY, PRIMARY_GW), OUT_IMPI, OUT_IMPU)


@pytest.fixture
def send():
    return FakeSend()


@pytest.fixture
def partner(partner_store, send):
    return PartnerApplication(StoreAccess(partner_store, reactor), Local(PARTNER_GW, PARTNER), send)


# == translation.py =========================================================================
def _scscf_mar(impi="mig-1@partner.example", impu="sip:mig-1@partner.example", *, host: str | None = None,
               route_record=("dra.partner.example",)) -> bytes:
    fields: dict[str, object] = {"proxy_info": [{"proxy_host": "dra.partner.example", "proxy_state": b"\x00state\xff"}]}
    if route_record:
        fields["route_record"] = list(route_record)
    if host is not None:
        fields["destination_host"] = host
    # re-synchronisation: RAND || AUTS in SIP-Authorization must pass byte for byte
    return mar(impi, impu, authorization=RAND + bytes(range(14)), count=2, realm=PARTNER, **fields)


def _primary_maa(request: bytes, impi: str | None, impu: str | None, **fields: Any) -> bytes:
    fields.setdefault("route_record", ["hss.primary.example"])
    if impi is not None:
        fields["user_name"] = impi
    if impu is not None:
        fields["public_identity"] = impu
    return answer_for(
        decode(request), origin_host=PRIMARY_GW, origin_realm=PRIMARY, result_code=2001,
        sip_number_auth_items=1,
        sip_auth_data_item=[{"sip_item_number": 1, "sip_authentication_scheme": AKA, "sip_authenticate": RAND + AUTN,
                             "sip_authorization": XRES, "confidentiality_key": CK, "integrity_key": IK}],
        **fields,
    ).encode()


def test_translate_request_replaces_identities_and_hides_the_topology():
    original = _scscf_mar()
    before = decode(original)
    primary = Identities(OUT_IMPI, OUT_IMPU)
    out = translate_request(original, primary, Destination(PRIMARY, PRIMARY_GW), Local(PARTNER_GW, PARTNER),
                            hide_topology=True)
    message = decode(out)  # strictly: still a valid MAR
    assert message["User-Name"] == OUT_IMPI and message["Public-Identity"] == OUT_IMPU
    assert message["Destination-Realm"] == PRIMARY
    assert message["Destination-Host"] == PRIMARY_GW  # added: the request had none
    # topology hiding: nothing of the partner's inside crosses the interconnect
    assert message["Origin-Host"] == PARTNER_GW and message["Origin-Realm"] == PARTNER
    assert message["Session-Id"] != before["Session-Id"]
    assert str(message["Session-Id"]).startswith(PARTNER_GW + ";")  # RFC 6733 §8.8: ours
    assert message["Server-Name"] == f"sip:{PARTNER_GW}"
    assert message.find_all("Route-Record") == []
    for hidden in (SCSCF, "mig-1@partner.example", "sip:mig-1@partner.example", SCSCF_NAME):
        assert hidden.encode() not in out.replace(b"dra.partner.example", b""), hidden
    # opaque parts byte for byte: vectors / RAND||AUTS, Proxy-Info (RFC 6733 §6.7.3)
    assert raw_avps(out, ITEM) == raw_avps(original, ITEM)
    assert raw_avps(out, PROXY_INFO) == raw_avps(original, PROXY_INFO)
    assert (message.hop_by_hop, message.end_to_end, message.flags) == (before.hop_by_hop, before.end_to_end, before.flags)


def test_translate_request_without_topology_hiding_keeps_session_origin_and_route_records():
    original = _scscf_mar(route_record=("dra.partner.example", "dra2.partner.example"))
    before = decode(original)
    out = translate_request(original, Identities(OUT_IMPI, OUT_IMPU), Destination(PRIMARY, PRIMARY_GW),
                            Local(PARTNER_GW, PARTNER), hide_topology=False)
    message = decode(out)
    assert message["User-Name"] == OUT_IMPI and message["Public-Identity"] == OUT_IMPU
    for name in ("Session-Id", "Origin-Host", "Origin-Realm", "Server-Name"):
        assert message[name] == before[name], name
    assert [avp.value for avp in message.find_all("Route-Record")] == ["dra.partner.example", "dra2.partner.example"]
    assert raw_avps(out, ITEM) == raw_avps(original, ITEM)


def test_translate_request_replaces_or_removes_destination_host():
    original = _scscf_mar(host="hss.partner.example")
    replaced = decode(translate_request(original, Identities(OUT_IMPI, OUT_IMPU), Destination(PRIMARY, PRIMARY_GW),
                                        Local(PARTNER_GW, PARTNER), hide_topology=True))
    assert replaced.find_all("Destination-Host")[0].value == PRIMARY_GW
    assert len(replaced.find_all("Destination-Host")) == 1
    # a destination named by realm only: the partner's Destination-Host must not go along
    removed = decode(translate_request(original, Identities(OUT_IMPI, OUT_IMPU), Destination(PRIMARY),
                                       Local(PARTNER_GW, PARTNER), hide_topology=True))
    assert "Destination-Host" not in removed and removed["Destination-Realm"] == PRIMARY
    # no destination: as it was (the primary role handing to its in-process HSS)
    kept = decode(translate_request(original, Identities(ALICE, ALICE_IMPU), None, Local(PRIMARY_GW, PRIMARY),
                                    hide_topology=False))
    assert kept["Destination-Host"] == "hss.partner.example" and kept["Destination-Realm"] == PARTNER
    assert kept["User-Name"] == ALICE


def test_hidden_requests_of_two_originators_do_not_share_origin_host_and_end_to_end():
    """RFC 6733 §3: the End-to-End id is unique per originator; (Origin-Host, End-to-End)
    is what duplicate detection keys on (§6.1.3). With topology hiding the gateway becomes
    the originator, so two S-CSCFs that picked the same End-to-End id must not produce two
    requests the primary core takes for one retransmitted; the answer must carry the
    End-to-End id its requester sent (§6.2)."""
    local = Local(PARTNER_GW, PARTNER)
    one = mar("mig-1@partner.example", "sip:mig-1@partner.example", origin=SCSCF, realm=PARTNER, hop=77)
    two = mar("mig-2@partner.example", "sip:mig-2@partner.example", origin="scscf2.partner.example",
              realm=PARTNER, hop=77)
    sent = [decode(translate_request(request, Identities(f"out-{n}@primary.example", f"sip:out-{n}@primary.example"),
                                     Destination(PRIMARY, PRIMARY_GW), local, hide_topology=True,
                                     end_to_end=0x1000 + n))  # as PartnerApplication gives: ids of its own
            for n, request in ((1, one), (2, two))]
    assert sent[0]["Origin-Host"] == sent[1]["Origin-Host"] == PARTNER_GW
    assert sent[0].end_to_end != sent[1].end_to_end  # else the primary answers both with one answer
    for request, forwarded in zip((one, two), sent, strict=True):
        answer = _primary_maa(forwarded.encode(), str(forwarded["User-Name"]), str(forwarded["Public-Identity"]))
        inbound = Identities(str(decode(request)["User-Name"]), str(decode(request)["Public-Identity"]))
        back = decode(translate_answer(answer, restore_of(request, inbound, True), local, hide_topology=True))
        assert back.end_to_end == decode(request).end_to_end


def test_restore_of_keeps_the_session_id_only_when_it_is_replaced():
    original = _scscf_mar()
    inbound = Identities("mig-1@partner.example", "sip:mig-1@partner.example")
    hidden = restore_of(original, inbound, True)
    assert hidden.identities == inbound
    assert hidden.session_id == str(decode(original)["Session-Id"]).encode()
    assert restore_of(original, inbound, False) == Restore(inbound, None)


def test_translate_answer_restores_identities_and_session_and_hides_the_primary():
    inbound = Identities("mig-1@partner.example", "sip:mig-1@partner.example")
    original = _scscf_mar()
    local = Local(PARTNER_GW, PARTNER)
    forwarded = translate_request(original, Identities(OUT_IMPI, OUT_IMPU), Destination(PRIMARY, PRIMARY_GW), local,
                                  hide_topology=True)
    answer = _primary_maa(forwarded, OUT_IMPI, OUT_IMPU)
    back = translate_answer(answer, restore_of(original, inbound, True), local, hide_topology=True)
    message = decode(back)
    assert message.result_code == 2001
    assert message["Session-Id"] == decode(original)["Session-Id"]
    assert message["User-Name"] == inbound.impi and message["Public-Identity"] == inbound.impu
    assert message["Origin-Host"] == PARTNER_GW and message["Origin-Realm"] == PARTNER
    assert message.find_all("Route-Record") == []
    assert raw_avps(back, ITEM) == raw_avps(answer, ITEM)  # RAND||AUTN, XRES, CK, IK untouched
    assert raw_avps(back, PROXY_INFO) == raw_avps(original, PROXY_INFO)
    for hidden in (OUT_IMPI, OUT_IMPU, PRIMARY_GW, "hss.primary.example"):
        assert hidden.encode() not in back, hidden


def test_translate_answer_without_topology_hiding_keeps_the_origin():
    inbound = Identities(OUT_IMPI, OUT_IMPU)
    request = mar(ALICE, ALICE_IMPU)
    answer = _primary_maa(request, ALICE, ALICE_IMPU)
    message = decode(translate_answer(answer, Restore(inbound, None), Local(PRIMARY_GW, PRIMARY), hide_topology=False))
    assert message["User-Name"] == OUT_IMPI and message["Public-Identity"] == OUT_IMPU
    assert message["Origin-Host"] == PRIMARY_GW  # as the answer had it
    assert message["Session-Id"] == decode(request)["Session-Id"]
    assert [avp.value for avp in message.find_all("Route-Record")] == ["hss.primary.example"]


@pytest.mark.parametrize("kind", ["maa 5001 without identities", "3002 of a relay", "maa without public identity"])
def test_translate_answer_adds_identities_the_answer_lacks(kind):
    """Kamailio reads User-Name before the result: an answer without it gets the requester's."""
    inbound = Identities("mig-1@partner.example", "sip:mig-1@partner.example")
    original = _scscf_mar()
    local = Local(PARTNER_GW, PARTNER)
    forwarded = decode(translate_request(original, Identities(OUT_IMPI, OUT_IMPU), Destination(PRIMARY, PRIMARY_GW),
                                         local, hide_topology=True))
    if kind == "maa 5001 without identities":
        answer = answer_for(forwarded, origin_host=PRIMARY_GW, origin_realm=PRIMARY,
                            experimental_result=(VENDOR_3GPP, 5001)).encode()
    elif kind == "3002 of a relay":
        # RFC 6733 §7.1.3: E bit, the answer-message of §7.2 (no identities there)
        bare = forwarded
        bare.remove("User-Name")
        bare.remove("Public-Identity")
        answer = error_answer(bare, 3002, origin_host=PARTNER_GW, origin_realm=PARTNER,
                              error_message="no route").encode()
        assert b"out-abc" not in answer
    else:
        answer = _primary_maa(forwarded.encode(), OUT_IMPI, None)
    back = translate_answer(answer, restore_of(original, inbound, True), local, hide_topology=True)
    message = decode(back)
    assert message["User-Name"] == inbound.impi
    assert message["Public-Identity"] == inbound.impu
    assert len(message.find_all("User-Name")) == 1 and len(message.find_all("Public-Identity")) == 1
    assert message["Session-Id"] == decode(original)["Session-Id"]


# identities of varied lengths (padding of 0..3 bytes on each), as TS 23.003 §13.3/§13.4 write them
_USER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._-+", min_size=1, max_size=64).filter(
    lambda user: not user.startswith(".")
)
_LABEL = st.from_regex(r"\A[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?\Z")
_REALM = st.lists(_LABEL, min_size=1, max_size=5).map(".".join)


@st.composite
def _identities(draw) -> Identities:
    user, realm = draw(_USER), draw(_REALM)
    uri_user = draw(st.one_of(st.just(user), _USER))
    return Identities(f"{user}@{realm}", f"sip:{uri_user}@{draw(st.one_of(st.just(realm), _REALM))}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inbound=_identities(), primary=_identities(), hide=st.booleans(), with_host=st.booleans())
def test_translation_round_trips_any_identities(inbound, primary, hide, with_host):
    local = Local(PARTNER_GW, PARTNER)
    original = _scscf_mar(inbound.impi, inbound.impu, host="hss.partner.example" if with_host else None)
    forwarded = translate_request(original, primary, Destination(PRIMARY, PRIMARY_GW), local, hide_topology=hide)
    there = decode(forwarded)
    assert (there["User-Name"], there["Public-Identity"]) == (primary.impi, primary.impu)
    assert raw_avps(forwarded, ITEM) == raw_avps(original, ITEM)
    answer = _primary_maa(forwarded, primary.impi, primary.impu)
    back = decode(translate_answer(answer, restore_of(original, inbound, hide), local, hide_topology=hide))
    assert (back["User-Name"], back["Public-Identity"]) == (inbound.impi, inbound.impu)
    assert back["Session-Id"] == decode(original)["Session-Id"]
    assert raw_avps(back.encode(), ITEM) == raw_avps(answer, ITEM)


# == hss.py ===================================================================================
def test_hss_mar_gives_the_vectors_asked_for_and_the_isim_accepts_them(hss):
    answer = serve(hss, mar(ALICE, ALICE_IMPU, count=3))
    assert answer.result_code == 2001 and answer.experimental_result is None
    assert answer["User-Name"] == ALICE and answer["Public-Identity"] == ALICE_IMPU
    assert answer["Origin-Host"] == HSS_HOST and answer["Origin-Realm"] == PRIMARY
    items = answer.find_all("SIP-Auth-Data-Item")
    assert answer["SIP-Number-Auth-Items"] == len(items) == 3
    assert [item.get("SIP-Item-Number") for item in items] == [1, 2, 3]
    assert {item.get("SIP-Authentication-Scheme") for item in items} == {AKA}
    accepted_by(Isim(K, OPC), answer)


def test_hss_mar_caps_the_vectors_at_max_vectors(hss):
    """TS 29.228 §6.3.1: the HSS may return fewer items than asked; asking more is no error."""
    answer = serve(hss, mar(ALICE, ALICE_IMPU, count=20))
    assert answer.result_code == 2001
    assert answer["SIP-Number-Auth-Items"] == len(answer.find_all("SIP-Auth-Data-Item")) == 5
    accepted_by(Isim(K, OPC), answer)


@pytest.mark.parametrize(("impi", "impu", "key", "scheme"), [(ALICE, ALICE_IMPU, K, AKA), (BOB, BOB_IMPU, K_BOB, AKA_V2)])
def test_hss_mar_resolves_the_unknown_scheme_to_the_subscribers(hss, impi, impu, key, scheme):
    """TS 29.229 §6.3.9: "Unknown" asks the HSS to pick; the items say which it picked."""
    answer = serve(hss, mar(impi, impu, scheme="Unknown", count=2))
    assert answer.result_code == 2001
    assert [item.get("SIP-Authentication-Scheme") for item in answer.find_all("SIP-Auth-Data-Item")] == [scheme] * 2
    accepted_by(Isim(key, OPC), answer)


def test_hss_mar_for_an_unknown_user_is_5001_with_the_identities_echoed(hss):
    answer = serve(hss, mar("nobody@primary.example", "sip:nobody@primary.example"))
    assert answer.result_code is None and experimental(answer) == 5001  # DIAMETER_ERROR_USER_UNKNOWN
    assert answer["User-Name"] == "nobody@primary.example"
    assert answer["Public-Identity"] == "sip:nobody@primary.example"
    assert answer.find_all("SIP-Auth-Data-Item") == [] and not answer.is_error


def test_hss_mar_with_an_impu_of_another_user_is_5002(hss, primary_store):
    before = primary_store.get_subscriber(ALICE).sqn
    answer = serve(hss, mar(ALICE, BOB_IMPU))
    assert experimental(answer) == 5002  # DIAMETER_ERROR_IDENTITIES_DONT_MATCH
    assert answer["User-Name"] == ALICE and answer["Public-Identity"] == BOB_IMPU
    assert primary_store.get_subscriber(ALICE).sqn == before


@pytest.mark.parametrize("scheme", [AKA_V2, "SIP Digest"])
def test_hss_mar_with_a_scheme_the_subscriber_may_not_use_is_5006(hss, scheme):
    answer = serve(hss, mar(ALICE, ALICE_IMPU, scheme=scheme))
    assert experimental(answer) == 5006  # DIAMETER_ERROR_AUTH_SCHEME_NOT_SUPPORTED
    assert answer["User-Name"] == ALICE and answer.find_all("SIP-Auth-Data-Item") == []


def test_hss_mar_stores_the_server_name(hss, primary_store):
    assert primary_store.get_scscf_name(ALICE) is None
    serve(hss, mar(ALICE, ALICE_IMPU))
    assert primary_store.get_scscf_name(ALICE) == SCSCF_NAME  # TS 29.228 §6.3.1


def _synch_failure(hss, isim: Isim) -> tuple[bytes, bytes]:
    isim.advance(5000)  # the card is ahead of the HSS (another network, a restored backup)
    answer = serve(hss, mar(ALICE, ALICE_IMPU))
    authenticate = vectors(answer)[0][0]
    response = isim.challenge(authenticate[:16], authenticate[16:])
    assert response.result == "synch failure"
    return authenticate[:16], response.auts


def test_hss_mar_resynchronises_from_an_auts_made_by_the_isim(hss, primary_store):
    isim = Isim(K, OPC)
    rand, auts = _synch_failure(hss, isim)
    answer = serve(hss, mar(ALICE, ALICE_IMPU, authorization=rand + auts, count=2))  # TS 29.229 §6.3.11
    assert answer.result_code == 2001 and answer["SIP-Number-Auth-Items"] == 2
    accepted_by(isim, answer)
    assert primary_store.get_subscriber(ALICE).sqn >> 5 > 5000  # SEQ past the card's (TS 33.102 Annex C)


def test_hss_mar_with_a_corrupted_auts_is_5003_and_leaves_the_sqn(hss, primary_store):
    isim = Isim(K, OPC)
    rand, auts = _synch_failure(hss, isim)
    primary_store.set_scscf_name(ALICE, None)
    before = primary_store.get_subscriber(ALICE).sqn
    corrupted = auts[:-1] + bytes([auts[-1] ^ 0x01])  # MAC-S no longer verifies (TS 33.102 §6.3.5)
    answer = serve(hss, mar(ALICE, ALICE_IMPU, authorization=rand + corrupted))
    assert answer.result_code == 5003  # DIAMETER_AUTHORIZATION_REJECTED (RFC 6733 §7.1.5)
    assert answer.experimental_result is None and not answer.is_error
    assert answer["User-Name"] == ALICE and answer.find_all("SIP-Auth-Data-Item") == []
    assert primary_store.get_subscriber(ALICE).sqn == before
    assert primary_store.get_scscf_name(ALICE) is None  # nothing of the MAR was kept


def test_hss_mar_with_a_malformed_sip_authorization_is_5012(hss, primary_store):
    before = primary_store.get_subscriber(ALICE).sqn
    answer = serve(hss, mar(ALICE, ALICE_IMPU, authorization=b"\x01" * 7))  # not RAND || AUTS (30 bytes)
    assert answer.result_code == 5012  # DIAMETER_UNABLE_TO_COMPLY
    assert primary_store.get_subscriber(ALICE).sqn == before


def test_hss_sar_registration_stores_the_name_and_returns_the_profile(hss, primary_store):
    answer = serve(hss, sar(ALICE, [ALICE_IMPU], 1))  # REGISTRATION, TS 29.229 §6.3.15
    assert answer.result_code == 2001
    assert answer["User-Name"] == ALICE
    private, public = profile_identities(bytes(answer["User-Data"]))
    assert private == ALICE and public == [ALICE_IMPU, ALICE_TEL]  # the implicit registration set
    assert primary_store.get_scscf_name(ALICE) == SCSCF_NAME


def test_hss_sar_with_user_data_already_available_has_no_profile(hss, primary_store):
    answer = serve(hss, sar(ALICE, [ALICE_IMPU], 2, already=1))  # RE_REGISTRATION, §6.3.26
    assert answer.result_code == 2001 and "User-Data" not in answer
    assert primary_store.get_scscf_name(ALICE) == SCSCF_NAME


def test_hss_sar_user_deregistration_clears_the_name(hss, primary_store):
    serve(hss, sar(ALICE, [ALICE_IMPU], 1))
    answer = serve(hss, sar(ALICE, [ALICE_IMPU], 5))  # USER_DEREGISTRATION
    assert answer.result_code == 2001 and "User-Data" not in answer
    assert primary_store.get_scscf_name(ALICE) is None


@pytest.mark.parametrize(("impi", "impus", "code"), [
    ("nobody@primary.example", ["sip:nobody@primary.example"], 5001),
    (ALICE, [BOB_IMPU], 5002),
])
def test_hss_sar_identity_errors(hss, primary_store, impi, impus, code):
    answer = serve(hss, sar(impi, impus, 1))
    assert experimental(answer) == code
    assert primary_store.get_scscf_name(ALICE) is None


def test_hss_uar_first_then_subsequent_registration(hss):
    first = serve(hss, uar(ALICE, ALICE_IMPU))
    assert first.result_code is None and experimental(first) == 2001  # DIAMETER_FIRST_REGISTRATION
    assert "Server-Name" not in first
    serve(hss, sar(ALICE, [ALICE_IMPU], 1))
    second = serve(hss, uar(ALICE, ALICE_TEL))
    assert experimental(second) == 2002  # DIAMETER_SUBSEQUENT_REGISTRATION
    assert second["Server-Name"] == SCSCF_NAME


@pytest.mark.parametrize(("impi", "impu", "code"), [
    ("nobody@primary.example", "sip:nobody@primary.example", 5001), (ALICE, BOB_IMPU, 5002),
])
def test_hss_uar_identity_errors(hss, impi, impu, code):
    assert experimental(serve(hss, uar(impi, impu))) == code


def test_hss_lir_names_the_serving_scscf(hss):
    """TS 29.228 §6.2.1. Needs HssStore.impi_of_impu."""
    not_yet = serve(hss, lir(ALICE_TEL))
    assert experimental(not_yet) == 5003  # DIAMETER_ERROR_IDENTITY_NOT_REGISTERED
    serve(hss, sar(ALICE, [ALICE_IMPU], 1))
    answer = serve(hss, lir(ALICE_TEL))
    assert answer.result_code == 2001 and answer["Server-Name"] == SCSCF_NAME
    unknown = serve(hss, lir("sip:nobody@primary.example"))
    assert experimental(unknown) == 5001


def test_hss_refuses_commands_an_hss_does_not_serve(hss):
    rtr = RegistrationTerminationRequest(
        hop_by_hop=9, end_to_end=9, session_id=new_session_id(SCSCF), origin_host=SCSCF, origin_realm=PARTNER,
        destination_host=HSS_HOST, destination_realm=PRIMARY, user_name=ALICE,
        deregistration_reason={"reason_code": 0},
    ).encode()
    answer = serve(hss, rtr)
    assert answer.result_code == 3001 and answer.is_error  # DIAMETER_COMMAND_UNSUPPORTED


# == partner.py ===============================================================================
def test_partner_forwards_a_mar_with_the_primary_identities_and_restores_the_inbound_ones(partner, send, inbound):
    request = _scscf_mar(inbound.inbound_impi, inbound.inbound_impu)
    pending = partner.handle_message(decode(request), peer(SCSCF))
    assert send.calls == 1
    forwarded = decode(send.requests[0])  # strictly: a valid MAR towards the primary
    assert forwarded["User-Name"] == OUT_IMPI and forwarded["Public-Identity"] == OUT_IMPU  # step 18
    assert forwarded["Destination-Realm"] == PRIMARY and forwarded["Destination-Host"] == PRIMARY_GW
    assert forwarded["Origin-Host"] == PARTNER_GW and forwarded.find_all("Route-Record") == []
    for hidden in (inbound.inbound_impi, inbound.inbound_impu, SCSCF_NAME):
        assert hidden.encode() not in send.requests[0], hidden
    assert raw_avps(send.requests[0], ITEM) == raw_avps(request, ITEM)
    crafted = _primary_maa(send.requests[0], OUT_IMPI, OUT_IMPU)
    send.waiting[0].callback(crafted)
    raw = fired(pending)
    answer = decode(raw)
    assert answer.result_code == 2001
    assert answer["User-Name"] == inbound.inbound_impi and answer["Public-Identity"] == inbound.inbound_impu  # step 20
    assert answer["Session-Id"] == decode(request)["Session-Id"]
    assert answer["Origin-Host"] == PARTNER_GW
    assert raw_avps(raw, ITEM) == raw_avps(crafted, ITEM)
    assert OUT_IMPI.encode() not in raw and PRIMARY_GW.encode() not in raw
    assert partner.outcomes == {"forwarded": 1}


def test_partner_passes_the_primarys_refusal_back_with_the_inbound_identities(partner, send, inbound):
    pending = partner.handle_message(decode(mar(inbound.inbound_impi, inbound.inbound_impu, realm=PARTNER)), peer(SCSCF))
    refusal = answer_for(decode(send.requests[0]), origin_host=PRIMARY_GW, origin_realm=PRIMARY,
                         experimental_result=(VENDOR_3GPP, 5001), user_name=OUT_IMPI, public_identity=OUT_IMPU)
    send.waiting[0].callback(refusal.encode())
    answer = decode(fired(pending))
    assert experimental(answer) == 5001 and answer["User-Name"] == inbound.inbound_impi


@pytest.mark.parametrize("case", ["never bound", "revoked", "expired"])
def test_partner_mar_without_an_active_binding_is_5001_and_not_forwarded(partner, partner_store, send, clock, case):
    if case == "never bound":
        impi, impu = "mig-nobody@partner.example", "sip:mig-nobody@partner.example"
    else:
        if case == "expired":
            partner_store.set_policy(AllocationPolicy("inbound", impi_pattern="mig-<random>@partner.example",
                                                      impu_pattern="sip:mig-<random>@partner.example", ttl_seconds=60))
        binding = partner_store.allocate_inbound(PrimaryDatabase(PRIMARY, PRIMARY_GW), OUT_IMPI, OUT_IMPU)
        impi, impu = binding.inbound_impi, binding.inbound_impu
        if case == "revoked":
            partner_store.revoke_inbound(impi)
        else:
            assert binding.expires_at is not None
            clock.now = binding.expires_at + 1
    answer = serve(partner, mar(impi, impu, realm=PARTNER), peer(SCSCF))
    assert experimental(answer) == 5001
    assert answer["User-Name"] == impi and answer["Public-Identity"] == impu
    assert send.calls == 0


def test_partner_mar_with_an_impu_not_bound_with_the_impi_is_5002(partner, send, inbound):
    answer = serve(partner, mar(inbound.inbound_impi, "sip:someone-else@partner.example", realm=PARTNER), peer(SCSCF))
    assert experimental(answer) == 5002
    assert answer["User-Name"] == inbound.inbound_impi
    assert send.calls == 0


@pytest.mark.parametrize("scheme", DIGEST_SCHEMES)
def test_partner_refuses_digest_schemes_with_5006_and_never_forwards(partner, send, inbound, scheme):
    """TS 29.229 §6.3.9: HA1 = MD5(username:realm:password) binds the user name; it cannot
    survive a translation of the identities, so only IMS-AKA is served to migrated users."""
    answer = serve(partner, mar(inbound.inbound_impi, inbound.inbound_impu, scheme=scheme, realm=PARTNER), peer(SCSCF))
    assert experimental(answer) == 5006
    assert answer["User-Name"] == inbound.inbound_impi
    assert send.calls == 0


def test_partner_answers_sar_uar_lir_of_a_migrated_user_locally(partner, partner_store, send, inbound):
    impi, impu = inbound.inbound_impi, inbound.inbound_impu
    first = serve(partner, uar(impi, impu, realm=PARTNER), peer(ICSCF))
    assert experimental(first) == 2001 and "Server-Name" not in first
    assert experimental(serve(partner, lir(impu, realm=PARTNER), peer(ICSCF))) == 5003
    registered = serve(partner, sar(impi, [impu], 1, realm=PARTNER), peer(SCSCF))  # step 25
    assert registered.result_code == 2001 and registered["User-Name"] == impi
    private, public = profile_identities(bytes(registered["User-Data"]))
    assert (private, public) == (impi, [impu])  # only inbound identities in the partner's profile
    assert partner_store.inbound_registration(impi) == SCSCF_NAME
    second = serve(partner, uar(impi, impu, realm=PARTNER), peer(ICSCF))
    assert experimental(second) == 2002 and second["Server-Name"] == SCSCF_NAME
    located = serve(partner, lir(impu, realm=PARTNER), peer(ICSCF))
    assert located.result_code == 2001 and located["Server-Name"] == SCSCF_NAME
    deregistered = serve(partner, sar(impi, [impu], 5, realm=PARTNER), peer(SCSCF))
    assert deregistered.result_code == 2001
    assert partner_store.inbound_registration(impi) is None
    assert send.calls == 0  # nothing of this crossed the interconnect
    for raw in (OUT_IMPI, OUT_IMPU):
        assert raw.encode() not in registered.encode()


def test_partner_sar_for_an_unknown_user_is_5001(partner, send):
    answer = serve(partner, sar("mig-nobody@partner.example", ["sip:mig-nobody@partner.example"], 1, realm=PARTNER),
                   peer(SCSCF))
    assert experimental(answer) == 5001 and send.calls == 0


# == primary.py ===============================================================================
@pytest.fixture
def outbound(primary_store):
    return primary_store.allocate_outbound(ALICE, ALICE_IMPU, "partner-a")


@pytest.fixture
def recording_hss(hss):
    return RecordingHss(hss)


@pytest.fixture
def primary(primary_store, recording_hss):
    return PrimaryApplication(StoreAccess(primary_store, reactor), Local(PRIMARY_GW, PRIMARY),
                              {PARTNER_GW: "partner-a", OTHER_GW: "partner-b", "gw.third.example": "partner-c"},
                              hss=recording_hss)


def _from_partner(impi: str, impu: str, **fields: Any) -> bytes:
    """A MAR as the partner gateway sends it across the interconnect (topology hidden)."""
    return mar(impi, impu, origin=PARTNER_GW, realm=PRIMARY, destination_host=PRIMARY_GW,
               server_name=f"sip:{PARTNER_GW}", **fields)


def test_primary_serves_an_outbound_binding_of_this_partner_with_the_real_identities(primary, recording_hss, outbound):
    answer = serve(primary, _from_partner(outbound.outbound_impi, outbound.outbound_impu, count=2), peer(PARTNER_GW))
    assert answer.result_code == 2001
    (asked,) = recording_hss.messages
    assert asked["User-Name"] == ALICE and asked["Public-Identity"] == ALICE_IMPU  # step 19: the real user
    # back with the identities the partner sent, from the primary gateway
    assert answer["User-Name"] == outbound.outbound_impi and answer["Public-Identity"] == outbound.outbound_impu
    assert answer["Origin-Host"] == PRIMARY_GW
    assert ALICE.encode() not in answer.encode() and HSS_HOST.encode() not in answer.encode()
    accepted_by(Isim(K, OPC), answer)
    assert primary.outcomes == {"answered": 1}


def test_primary_with_a_routed_hss_sends_the_real_identities_there(primary_store, outbound, send):
    primary = PrimaryApplication(StoreAccess(primary_store, reactor), Local(PRIMARY_GW, PRIMARY),
                                 {PARTNER_GW: "partner-a"}, send=send, hss_destination=Destination(PRIMARY, HSS_HOST))
    request = _from_partner(outbound.outbound_impi, outbound.outbound_impu)
    pending = primary.handle_message(decode(request), peer(PARTNER_GW))
    (forwarded,) = (decode(raw) for raw in send.requests)
    assert forwarded["User-Name"] == ALICE and forwarded["Public-Identity"] == ALICE_IMPU
    assert forwarded["Destination-Host"] == HSS_HOST and forwarded["Destination-Realm"] == PRIMARY
    send.waiting[0].callback(_primary_maa(send.requests[0], ALICE, ALICE_IMPU, route_record=[HSS_HOST]))
    answer = decode(fired(pending))
    assert answer.result_code == 2001
    assert answer["User-Name"] == outbound.outbound_impi and answer["Public-Identity"] == outbound.outbound_impu
    assert answer["Origin-Host"] == PRIMARY_GW and answer.find_all("Route-Record") == []
    assert answer["Session-Id"] == decode(request)["Session-Id"]


def test_primary_refuses_another_partners_binding_with_5001(primary, primary_store, recording_hss):
    primary_store.add_agreement(Agreement("partner-b", "all"))
    theirs = primary_store.allocate_outbound(ALICE, ALICE_IMPU, "partner-b")
    answer = serve(primary, _from_partner(theirs.outbound_impi, theirs.outbound_impu), peer(PARTNER_GW))
    assert experimental(answer) == 5001 and answer["User-Name"] == theirs.outbound_impi
    assert recording_hss.messages == []


def test_primary_serves_a_real_identity_under_an_agreement(primary, recording_hss):
    answer = serve(primary, _from_partner(ALICE, ALICE_TEL), peer(PARTNER_GW))
    assert answer.result_code == 2001
    assert answer["User-Name"] == ALICE and answer["Public-Identity"] == ALICE_TEL
    assert recording_hss.messages[0]["User-Name"] == ALICE
    accepted_by(Isim(K, OPC), answer)


def test_primary_refuses_a_real_identity_without_an_agreement(primary, recording_hss):
    answer = serve(primary, _from_partner(ALICE, ALICE_IMPU), peer("gw.third.example"))  # partner-c: none
    assert experimental(answer) == 5001
    assert recording_hss.messages == []


def test_primary_answers_every_refusal_with_the_same_5001(primary, primary_store, outbound):
    """Neither the Experimental-Result nor the Error-Message tells an unknown user from
    another partner's, a revoked one or a user without agreement (TS 29.229 5001)."""
    primary_store.add_agreement(Agreement("partner-b", "all"))
    theirs = primary_store.allocate_outbound(BOB, BOB_IMPU, "partner-b")
    revoked = primary_store.allocate_outbound(BOB, BOB_IMPU, "partner-a")
    primary_store.revoke_outbound(revoked.outbound_impi)
    cases = {
        "unknown under an agreement for all": (PARTNER_GW, "out-nobody@primary.example", "sip:out-nobody@primary.example"),
        "unknown without agreement": ("gw.third.example", "out-nobody@primary.example", "sip:out-nobody@primary.example"),
        "another partner's binding": (PARTNER_GW, theirs.outbound_impi, theirs.outbound_impu),
        "revoked binding": (PARTNER_GW, revoked.outbound_impi, revoked.outbound_impu),
        "real user without agreement": ("gw.third.example", ALICE, ALICE_IMPU),
    }
    refusals = {}
    for case, (host, impi, impu) in cases.items():
        answer = serve(primary, _from_partner(impi, impu), peer(host))
        assert experimental(answer) == 5001, case
        assert answer["User-Name"] == impi, case  # the partner's own identity echoed, nothing else
        refusals[case] = (answer.get("Error-Message"), answer.find("Experimental-Result").encode(),
                          tuple(sorted(avp.name for avp in answer)))
    assert len(set(refusals.values())) == 1, refusals
    # the MAA grammar (TS 29.229 §6.1.8) has no Error-Message: if one is ever added, the same one
    assert refusals["revoked binding"][0] in (None, NOT_SERVED)


def test_primary_outbound_binding_with_the_wrong_impu_is_5002(primary, outbound, recording_hss):
    answer = serve(primary, _from_partner(outbound.outbound_impi, "sip:out-other@primary.example"), peer(PARTNER_GW))
    assert experimental(answer) == 5002
    assert recording_hss.messages == []


def test_primary_refuses_digest_from_partners(primary, outbound, recording_hss):
    answer = serve(primary, _from_partner(outbound.outbound_impi, outbound.outbound_impu, scheme="SIP Digest"),
                   peer(PARTNER_GW))
    assert experimental(answer) == 5006 and recording_hss.messages == []


@pytest.mark.parametrize("command", ["SAR", "UAR", "LIR"])
def test_primary_refuses_commands_other_than_mar_from_partners(primary, primary_store, outbound, recording_hss, command):
    """The interconnect carries the authentication exchange only (TR 23.781 step 18)."""
    request = {"SAR": lambda: sar(ALICE, [ALICE_IMPU], 1), "UAR": lambda: uar(ALICE, ALICE_IMPU),
               "LIR": lambda: lir(ALICE_IMPU)}[command]()
    answer = serve(primary, request, peer(PARTNER_GW))
    assert answer.result_code == 3001 and answer.is_error  # DIAMETER_COMMAND_UNSUPPORTED, RFC 6733 §7.1.3
    assert recording_hss.messages == []
    assert primary_store.get_scscf_name(ALICE) is None


def test_primary_refuses_a_mar_from_a_peer_that_is_no_partner(primary, outbound, recording_hss):
    answer = serve(primary, _from_partner(outbound.outbound_impi, outbound.outbound_impu), peer("gw.stranger.example"))
    assert answer.result_code == 3001 and recording_hss.messages == []


# == service.py ===============================================================================
def test_service_sends_partner_peers_to_primary_and_others_to_hss(primary, hss, outbound, primary_store):
    service = CxService(Local(PRIMARY_GW, PRIMARY), None, hss=hss, primary=primary)
    outbound_mar = _from_partner(outbound.outbound_impi, outbound.outbound_impu)
    # a partner gateway (any case: Diameter identities compare case-insensitively, RFC 6733 §4.3)
    for host in (PARTNER_GW, PARTNER_GW.upper()):
        answer = serve(service, outbound_mar, peer(host))
        assert answer.result_code == 2001 and answer["User-Name"] == outbound.outbound_impi
    # a local S-CSCF: the hss role, which knows no outbound identity
    assert experimental(serve(service, outbound_mar, peer(SCSCF))) == 5001
    assert serve(service, mar(ALICE, ALICE_IMPU), peer(SCSCF)).result_code == 2001
    # SAR: served by the hss for the local S-CSCF, refused to partners
    assert serve(service, sar(ALICE, [ALICE_IMPU], 1), peer(PARTNER_GW)).result_code == 3001
    assert serve(service, sar(ALICE, [ALICE_IMPU], 1), peer(SCSCF)).result_code == 2001
    assert primary_store.get_scscf_name(ALICE) == SCSCF_NAME
    assert service.outcomes() == {("primary", "answered"): 2}


def test_service_with_the_partner_role_serves_every_peer_with_it(partner, send, inbound):
    service = CxService(Local(PARTNER_GW, PARTNER), None, partner=partner)
    answer = serve(service, mar(inbound.inbound_impi, inbound.inbound_impu, scheme="SIP Digest", realm=PARTNER),
                   peer(SCSCF))
    assert experimental(answer) == 5006
    assert service.outcomes() == {("partner", "5006"): 1}


def test_service_with_only_the_primary_role_refuses_other_peers(primary, outbound):
    service = CxService(Local(PRIMARY_GW, PRIMARY), None, primary=primary)
    answer = serve(service, mar(ALICE, ALICE_IMPU), peer(SCSCF))
    assert answer.result_code == 3007 and answer.is_error  # DIAMETER_APPLICATION_UNSUPPORTED


@pytest.mark.parametrize("count", [1, 3, 5])
@pytest.mark.parametrize("proxied", [0, 1, 2])
def test_the_packed_maa_says_what_the_general_builder_says(count, proxied):
    """multimedia_auth_answer packs its bytes itself (speed); the codec's builder is the
    reference: same header, same AVPs with the same values, and a strict decode. The
    request's AVPs it copies, taken from the fast path's layout (``MarLayout.copied``),
    give the same bytes as when it finds them itself."""
    from cx_codec import answer_for
    from cx_codec.commands import MultimediaAuthRequest, new_session_id
    from gateway.applications.cx import Local, multimedia_auth_answer
    from gateway.applications.fastpath import MarLayouts
    from hss_store.aka import build_vectors
    from hss_store.milenage import Milenage as HssMilenage

    fields = {"proxy_info": [{"proxy_host": f"dra{n}.partner.example", "proxy_state": bytes([0, n])}
                             for n in range(proxied)]} if proxied else {}
    request = decode(MultimediaAuthRequest(
        hop_by_hop=7, end_to_end=8, session_id=new_session_id("scscf.partner.example"), origin_host="scscf.partner.example",
        origin_realm="partner.example", destination_realm="partner.example", user_name="mig-1@partner.example",
        public_identity="sip:mig-1@partner.example", sip_auth_data_item={"sip_authentication_scheme": "Unknown"},
        sip_number_auth_items=count, server_name="sip:scscf.partner.example:6060", **fields,
    ).encode())
    vectors = build_vectors(HssMilenage(bytes(16), bytes(16)), list(range(32, 32 * (count + 1), 32)), b"\x80\x00")
    local = Local("hss.primary.example", "primary.example")
    raw = request.encode()
    packed_bytes = multimedia_auth_answer(request, local, "alice@primary.example", "sip:alice@primary.example",
                                          "Digest-AKAv1-MD5", vectors)
    layout = MarLayouts().of(raw)
    assert layout is not None
    assert multimedia_auth_answer(raw, local, "alice@primary.example", "sip:alice@primary.example", "Digest-AKAv1-MD5",
                                  vectors, layout.copied(raw)) == packed_bytes
    packed = decode(packed_bytes)
    items = [{"sip_item_number": v.sip_item_number, "sip_authentication_scheme": "Digest-AKAv1-MD5",
              "sip_authenticate": v.sip_authenticate, "sip_authorization": v.xres, "confidentiality_key": v.ck,
              "integrity_key": v.ik} for v in vectors]
    reference = decode(answer_for(request, origin_host=local.host, origin_realm=local.realm, result_code=2001,
                                  user_name="alice@primary.example", public_identity="sip:alice@primary.example",
                                  sip_number_auth_items=count, sip_auth_data_item=items).encode())
    assert (packed.flags, packed.command_code, packed.application_id, packed.hop_by_hop, packed.end_to_end) == (
        reference.flags, reference.command_code, reference.application_id, reference.hop_by_hop, reference.end_to_end)
    assert sorted((avp.name, avp.encode()) for avp in packed.avps) == sorted((avp.name, avp.encode()) for avp in reference.avps)
    # its constant AVPs are packed once per Local: another node's answer names that node
    other = Local("hss-2.primary.example", "other.example")
    answered = decode(multimedia_auth_answer(raw, other, "alice@primary.example", "sip:alice@primary.example",
                                             "Digest-AKAv2-SHA-256", vectors))
    assert (answered["Origin-Host"], answered["Origin-Realm"]) == (other.host, other.realm)
    assert {item.get("SIP-Authentication-Scheme") for item in answered.find_all("SIP-Auth-Data-Item")} == {
        "Digest-AKAv2-SHA-256"}


# == hostile requests that pass strict decoding ==============================================
_odd_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=60)
_identity = _odd_text | st.sampled_from([ALICE, ALICE_IMPU, "", "@", "sip:", "mig-1@partner.example"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_strictly_valid_request_gets_one_valid_answer_from_every_role(hss, primary_store, data):
    """Hostile values that still pass strict decoding (any text for identities and schemes,
    any SIP-Authorization, counts up to 2^32-1, SAR types the HSS does not know): every role
    answers, the answer passes strict decoding with the request's ids, and nothing raises."""
    partner_send = FakeSend()
    partner = PartnerApplication(StoreAccess(primary_store, reactor), Local(PARTNER_GW, PARTNER), partner_send)
    primary = PrimaryApplication(StoreAccess(primary_store, reactor), Local(PRIMARY_GW, PRIMARY),
                                 {PARTNER_GW: "partner-a"}, hss=hss)
    kind = data.draw(st.sampled_from(["mar", "sar", "uar", "lir"]), label="command")
    impi, impu = data.draw(_identity, label="impi"), data.draw(_identity, label="impu")
    if kind == "mar":
        request = mar(impi, impu, scheme=data.draw(_odd_text | st.sampled_from([AKA, "Unknown", "SIP Digest"])),
                      count=data.draw(st.integers(0, 2**32 - 1)),
                      authorization=data.draw(st.none() | st.binary(max_size=40)))
    elif kind == "sar":
        request = sar(impi, [impu], data.draw(st.integers(0, 20)), already=data.draw(st.integers(0, 1)))
    elif kind == "uar":
        request = uar(impi, impu)
    else:
        request = lir(impu)
    from cx_codec import DecodeError, error_answer_bytes

    try:
        decoded = decode(request)
    except DecodeError:  # a value strict decoding refuses: the node answers it before any role
        event("refused by strict decoding")
        return
    event(f"{kind} reaches the roles")
    for application, asking in ((hss, peer(SCSCF)), (partner, peer(SCSCF)), (primary, peer(PARTNER_GW))):
        result = application.handle_message(decode(request), asking)
        got: list[Any] = []
        result.addBoth(got.append)
        if not got:  # the partner sent it on: the primary core is down, say (the node's own 3002)
            forwarded = partner_send.requests[-1]
            partner_send.waiting[-1].callback(error_answer_bytes(
                forwarded, 3002, origin_host=PARTNER_GW, origin_realm=PARTNER, error_message="down"))
        assert got and isinstance(got[0], bytes), got
        message = decode(got[0])
        assert (message.hop_by_hop, message.end_to_end) == (decoded.hop_by_hop, decoded.end_to_end)
