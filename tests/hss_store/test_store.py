"""The storage interface, run against both backends (SQLite file, real PostgreSQL server)."""

from __future__ import annotations

import hmac

import pytest

from hss_store import sqn as sqnmod
from hss_store.aka import make_auts
from hss_store.errors import (
    DuplicateSubscriber,
    IdentitiesDontMatch,
    InvalidIdentity,
    InvalidKey,
    InvalidRequest,
    MasterKeyMismatch,
    ResyncFailure,
    SchemeNotAllowed,
    UnknownSubscriber,
)
from hss_store.keywrap import MasterKey
from hss_store.milenage import Milenage
from hss_store.records import Subscriber

K = "465b5ce8b199b49faa5f0a2ee238a6bc"
OP = "cdc202d5123e20f62b6d676ac72cb318"
OPC = "cd63cb71954a9f4e48a5994e37a02baf"
IMPI = "alice@ims.example.net"
IMPUS = ["sip:alice@ims.example.net", "tel:+4930123456"]


def alice(**overrides) -> Subscriber:
    options = {"opc": OPC, **overrides}
    return Subscriber.new(options.pop("impi", IMPI), options.pop("impus", IMPUS), options.pop("k", K), **options)


class Ue:
    """The UE side: verifies AUTN (MAC-A, TS 33.102 §6.3.3) and SQN freshness (Annex C.2)."""

    def __init__(self, k: str = K, opc: str = OPC) -> None:
        self.milenage = Milenage(bytes.fromhex(k), bytes.fromhex(opc))
        self.seq_ms = [0] * 32

    def sqn_of(self, vector) -> int:
        out = self.milenage.compute(vector.rand, bytes(6), vector.autn[6:8])
        return int.from_bytes(vector.autn[:6], "big") ^ int.from_bytes(out.ak, "big")

    def authenticate(self, vector) -> str:
        sqn = self.sqn_of(vector)
        out = self.milenage.compute(vector.rand, sqnmod.to_bytes(sqn), vector.autn[6:8])
        if not hmac.compare_digest(out.mac_a, vector.autn[8:]):
            return "MAC failure"
        seq, ind = sqnmod.split(sqn)
        if seq <= self.seq_ms[ind]:
            return "synch failure"
        self.seq_ms[ind] = seq
        assert (out.res, out.ck, out.ik) == (vector.xres, vector.ck, vector.ik)
        return "ok"

    @property
    def sqn_ms(self) -> int:
        ind = max(range(32), key=lambda i: self.seq_ms[i])
        return sqnmod.join(self.seq_ms[ind], ind)


# -- subscribers -------------------------------------------------------------------------------


def test_add_get_list_remove(store):
    assert store.add_subscriber(alice()).impi == IMPI
    got = store.get_subscriber(IMPI)
    assert got == alice() and got.impus == tuple(IMPUS) and got.opc.hex() == OPC
    store.add_subscriber(alice(impi="bob@ims.example.net", impus=["sip:bob@ims.example.net"], groups=["police"]))
    listed = store.list_subscribers()
    assert [s.impi for s in listed] == [IMPI, "bob@ims.example.net"]  # ordered by IMPI
    assert [s.impi for s in store.list_subscribers(after=IMPI)] == ["bob@ims.example.net"]
    assert [s.impi for s in store.list_subscribers(limit=1)] == [IMPI]
    assert listed[0].impus == tuple(IMPUS) and listed[1].groups == ("police",)
    store.remove_subscriber(IMPI)
    with pytest.raises(UnknownSubscriber, match="alice@ims.example.net"):
        store.get_subscriber(IMPI)
    with pytest.raises(UnknownSubscriber):
        store.remove_subscriber(IMPI)


def test_op_is_turned_into_opc(store):
    store.add_subscriber(alice(opc=None, op=OP))
    assert store.get_subscriber(IMPI).opc.hex() == OPC


def test_duplicate_subscriber(store):
    store.add_subscriber(alice())
    with pytest.raises(DuplicateSubscriber, match="already exists"):
        store.add_subscriber(alice())


def test_malformed_identity_is_reported_as_such(store):
    with pytest.raises(InvalidIdentity, match="user@realm"):
        store.get_subscriber("alice")
    with pytest.raises(InvalidIdentity):
        alice(impus=["alice@example.net"])


@pytest.mark.parametrize("k", ["00" * 15, "00" * 17, "xyz"])
def test_key_of_the_wrong_length(k):
    with pytest.raises(InvalidKey):
        alice(k=k)


def test_check_impu_and_scheme(store):
    store.add_subscriber(alice())
    store.check_impu(IMPI, "tel:+4930123456")
    with pytest.raises(IdentitiesDontMatch, match="implicit registration set"):
        store.check_impu(IMPI, "sip:mallory@ims.example.net")
    with pytest.raises(UnknownSubscriber):
        store.check_impu("nobody@ims.example.net", "sip:alice@ims.example.net")
    store.check_scheme(IMPI, "digest-akav1-md5")
    with pytest.raises(SchemeNotAllowed, match="SIP Digest") as caught:
        store.check_scheme(IMPI, "SIP Digest")
    assert caught.value.experimental_result == 5006


def test_scscf_name(store):
    store.add_subscriber(alice())
    assert store.get_scscf_name(IMPI) is None
    store.set_scscf_name(IMPI, "sip:scscf.ims.example.net:6060")
    assert store.get_scscf_name(IMPI) == "sip:scscf.ims.example.net:6060"
    store.set_scscf_name(IMPI, None)
    assert store.get_scscf_name(IMPI) is None
    with pytest.raises(UnknownSubscriber):
        store.set_scscf_name("nobody@ims.example.net", "sip:x")


# -- AKA -----------------------------------------------------------------------------------------


def test_vectors_pass_the_ue_checks_and_sqn_is_stored(store):
    store.add_subscriber(alice())
    ue, issued = Ue(), []
    for _ in range(30):
        batch = store.generate_vectors(IMPI, 5)
        assert [v.sip_item_number for v in batch] == [1, 2, 3, 4, 5]
        issued += [v.sqn for v in batch]
        for v in reversed(batch):  # the S-CSCF may use them in any order
            assert ue.authenticate(v) == "ok"
    assert issued == sorted(set(issued))
    assert store.get_subscriber(IMPI).sqn == issued[-1]


def test_vector_count_is_checked(store):
    store.add_subscriber(alice())
    for bad in (0, 33, "2"):
        with pytest.raises(InvalidRequest):
            store.generate_vectors(IMPI, bad)
    with pytest.raises(UnknownSubscriber):
        store.generate_vectors("nobody@ims.example.net")


def test_resync_moves_sqn_past_the_ue(store):
    store.add_subscriber(alice())
    ue = Ue()
    ue.seq_ms = [123_000 + i for i in range(32)]  # the UE is far ahead of the HSS (another HSS, a restore)
    [challenge] = store.generate_vectors(IMPI)
    assert ue.authenticate(challenge) == "synch failure"
    auts = make_auts(ue.milenage, challenge.rand, ue.sqn_ms)
    vectors = store.resync(IMPI, challenge.rand + auts, 2)
    assert [ue.authenticate(v) for v in vectors] == ["ok", "ok"]
    assert sqnmod.split(vectors[0].sqn)[0] == 123_032


def test_resync_with_wrong_mac_s_leaves_sqn_unchanged(store):
    store.add_subscriber(alice())
    [challenge] = store.generate_vectors(IMPI)
    before = store.get_subscriber(IMPI).sqn
    auts = bytearray(make_auts(Ue().milenage, challenge.rand, sqnmod.join(999_999, 0)))
    auts[-1] ^= 0xFF
    with pytest.raises(ResyncFailure, match="MAC-S"):
        store.resync(IMPI, challenge.rand + bytes(auts))
    assert store.get_subscriber(IMPI).sqn == before
    with pytest.raises(InvalidRequest, match="30 bytes"):
        store.resync(IMPI, challenge.rand)


# -- master key ----------------------------------------------------------------------------------


def test_keys_at_rest_are_wrapped(make_store, backend):
    master = MasterKey(bytes(range(32)))
    store = make_store(backend, master_key=master)
    store.add_subscriber(alice())
    raw = store._q("SELECT k, opc, wrapped FROM subscriber")
    assert raw[0][2] == 1 and bytes.fromhex(K) not in bytes(raw[0][0]) and bytes.fromhex(OPC) not in bytes(raw[0][1])
    assert store.get_subscriber(IMPI).k.hex() == K
    assert Ue().authenticate(store.generate_vectors(IMPI)[0]) == "ok"
    with pytest.raises(MasterKeyMismatch):
        make_store(backend, master_key=MasterKey(bytes(32)))
    without = make_store(backend)
    with pytest.raises(InvalidKey, match="master key"):
        without.generate_vectors(IMPI)
