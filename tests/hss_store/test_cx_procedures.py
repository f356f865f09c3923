"""multimedia_auth (the HSS side of a MAR) and server_assignment (of a SAR), on both backends."""

from __future__ import annotations

import hmac

import pytest

from hss_store import sqn as sqnmod
from hss_store.aka import make_auts
from hss_store.errors import (
    IdentitiesDontMatch,
    InvalidIdentity,
    InvalidRequest,
    ResyncFailure,
    SchemeNotAllowed,
    UnknownIdentity,
    UnknownSubscriber,
)
from hss_store.milenage import Milenage
from hss_store.records import (
    SCHEME_AKA_V1,
    SCHEME_AKA_V2,
    AuthResult,
    ServerAssignmentType,
    Subscriber,
)
from hss_store.store import MAX_VECTORS_PER_REQUEST

K = bytes.fromhex("465b5ce8b199b49faa5f0a2ee238a6bc")
OPC = bytes.fromhex("cd63cb71954a9f4e48a5994e37a02baf")
IMPI = "alice@ims.example.net"
IMPUS = ("sip:alice@ims.example.net", "tel:+4930123456")
SCSCF = "sip:scscf1.ims.example.net:6060"
SAT = ServerAssignmentType


def add_alice(store, **options) -> Subscriber:
    return store.add_subscriber(Subscriber.new(IMPI, IMPUS, K, opc=OPC, **options))


class Usim:
    """The UE side: MAC-A and SQN freshness (TS 33.102 §6.3.3, Annex C.2), AUTS for re-sync."""

    def __init__(self) -> None:
        self.milenage = Milenage(K, OPC)
        self.seq_ms = [0] * 32

    def authenticate(self, vector) -> str:
        ak = self.milenage.compute(vector.rand, bytes(6), vector.autn[6:8]).ak
        sqn = int.from_bytes(vector.autn[:6], "big") ^ int.from_bytes(ak, "big")
        out = self.milenage.compute(vector.rand, sqnmod.to_bytes(sqn), vector.autn[6:8])
        if not hmac.compare_digest(out.mac_a, vector.autn[8:]):
            return "MAC failure"
        seq, ind = sqnmod.split(sqn)
        if seq <= self.seq_ms[ind]:
            return "synch failure"
        self.seq_ms[ind] = seq
        assert (out.res, out.ck, out.ik) == (vector.xres, vector.ck, vector.ik)
        return "ok"


# -- multimedia_auth -----------------------------------------------------------------------------


def test_mar_generates_vectors_and_commits_the_sqn(store):
    add_alice(store)
    result = store.multimedia_auth(IMPI, IMPUS[1], SCHEME_AKA_V1, 3)
    assert isinstance(result, AuthResult)
    assert (result.scheme, result.impi, result.impu) == (SCHEME_AKA_V1, IMPI, IMPUS[1])
    assert [v.sip_item_number for v in result.vectors] == [1, 2, 3]
    usim = Usim()
    assert [usim.authenticate(v) for v in result.vectors] == ["ok"] * 3
    assert store.get_subscriber(IMPI).sqn == result.vectors[-1].sqn
    again = store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1)
    assert again.vectors[0].sqn > result.vectors[-1].sqn and usim.authenticate(again.vectors[0]) == "ok"


def test_mar_without_impu_answers_for_the_default_one(store):
    add_alice(store)
    assert store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1).impu == IMPUS[0]


def test_mar_unknown_user(store):
    add_alice(store)
    with pytest.raises(UnknownSubscriber, match="bob@ims.example.net") as caught:
        store.multimedia_auth("bob@ims.example.net", None, SCHEME_AKA_V1, 1)
    assert caught.value.experimental_result == 5001
    with pytest.raises(InvalidIdentity):
        store.multimedia_auth("bob", None, SCHEME_AKA_V1, 1)


def test_mar_impu_of_another_user(store):
    add_alice(store)
    before = store.get_subscriber(IMPI).sqn
    with pytest.raises(IdentitiesDontMatch, match="sip:bob@ims.example.net") as caught:
        store.multimedia_auth(IMPI, "sip:bob@ims.example.net", SCHEME_AKA_V1, 1, server_name=SCSCF)
    assert caught.value.experimental_result == 5002
    assert store.get_subscriber(IMPI).sqn == before and store.get_scscf_name(IMPI) is None


def test_mar_scheme_unknown_is_the_subscribers_first(store):
    add_alice(store, schemes=[SCHEME_AKA_V2, SCHEME_AKA_V1])
    assert store.multimedia_auth(IMPI, None, "Unknown", 1).scheme == SCHEME_AKA_V2
    assert store.multimedia_auth(IMPI, None, "unknown", 1).scheme == SCHEME_AKA_V2
    # another allowed one is answered as provisioned, whatever its case in the MAR
    assert store.multimedia_auth(IMPI, None, "digest-akav1-md5", 1).scheme == SCHEME_AKA_V1


def test_mar_scheme_not_allowed(store):
    add_alice(store)
    before = store.get_subscriber(IMPI).sqn
    with pytest.raises(SchemeNotAllowed, match="Digest-AKAv2-SHA-256") as caught:
        store.multimedia_auth(IMPI, None, SCHEME_AKA_V2, 1)
    assert caught.value.experimental_result == 5006
    assert store.get_subscriber(IMPI).sqn == before


def test_mar_a_non_aka_scheme_is_not_supported_even_when_allowed(store):
    add_alice(store, schemes=["SIP Digest", SCHEME_AKA_V1])
    with pytest.raises(SchemeNotAllowed, match="AKA vectors only") as caught:
        store.multimedia_auth(IMPI, None, "Unknown", 1)  # the default is SIP Digest
    assert caught.value.experimental_result == 5006
    with pytest.raises(SchemeNotAllowed):
        store.multimedia_auth(IMPI, None, "SIP Digest", 1)
    assert store.get_subscriber(IMPI).sqn == 0


@pytest.mark.parametrize(
    ("count", "max_count", "expected"),
    [(1, 32, 1), (5, 32, 5), (50, 32, 32), (10, 4, 4), (0, 32, 1), (-3, 32, 1)],
)
def test_mar_count_is_capped_not_refused(store, count, max_count, expected):
    add_alice(store)
    result = store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, count, max_count=max_count)
    assert len(result.vectors) == expected
    assert store.get_subscriber(IMPI).sqn == result.vectors[-1].sqn
    assert sqnmod.split(result.vectors[-1].sqn)[0] == expected  # exactly `expected` SQNs used


@pytest.mark.parametrize(("count", "max_count"), [("2", 32), (None, 32), (True, 32), (1, 0), (1, MAX_VECTORS_PER_REQUEST + 1)])
def test_mar_bad_count_or_cap(store, count, max_count):
    add_alice(store)
    with pytest.raises(InvalidRequest):
        store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, count, max_count=max_count)


def test_mar_scheme_must_be_a_string(store):
    add_alice(store)
    with pytest.raises(InvalidRequest, match="SIP-Authentication-Scheme"):
        store.multimedia_auth(IMPI, None, None, 1)


def test_mar_resync_with_auts_from_the_usim(store):
    add_alice(store)
    usim = Usim()
    usim.seq_ms = [77_000 + i for i in range(32)]  # the USIM is ahead (another HSS, a restored backup)
    [challenge] = store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1).vectors
    assert usim.authenticate(challenge) == "synch failure"
    sqn_ms = sqnmod.join(77_031, 31)
    auts = make_auts(Milenage(K, OPC), challenge.rand, sqn_ms)
    result = store.multimedia_auth(IMPI, IMPUS[0], "Unknown", 2, rand_auts=challenge.rand + auts, server_name=SCSCF)
    assert result.scheme == SCHEME_AKA_V1
    assert [sqnmod.split(v.sqn)[0] for v in result.vectors] == [77_032, 77_033]
    assert [usim.authenticate(v) for v in result.vectors] == ["ok", "ok"]
    assert store.get_subscriber(IMPI).sqn == result.vectors[-1].sqn
    assert store.get_scscf_name(IMPI) == SCSCF


def test_mar_resync_with_a_bad_mac_s_changes_nothing(store):
    add_alice(store)
    [challenge] = store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1).vectors
    before = store.get_subscriber(IMPI)
    auts = bytearray(make_auts(Milenage(K, OPC), challenge.rand, sqnmod.join(500_000, 3)))
    auts[-1] ^= 0x01  # MAC-S off by one bit
    with pytest.raises(ResyncFailure, match="MAC-S"):
        store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1, rand_auts=challenge.rand + bytes(auts), server_name=SCSCF)
    after = store.get_subscriber(IMPI)
    assert (after.sqn, after.scscf_name) == (before.sqn, None)
    with pytest.raises(InvalidRequest, match="30 bytes"):
        store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1, rand_auts=challenge.rand)


def test_mar_resync_never_moves_the_sqn_back(store):
    add_alice(store, sqn=sqnmod.join(9_000, 4))
    [challenge] = store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1).vectors
    auts = make_auts(Milenage(K, OPC), challenge.rand, sqnmod.join(10, 0))  # the USIM is behind
    [vector] = store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1, rand_auts=challenge.rand + auts).vectors
    assert vector.sqn > challenge.sqn


def test_mar_stores_the_server_name_when_given(store):
    add_alice(store)
    store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1)
    assert store.get_scscf_name(IMPI) is None
    store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1, server_name=SCSCF)
    assert store.get_scscf_name(IMPI) == SCSCF
    store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1)  # none given: the stored one stays
    assert store.get_scscf_name(IMPI) == SCSCF
    with pytest.raises(InvalidRequest, match="S-CSCF name"):
        store.multimedia_auth(IMPI, None, SCHEME_AKA_V1, 1, server_name="sip:a b")


# -- server_assignment ---------------------------------------------------------------------------


def test_sar_registration_stores_the_name_and_returns_the_profile(store):
    add_alice(store)
    subscriber = store.server_assignment(IMPI, IMPUS[1], SCSCF, SAT.REGISTRATION)
    assert subscriber.impus == IMPUS and subscriber.scscf_name == SCSCF
    assert store.get_scscf_name(IMPI) == SCSCF
    other = "sip:scscf2.ims.example.net"
    assert store.server_assignment(IMPI, None, other, 2).scscf_name == other  # RE_REGISTRATION, as an int
    assert store.server_assignment(IMPI, None, SCSCF, SAT.UNREGISTERED_USER).scscf_name == SCSCF


@pytest.mark.parametrize(
    "kind",
    [SAT.TIMEOUT_DEREGISTRATION, SAT.USER_DEREGISTRATION, SAT.ADMINISTRATIVE_DEREGISTRATION, SAT.DEREGISTRATION_TOO_MUCH_DATA],
)
def test_sar_deregistration_clears_the_name(store, kind):
    add_alice(store)
    store.server_assignment(IMPI, None, SCSCF, SAT.REGISTRATION)
    assert store.server_assignment(IMPI, IMPUS[0], SCSCF, kind).scscf_name is None
    assert store.get_scscf_name(IMPI) is None


@pytest.mark.parametrize(
    "kind",
    [
        SAT.TIMEOUT_DEREGISTRATION_STORE_SERVER_NAME,
        SAT.USER_DEREGISTRATION_STORE_SERVER_NAME,
        SAT.NO_ASSIGNMENT,
        SAT.AAA_USER_DATA_REQUEST,
        SAT.AUTHENTICATION_FAILURE,
    ],
)
def test_sar_other_types_keep_the_name(store, kind):
    add_alice(store)
    store.server_assignment(IMPI, None, SCSCF, SAT.REGISTRATION)
    assert store.server_assignment(IMPI, None, "sip:other.ims.example.net", kind).scscf_name == SCSCF
    assert store.get_scscf_name(IMPI) == SCSCF


def test_sar_errors_change_nothing(store):
    add_alice(store)
    store.server_assignment(IMPI, None, SCSCF, SAT.REGISTRATION)
    with pytest.raises(UnknownSubscriber):
        store.server_assignment("bob@ims.example.net", None, SCSCF, SAT.USER_DEREGISTRATION)
    with pytest.raises(IdentitiesDontMatch) as caught:
        store.server_assignment(IMPI, "sip:bob@ims.example.net", None, SAT.USER_DEREGISTRATION)
    assert caught.value.experimental_result == 5002
    with pytest.raises(InvalidRequest, match="no Server-Name"):
        store.server_assignment(IMPI, None, None, SAT.REGISTRATION)
    for bad in (15, -1, True, "1"):
        with pytest.raises(InvalidRequest, match="Server-Assignment-Type"):
            store.server_assignment(IMPI, None, SCSCF, bad)
    assert store.get_scscf_name(IMPI) == SCSCF


def test_server_assignment_types_are_those_of_the_cx_dictionary():
    """TS 29.229 §6.3.15 as the codec's dictionary has it (the two are written separately)."""
    from cx_codec.dictionary import cx

    assert {t.value: t.name for t in ServerAssignmentType} == cx.ENUMS["Server-Assignment-Type"]


def test_the_subscriber_of_a_public_identity(store):
    add_alice(store)
    assert store.impi_of_impu(IMPUS[1]) == IMPI
    with pytest.raises(UnknownIdentity):
        store.impi_of_impu("sip:nobody@ims.example.net")


def test_mars_of_one_group_are_answered_as_one_by_one_and_fail_alone(store):
    """multimedia_auth_many (group commit): each MAR gets what multimedia_auth gives it, in
    order, SQNs following each other; one refused MAR gets its own error and takes nothing
    from the others."""
    from hss_store.errors import UnknownSubscriber

    add_alice(store)
    before = store.get_subscriber(IMPI).sqn
    results = store.multimedia_auth_many([
        (IMPI, IMPUS[1], "Unknown", 2, None, "sip:scscf.example", 5),
        ("nobody@ims.example.net", None, "Unknown", 1, None, None, 5),
        (IMPI, None, "Digest-AKAv1-MD5", 9, None, None, 3),
    ])
    assert isinstance(results[1], UnknownSubscriber)
    first, third = results[0], results[2]
    assert first.impi == third.impi == IMPI and first.impu == IMPUS[1] and third.impu == IMPUS[0]
    assert len(first.vectors) == 2 and len(third.vectors) == 3  # (9 asked, capped at 3)
    sqns = [v.sqn for v in first.vectors + third.vectors]
    assert sqns == sorted(sqns) and len(set(sqns)) == 5 and sqns[0] > before
    assert store.get_subscriber(IMPI).sqn == sqns[-1] and store.get_subscriber(IMPI).scscf_name == "sip:scscf.example"
    usim = Usim()
    assert [usim.authenticate(v) for v in first.vectors + third.vectors] == ["ok"] * 5
    # the group's RANDs come from one read of the CSPRNG, sliced: each vector its own
    assert len({v.rand for v in first.vectors + third.vectors}) == 5
    assert all(len(v.rand) == 16 for v in first.vectors + third.vectors)
