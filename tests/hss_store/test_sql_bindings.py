"""Migration bindings, pools, policies and agreements, against both backends."""

from __future__ import annotations

import threading

import pytest

from hss_store.allocation import AllocationPolicy
from hss_store.errors import (
    IdentitiesDontMatch,
    InvalidIdentity,
    InvalidRequest,
    NoAgreement,
    NoAllocationPolicy,
    PoolExhausted,
    StoreError,
    UnknownBinding,
    UnknownSubscriber,
)
from hss_store.records import Agreement, PrimaryDatabase, Subscriber

PRIMARY = PrimaryDatabase("primary.example", "hss1.primary.example")
P_IMPI, P_IMPU = "alice@primary.example", "sip:alice@primary.example"
INBOUND = AllocationPolicy("inbound", "random", "mig-<random>@partner.example", "sip:mig-<random>@partner.example")
OUTBOUND = AllocationPolicy("outbound", "random", "out-{random}@primary.example", "sip:out-{random}@primary.example")


def add_user(store, name: str = "alice", groups: tuple[str, ...] = ()) -> tuple[str, str]:
    impi, impu = f"{name}@primary.example", f"sip:{name}@primary.example"
    store.add_subscriber(Subscriber.new(impi, [impu], bytes(16), opc=bytes(16), groups=groups))
    return impi, impu


# -- inbound (partner side) ----------------------------------------------------------------------


def test_inbound_allocate_is_idempotent_and_looks_up_both_ways(store):
    store.set_policy(INBOUND)
    b = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    assert b.inbound_impi.startswith("mig-") and b.inbound_impi.endswith("@partner.example")
    assert b.inbound_impu == "sip:" + b.inbound_impi
    assert (b.primary_realm, b.primary_host, b.primary_impi, b.primary_impu) == (
        "primary.example", "hss1.primary.example", P_IMPI, P_IMPU,
    )
    assert store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU) == b
    assert store.inbound_by_impi(b.inbound_impi) == b
    assert store.inbound_by_impu(b.inbound_impu) == b
    assert store.inbound_for(PRIMARY, P_IMPI, P_IMPU) == b
    # another primary host is another request
    other = store.allocate_inbound(PrimaryDatabase("primary.example"), P_IMPI, P_IMPU)
    assert other.inbound_impi != b.inbound_impi and other.primary_host is None
    assert [x.inbound_impi for x in store.list_inbound()] == sorted([b.inbound_impi, other.inbound_impi])


def test_inbound_unknown_and_malformed(store):
    with pytest.raises(UnknownBinding, match="no inbound migration binding") as caught:
        store.inbound_by_impi("nobody@partner.example")
    assert caught.value.experimental_result == 5001
    with pytest.raises(InvalidIdentity):
        store.inbound_by_impi("not-an-impi")
    with pytest.raises(InvalidIdentity):
        store.inbound_by_impu("not-an-impu")


def test_revocation_and_rotation(store, clock):
    store.set_policy(INBOUND)
    first = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    revoked = store.revoke_inbound(first.inbound_impi)
    assert revoked.revoked_at == int(clock())
    with pytest.raises(UnknownBinding, match="revoked"):
        store.inbound_by_impi(first.inbound_impi)
    assert store.revoke_inbound(first.inbound_impi) == revoked  # a second revoke changes nothing
    second = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    assert second.inbound_impi != first.inbound_impi
    third = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU, rotate=True)
    assert third.inbound_impi != second.inbound_impi
    with pytest.raises(UnknownBinding, match="revoked"):
        store.inbound_by_impu(second.inbound_impu)
    with pytest.raises(UnknownBinding):
        store.revoke_inbound("nobody@partner.example")


def test_expiry(store, clock):
    store.set_policy(AllocationPolicy("inbound", "random", INBOUND.impi_pattern, INBOUND.impu_pattern, ttl_seconds=3600))
    b = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    assert b.expires_at == int(clock()) + 3600
    clock.advance(3599)
    assert store.inbound_by_impi(b.inbound_impi) == b
    clock.advance(1)
    with pytest.raises(UnknownBinding, match="expired"):
        store.inbound_by_impi(b.inbound_impi)
    renewed = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    assert renewed.inbound_impi != b.inbound_impi and store.inbound_by_impi(renewed.inbound_impi) == renewed


def test_active_inbound_reads_what_inbound_by_impi_returns(store, clock, backend):
    """The partner's lean read per MAR: the same binding's fields, None wherever
    inbound_by_impi raises UnknownBinding (or InvalidIdentity), expiry and revocation included."""
    store.set_policy(AllocationPolicy("inbound", "random", INBOUND.impi_pattern, INBOUND.impu_pattern, ttl_seconds=60))
    b = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    assert store.active_inbound(b.inbound_impi) == (
        b.inbound_impu, b.primary, b.primary_impi, b.primary_impu, b.created_at, b.expires_at,
    )
    assert store.active_inbound("nobody@partner.example") is None
    assert store.active_inbound("not-an-impi") is None
    assert store.active_inbound(b.inbound_impu) is None  # an IMPU is no IMPI
    clock.advance(59)
    assert store.active_inbound(b.inbound_impi) is not None
    clock.advance(1)
    assert store.active_inbound(b.inbound_impi) is None  # expired, as inbound_by_impi says
    store.set_policy(INBOUND)
    c = store.allocate_inbound(PrimaryDatabase("primary.example"), P_IMPI, P_IMPU)
    assert store.active_inbound(c.inbound_impi) == (
        c.inbound_impu, PrimaryDatabase("primary.example"), P_IMPI, P_IMPU, c.created_at, None,
    )
    store.revoke_inbound(c.inbound_impi)
    assert store.active_inbound(c.inbound_impi) is None
    with pytest.raises(UnknownBinding, match="revoked"):
        store.inbound_by_impi(c.inbound_impi)
    if backend == "sqlite":  # a failing store: its StoreError, as every other call raises it
        store.close()
        with pytest.raises(StoreError):
            store.active_inbound(b.inbound_impi)


def _expired_revoked_and_active(store, clock, count: int) -> tuple:
    """One inbound binding that has expired, and ``count`` more of which the 4th is revoked
    (half with a Destination-Host)."""
    store.set_policy(AllocationPolicy("inbound", "random", INBOUND.impi_pattern, INBOUND.impu_pattern, ttl_seconds=60))
    expiring = store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    store.set_policy(INBOUND)
    made = [store.allocate_inbound(PrimaryDatabase("primary.example", None if n % 2 else "hss1.primary.example"),
                                   f"user-{n}@primary.example", f"sip:user-{n}@primary.example") for n in range(count)]
    store.revoke_inbound(made[3].inbound_impi)
    clock.advance(60)  # ``expiring`` expired
    return expiring, made


def test_active_inbound_many_is_active_inbound_for_each(store, clock):
    """The bindings of a read's MARs at once: what active_inbound gives for each IMPI that
    has an active binding, whatever the number asked (statements of 1 to 128 keys)."""
    expiring, made = _expired_revoked_and_active(store, clock, 140)
    asked = [b.inbound_impi for b in made] + [expiring.inbound_impi, "nobody@partner.example", "not-an-impi",
                                              made[0].inbound_impi]
    expected = {impi: store.active_inbound(impi) for impi in asked}
    assert store.active_inbound_many(asked) == {impi: found for impi, found in expected.items() if found is not None}
    assert made[3].inbound_impi not in expected or expected[made[3].inbound_impi] is None
    for n in (0, 1, 2, 3, 5, 64, 127, 128, 129):
        some = asked[:n]
        assert store.active_inbound_many(some) == {impi: expected[impi] for impi in some if expected[impi] is not None}


def _all_pages(store, direction: str, limit: int) -> list:
    rows, after = store.active_bindings(direction, limit=limit)
    while after is not None:
        page, after = store.active_bindings(direction, after, limit)
        rows += page
    return rows


@pytest.mark.parametrize("limit", [1, 2, 7, 1000])
def test_active_bindings_pages_hold_every_active_binding_once(store, clock, limit):
    """What a gateway loads into memory at start: every binding that is neither revoked nor
    expired, in both directions, whatever the page size."""
    expiring, made = _expired_revoked_and_active(store, clock, 9)
    inbound = _all_pages(store, "inbound", limit)
    assert sorted(inbound) == sorted(
        (b.inbound_impi, b.inbound_impu, b.primary_impi, b.primary_impu, b.primary, b.created_at, b.expires_at)
        for b in made if b is not made[3])
    assert expiring.inbound_impi not in {row[0] for row in inbound}
    store.set_policy(OUTBOUND)
    impi, impu = add_user(store)
    store.add_agreement(Agreement("partnerA", "all", ""))
    outbound = store.allocate_outbound(impi, impu, "partnerA")
    assert _all_pages(store, "outbound", limit) == [
        (outbound.outbound_impi, outbound.outbound_impu, impi, impu, "partnerA", outbound.created_at, None)]
    with pytest.raises(InvalidRequest):
        store.active_bindings("sideways")


def test_no_policy(store):
    with pytest.raises(NoAllocationPolicy, match="policy set inbound"):
        store.allocate_inbound(PRIMARY, P_IMPI, P_IMPU)
    store.set_policy(INBOUND)
    assert store.get_policy("inbound") == INBOUND


def test_pool_runs_dry_with_a_clear_error(store):
    store.set_policy(AllocationPolicy("inbound", "pool"))
    pairs = [(f"pool{i}@partner.example", f"sip:pool{i}@partner.example") for i in range(3)]
    assert store.add_to_pool("inbound", pairs) == 3
    assert store.add_to_pool("inbound", pairs[:1]) == 0
    got = [store.allocate_inbound(PRIMARY, f"u{i}@primary.example", f"sip:u{i}@primary.example") for i in range(3)]
    assert sorted((b.inbound_impi, b.inbound_impu) for b in got) == pairs
    assert store.pool_status("inbound") == (0, 3)
    store.revoke_inbound(got[0].inbound_impi)  # revoked entries are not handed out again
    with pytest.raises(PoolExhausted, match="no free entry"):
        store.allocate_inbound(PRIMARY, "u9@primary.example", "sip:u9@primary.example")


# -- outbound (primary side) and agreements ----------------------------------------------------------


def test_outbound_needs_subscriber_impu_and_agreement(store):
    store.set_policy(OUTBOUND)
    with pytest.raises(UnknownSubscriber):
        store.allocate_outbound(P_IMPI, P_IMPU, "partnerA")
    impi, impu = add_user(store)
    with pytest.raises(IdentitiesDontMatch):
        store.allocate_outbound(impi, "sip:bob@primary.example", "partnerA")
    with pytest.raises(NoAgreement, match="partnerA"):
        store.allocate_outbound(impi, impu, "partnerA")
    store.add_agreement(Agreement("partnerA", "user", impi))
    b = store.allocate_outbound(impi, impu, "partnerA")
    assert (b.real_impi, b.real_impu, b.partner_id) == (impi, impu, "partnerA")
    assert store.allocate_outbound(impi, impu, "partnerA") == b
    assert store.outbound_by_impi(b.outbound_impi) == b == store.outbound_by_impu(b.outbound_impu)
    assert store.outbound_for(impi, impu, "partnerA") == b
    with pytest.raises(UnknownBinding):
        store.outbound_for(impi, impu, "partnerB")
    store.revoke_outbound(b.outbound_impi)
    with pytest.raises(UnknownBinding, match="revoked"):
        store.outbound_by_impi(b.outbound_impi)
    assert [x.outbound_impi for x in store.list_outbound()] == [b.outbound_impi]


def test_agreement_scopes(store):
    alice, _ = add_user(store, "alice", groups=("police",))
    bob, _ = add_user(store, "bob")
    store.add_agreement(Agreement("groupie", "group", "police"))
    store.add_agreement(Agreement("everyone", "all"))
    store.add_agreement(Agreement("single", "user", bob))
    store.add_agreement(Agreement("single", "user", bob))  # twice is once
    assert store.may_migrate("groupie", alice) and not store.may_migrate("groupie", bob)
    assert store.may_migrate("everyone", alice) and store.may_migrate("everyone", bob)
    assert store.may_migrate("single", bob) and not store.may_migrate("single", alice)
    assert not store.may_migrate("stranger", alice)
    with pytest.raises(NoAgreement):
        store.require_agreement("stranger", alice)
    assert len(store.list_agreements()) == 3 and store.list_agreements("single") == [Agreement("single", "user", bob)]
    store.remove_agreement(Agreement("everyone", "all"))
    assert not store.may_migrate("everyone", alice)


# -- concurrency: separate store objects (connections) in threads ------------------------------------


def _in_threads(count: int, work) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and checked by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_identical_requests_get_one_binding(make_store, backend):
    make_store(backend).set_policy(INBOUND)
    stores = [make_store(backend, check_same_thread=False) if backend == "sqlite" else make_store(backend) for _ in range(6)]
    results = _in_threads(6, lambda i: stores[i].allocate_inbound(PRIMARY, P_IMPI, P_IMPU))
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.inbound_impi for r in results}) == 1


def test_concurrent_pool_allocation_is_unique_and_never_overdrawn(make_store, backend):
    setup = make_store(backend)
    setup.set_policy(AllocationPolicy("inbound", "pool"))
    setup.add_to_pool("inbound", [(f"p{i}@partner.example", f"sip:p{i}@partner.example") for i in range(10)])
    stores = [make_store(backend, check_same_thread=False) if backend == "sqlite" else make_store(backend) for _ in range(4)]

    def work(i: int) -> list:
        got = []
        for n in range(4):
            try:
                got.append(stores[i].allocate_inbound(PRIMARY, f"u{i}x{n}@primary.example", f"sip:u{i}x{n}@primary.example"))
            except PoolExhausted as exc:
                got.append(exc)
        return got

    results = [x for r in _in_threads(4, work) for x in r]
    bindings = [r for r in results if not isinstance(r, Exception)]
    assert len(bindings) == 10 and len({b.inbound_impi for b in bindings}) == 10
    assert all(isinstance(r, PoolExhausted) for r in results if r not in bindings)
