"""The primary core on a PostgreSQL SIP database (a real server, hss_store.pgserver): the
store is called from StoreAccess's thread pool (``PostgresStore.in_process`` is False), each
call with a deadline, so that a server that restarts under load costs well-formed answers
(TS 29.229 MAA with Result-Code 5012 DIAMETER_UNABLE_TO_COMPLY, RFC 6733 §7.1.5), never a
silent request or a stalled reactor.

Chain: an S-CSCF (raw peer) -> the partner core (SQLite) -> the primary core (PostgreSQL),
as in test_applications_chain.py. Under CI=true a missing PostgreSQL fails the test (as in
tests/hss_store); locally it skips.
"""

from __future__ import annotations

import uuid

import pytest
import pytest_twisted
from twisted.internet import threads

from cx_codec import decode, new_request
from cx_codec.commands import MultimediaAuthRequest, new_session_id
from gateway.settings import PeerSettings, Timers
from gateway.testing.cores import (
    OPC,
    PARTNER,
    PARTNER_GW,
    PRIMARY,
    PRIMARY_GW,
    REAL_IMPI,
    SCSCF,
    Cores,
    K,
)
from gateway.testing.diamtest import Net, header_of, wait_for
from gateway.testing.isim import Isim
from hss_store import open_store
from hss_store import sqn as sqnmod
from hss_store.milenage import Milenage
from hss_store.pgserver import DEFAULT_BINDIR, TemporaryPostgres
from hss_store.records import PrimaryDatabase, Subscriber

pytestmark = pytest.mark.interop

OTHER, OTHER_GW = "other.example", "gw.other.example"
SCSCF2 = "scscf2.partner.example"
AKA = "Digest-AKAv1-MD5"
INITDB = f"{DEFAULT_BINDIR}/initdb"
# Tx above the store's deadlines: a MAR the store cannot serve is answered 5012 by the
# primary core before the partner core's Tx runs out (which would be its own 3002)
TIMERS = Timers(tc=0.3, twinit=6.0, tx=5.0, dpa_timeout=0.5, cea_timeout=2.0)
STORE_CALL_TIMEOUT = 1.0  # PostgresStore: every call ends within this, server up or down
ACCESS_DEADLINE = 2.0  # StoreAccess: an answer within this, even with the pool backed up
BURST = 50


@pytest.fixture
def postgres(require_program):
    """A PostgreSQL server of this test's own (the restart test stops and starts it)."""
    require_program("initdb", INITDB)
    server = TemporaryPostgres()
    server.start()
    yield server
    server.stop()


def _fresh_schema(server: TemporaryPostgres) -> str:
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{server.url}?options=-csearch_path%3D{schema}"


@pytest.fixture
def cores(tmp_path, postgres):
    """The chain of test_applications_chain.py with the primary's store on PostgreSQL,
    and a second partner gateway (``gw.other.example``) of the primary role."""
    net = Net()
    primary_store = open_store(_fresh_schema(postgres), timeout=STORE_CALL_TIMEOUT, max_connections=4)
    assert not primary_store.in_process
    built = Cores(
        net, primary_store, open_store(str(tmp_path / "partner.sqlite")),
        partners={PARTNER_GW: "partner-a", OTHER_GW: "partner-b"},
        primary_peers=[PeerSettings(OTHER_GW, OTHER, connect=False)], scscfs=(SCSCF, SCSCF2),
        timers=TIMERS, store_deadline=ACCESS_DEADLINE,
    )
    yield built
    pytest_twisted.blockon(net.stop())
    built.close()


def _mar(impi: str, impu: str, hop: int, *, origin: str = SCSCF, realm: str = PARTNER, scheme: str = AKA) -> bytes:
    return MultimediaAuthRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(origin), origin_host=origin,
        origin_realm=origin.split(".", 1)[1], destination_realm=realm, user_name=impi,
        public_identity=impu, sip_auth_data_item={"sip_authentication_scheme": scheme}, sip_number_auth_items=1,
        server_name="sip:scscf.partner.example:6060",
    ).encode()


def _answers(peer) -> dict[int, list[bytes]]:
    """Application answers a raw peer received, by hop-by-hop id."""
    found: dict[int, list[bytes]] = {}
    for raw in peer.application_answers():
        found.setdefault(header_of(raw)[3], []).append(raw)
    return found


def _authenticate(answer) -> list[bytes]:
    return [bytes(item.get("SIP-Authenticate")) for item in answer.find_all("SIP-Auth-Data-Item")]


def _sqn(authenticate: bytes) -> int:
    """SQN of RAND || AUTN (AUTN = SQN xor AK || AMF || MAC-A, TS 33.102 §6.3.2)."""
    rand, autn = authenticate[:16], authenticate[16:]
    ak = Milenage(K, OPC).compute(rand, bytes(6), autn[6:8]).ak
    return int.from_bytes(autn[:6], "big") ^ int.from_bytes(ak, "big")


@pytest_twisted.inlineCallbacks
def test_mars_through_the_chain_are_served_from_postgresql(cores):
    assert cores.access._pool is not None  # a remote store is called from the pool, never the reactor
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.net.raw_peer(cores.net.ports[PARTNER_GW], host=SCSCF, realm=PARTNER)
    isim = Isim(K, OPC)
    for hop in (1, 2, 3):
        scscf.send(_mar(cores.inbound.inbound_impi, cores.inbound.inbound_impu, hop))
        yield wait_for(lambda hop=hop: hop in _answers(scscf), timeout=10, what=f"the MAA of request {hop}")
        answer = decode(_answers(scscf)[hop][0])
        assert answer.result_code == 2001
        assert answer["User-Name"] == cores.inbound.inbound_impi
        (authenticate,) = _authenticate(answer)
        assert isim.challenge(authenticate[:16], authenticate[16:]).result == "ok"
    # the SQN the ISIM saw last is the one PostgreSQL committed (TS 33.102 Annex C)
    assert cores.primary_store.get_subscriber(REAL_IMPI).sqn == _sqn(authenticate)


@pytest_twisted.inlineCallbacks
def test_a_postgresql_restart_under_a_burst_costs_answers_not_requests(cores, postgres):
    """50 MARs in a burst; PostgreSQL stopped while the first half is served and kept down
    while the second half arrives; every MAR gets exactly one answer, 2001 or 5012, within
    a deadline; meanwhile the primary core answers a DWR and another partner's request
    (RFC 3539 §3.4.1: a peer that stops answering watchdogs is taken down)."""
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.net.raw_peer(cores.net.ports[PARTNER_GW], host=SCSCF, realm=PARTNER)
    other = yield cores.net.raw_peer(cores.net.ports[PRIMARY_GW], host=OTHER_GW, realm=OTHER)
    impi, impu = cores.inbound.inbound_impi, cores.inbound.inbound_impu
    first, second = range(1, BURST // 2 + 1), range(BURST // 2 + 1, BURST + 1)
    for hop in first:
        scscf.send(_mar(impi, impu, hop))
    # the store is serving the burst (some answers out, the rest in flight) when it goes down
    yield wait_for(lambda: len(_answers(scscf)) >= 5, timeout=10, what="the first answers of the burst")
    yield threads.deferToThread(postgres.stop_server)  # pg_ctl stop -m fast, off the reactor
    assert not postgres.running
    for hop in second:
        scscf.send(_mar(impi, impu, hop))
    # with the store down, the reactor still serves: a DWR, and a request needing no store
    other.send(new_request("Device-Watchdog-Request", hop_by_hop=9001, end_to_end=9001, origin_host=OTHER_GW,
                           origin_realm=OTHER).encode())
    other.send(_mar("out-x@primary.example", "sip:out-x@primary.example", 9002, origin=OTHER_GW, realm=PRIMARY,
                    scheme="SIP Digest"))
    yield wait_for(lambda: any(header_of(raw)[1] == 280 and not raw[4] & 0x80 for raw in other.messages),
                   timeout=5, what="the DWA of the primary core")
    dwa = next(decode(raw) for raw in other.messages if header_of(raw)[1] == 280 and not raw[4] & 0x80)
    assert dwa.result_code == 2001 and dwa.hop_by_hop == 9001
    yield wait_for(lambda: 9002 in _answers(other), timeout=5, what="the answer to the other partner")
    assert decode(_answers(other)[9002][0]).experimental_result == (10415, 5006)
    # a MAR that reached the store while it is down is answered 5012, not left hanging
    yield wait_for(lambda: any(hop in _answers(scscf) for hop in second), timeout=10,
                   what="an answer to a MAR sent while PostgreSQL is down")
    assert not postgres.running
    down = next(decode(_answers(scscf)[hop][0]) for hop in second if hop in _answers(scscf))
    assert down.result_code == 5012 and down["User-Name"] == impi  # DIAMETER_UNABLE_TO_COMPLY
    yield threads.deferToThread(postgres.start_server)
    yield wait_for(lambda: len(_answers(scscf)) >= BURST, timeout=30, what=f"answers to all {BURST} MARs")
    answers = _answers(scscf)
    assert sorted(answers) == list(range(1, BURST + 1))
    assert all(len(copies) == 1 for copies in answers.values()), {h: len(c) for h, c in answers.items() if len(c) > 1}
    results: dict[int, int] = {}
    sqns: list[int] = []
    for hop, (raw,) in answers.items():
        answer = decode(raw)  # strictly
        assert answer.result_code in (2001, 5012), (hop, answer.result_code, answer.experimental_result)
        assert answer["User-Name"] == impi and answer["Public-Identity"] == impu
        results[answer.result_code] = results.get(answer.result_code, 0) + 1
        for authenticate in _authenticate(answer):
            assert Isim(K, OPC).challenge(authenticate[:16], authenticate[16:]).result == "ok"
            sqns.append(_sqn(authenticate))
    assert results.get(5012, 0) >= 1
    assert len(set(sqns)) == len(sqns)  # no SQN issued twice across the restart (TS 33.102 Annex C)
    # PostgreSQL is back: the store reconnects and the next MAR is served
    scscf.send(_mar(impi, impu, BURST + 1))
    yield wait_for(lambda: BURST + 1 in _answers(scscf), timeout=10, what="a MAR after the restart")
    after = decode(_answers(scscf)[BURST + 1][0])
    assert after.result_code == 2001
    (authenticate,) = _authenticate(after)
    assert all(_sqn(authenticate) > sqn for sqn in sqns)
    assert sqnmod.split(_sqn(authenticate))[0] >= 1


@pytest_twisted.inlineCallbacks
def test_a_burst_of_mars_is_served_by_the_pool(cores):
    """The same 50 MARs with PostgreSQL up: every one 2001 (the row lock of TS 33.102
    Annex C's SQN serialises them; the pool's threads and connections wait their turn)."""
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    scscf = yield cores.net.raw_peer(cores.net.ports[PARTNER_GW], host=SCSCF, realm=PARTNER)
    for hop in range(1, BURST + 1):
        scscf.send(_mar(cores.inbound.inbound_impi, cores.inbound.inbound_impu, hop))
    yield wait_for(lambda: len(_answers(scscf)) >= BURST, timeout=30, what=f"answers to all {BURST} MARs")
    answers = _answers(scscf)
    codes = {hop: decode(raw).result_code for hop, (raw,) in answers.items()}
    assert set(codes.values()) == {2001}, codes
    sqns = [_sqn(authenticate) for (raw,) in answers.values() for authenticate in _authenticate(decode(raw))]
    assert len(set(sqns)) == BURST
    assert cores.primary_store.get_subscriber(REAL_IMPI).sqn == max(sqns)


BOB_K = bytes.fromhex("0396eb317b6d1c36f19c1c84cd6ffd16")
BOB_IMPI, BOB_IMPU = "bob@primary.example", "sip:bob@primary.example"


@pytest_twisted.inlineCallbacks
def test_two_scscfs_with_the_same_end_to_end_id_get_their_own_users_vectors(cores):
    """RFC 6733 §3: the End-to-End id is unique per originator, and (Origin-Host, End-to-End)
    is what duplicate detection keys on (§6.1.3). With topology hiding the partner gateway
    becomes the originator of every forwarded MAR, so two S-CSCFs that happen to pick the
    same End-to-End id must not look like one request retransmitted to the primary core:
    each must get the vectors of its own user (checked by that user's ISIM)."""
    cores.primary_store.add_subscriber(Subscriber.new(BOB_IMPI, [BOB_IMPU], BOB_K, opc=OPC))
    bob_out = cores.primary_store.allocate_outbound(BOB_IMPI, BOB_IMPU, "partner-a")
    bob_in = cores.partner_store.allocate_inbound(PrimaryDatabase(PRIMARY, PRIMARY_GW), bob_out.outbound_impi,
                                                  bob_out.outbound_impu)
    yield wait_for(lambda: cores.partner.peers[PRIMARY_GW].available, what="the interconnect open")
    first = yield cores.net.raw_peer(cores.net.ports[PARTNER_GW], host=SCSCF, realm=PARTNER)
    second = yield cores.net.raw_peer(cores.net.ports[PARTNER_GW], host=SCSCF2, realm=PARTNER)
    same = 0x1234567  # the same hop-by-hop and End-to-End id on both connections
    first.send(_mar(cores.inbound.inbound_impi, cores.inbound.inbound_impu, same))
    second.send(_mar(bob_in.inbound_impi, bob_in.inbound_impu, same, origin=SCSCF2))
    yield wait_for(lambda: same in _answers(first) and same in _answers(second), timeout=10,
                   what="both MAAs")
    for peer, (impi, key) in ((first, (cores.inbound.inbound_impi, K)), (second, (bob_in.inbound_impi, BOB_K))):
        answer = decode(_answers(peer)[same][0])
        assert answer.result_code == 2001 and answer["User-Name"] == impi
        (authenticate,) = _authenticate(answer)
        # the vector must be this user's: another user's fails MAC-A at this ISIM
        assert Isim(key, OPC).challenge(authenticate[:16], authenticate[16:]).result == "ok", impi
