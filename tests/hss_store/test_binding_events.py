"""The bindings' change log and the registrations of inbound identities, on both backends."""

from __future__ import annotations

import pytest

from hss_store.allocation import AllocationPolicy
from hss_store.errors import InvalidIdentity, InvalidRequest, StoreError, UnknownBinding
from hss_store.identities import identity_key
from hss_store.records import Agreement, BindingEvent, PrimaryDatabase, Subscriber
from hss_store.schema import LATEST_VERSION

PRIMARY = PrimaryDatabase("primary.example")
INBOUND = AllocationPolicy("inbound", "random", "mig-{random}@partner.example", "sip:mig-{random}@partner.example")
OUTBOUND = AllocationPolicy("outbound", "random", "out-{random}@primary.example", "sip:out-{random}@primary.example")
SCSCF = "sip:scscf.partner.example"


def user(n: int) -> tuple[str, str]:
    return f"u{n}@primary.example", f"sip:u{n}@primary.example"


def test_empty_log(store):
    assert store.last_binding_event_id() == 0
    assert store.binding_events_since(0) == []


def test_allocations_and_revocations_are_logged_in_order(store, clock):
    store.set_policy(INBOUND)
    store.set_policy(OUTBOUND)
    store.add_subscriber(Subscriber.new(*user(1)[:1], [user(1)[1]], bytes(16), opc=bytes(16)))
    store.add_agreement(Agreement("partner-a", "all"))
    start = store.last_binding_event_id()
    a = store.allocate_inbound(PRIMARY, *user(1))
    assert store.allocate_inbound(PRIMARY, *user(1)) == a  # idempotent: nothing new to log
    out = store.allocate_outbound(*user(1), "partner-a")
    clock.advance(10)
    store.revoke_inbound(a.inbound_impi)
    store.revoke_inbound(a.inbound_impi)  # a second revocation changes nothing: no event
    b = store.allocate_inbound(PRIMARY, *user(1))
    c = store.allocate_inbound(PRIMARY, *user(1), rotate=True)  # ends b, then binds c
    store.revoke_outbound(out.outbound_impi)
    events = store.binding_events_since(start)
    assert all(isinstance(e, BindingEvent) for e in events)
    assert [(e.direction, e.impi, e.impu, e.event) for e in events] == [
        ("inbound", a.inbound_impi, a.inbound_impu, "allocated"),
        ("outbound", out.outbound_impi, out.outbound_impu, "allocated"),
        ("inbound", a.inbound_impi, a.inbound_impu, "revoked"),
        ("inbound", b.inbound_impi, b.inbound_impu, "allocated"),
        ("inbound", b.inbound_impi, b.inbound_impu, "revoked"),
        ("inbound", c.inbound_impi, c.inbound_impu, "allocated"),
        ("outbound", out.outbound_impi, out.outbound_impu, "revoked"),
    ]
    ids = [e.id for e in events]
    assert ids == sorted(set(ids)) and store.last_binding_event_id() == ids[-1]
    assert [e.at for e in events[:2]] == [int(clock()) - 10] * 2 and events[2].at == int(clock())
    # paging by id: after any id, exactly the later events, in order
    for i, event in enumerate(events):
        assert store.binding_events_since(event.id) == events[i + 1 :]
    assert store.binding_events_since(start, limit=2) == events[:2]
    assert store.binding_events_since(ids[-1]) == []


def test_bad_arguments(store):
    for bad in (-1, "0", None, 1.5):
        with pytest.raises(InvalidRequest, match="after_id"):
            store.binding_events_since(bad)
    with pytest.raises(InvalidRequest, match="limit"):
        store.binding_events_since(0, limit=0)


def test_a_revocation_that_rolls_back_logs_nothing(store, monkeypatch):
    """The event is written in the revocation's transaction: when that fails after writing
    the event, neither the revocation nor the event remains."""
    store.set_policy(INBOUND)
    binding = store.allocate_inbound(PRIMARY, *user(1))
    last = store.last_binding_event_id()

    def fail(event_id: int) -> None:
        assert store.binding_events_since(last)[0].id == event_id  # written, in this transaction
        raise StoreError("injected failure after the event was written")

    monkeypatch.setattr(store, "_event_written", fail)
    with pytest.raises(StoreError, match="injected"):
        store.revoke_inbound(binding.inbound_impi)
    monkeypatch.undo()
    assert store.last_binding_event_id() == last and store.binding_events_since(last) == []
    assert store.inbound_by_impi(binding.inbound_impi) == binding  # still active
    store.revoke_inbound(binding.inbound_impi)
    [event] = store.binding_events_since(last)
    assert (event.impi, event.event) == (binding.inbound_impi, "revoked")


def test_concurrent_writers_a_poller_misses_no_event(make_store, backend, follow_log_while_writing):
    """Four writers allocate and revoke at once while a poller follows the log by id; the
    poller sees every event exactly once (ids become visible in increasing order)."""
    stores = [make_store(backend, check_same_thread=False) if backend == "sqlite" else make_store(backend)
              for _ in range(5)]
    stores[0].set_policy(INBOUND)

    def write(store, worker: int) -> None:
        for i in range(15):
            binding = store.allocate_inbound(PRIMARY, *user(worker * 100 + i))
            store.revoke_inbound(binding.inbound_impi)

    seen, every = follow_log_while_writing(stores, write, "binding_events_since")
    assert len(every) == 4 * 15 * 2
    assert seen == every


# -- registrations of inbound identities ---------------------------------------------------------


def test_inbound_registration(store):
    store.set_policy(INBOUND)
    binding = store.allocate_inbound(PRIMARY, *user(1))
    assert store.inbound_registration(binding.inbound_impi) is None
    store.set_inbound_registration(binding.inbound_impi, SCSCF)
    assert store.inbound_registration(binding.inbound_impi) == SCSCF
    store.set_inbound_registration(binding.inbound_impi, SCSCF)  # the same again is fine
    store.revoke_inbound(binding.inbound_impi)
    assert store.inbound_registration(binding.inbound_impi) == SCSCF  # who gets the RTR
    store.set_inbound_registration(binding.inbound_impi, None)
    assert store.inbound_registration(binding.inbound_impi) is None


def test_inbound_registration_errors(store):
    store.set_policy(INBOUND)
    binding = store.allocate_inbound(PRIMARY, *user(1))
    with pytest.raises(UnknownBinding, match="never allocated"):
        store.set_inbound_registration("nobody@partner.example", SCSCF)
    with pytest.raises(UnknownBinding, match="nobody@partner.example"):
        store.inbound_registration("nobody@partner.example")
    with pytest.raises(InvalidIdentity):
        store.inbound_registration("nobody")
    with pytest.raises(InvalidRequest, match="S-CSCF name"):
        store.set_inbound_registration(binding.inbound_impi, "")


# -- schema 1 -> 2 -------------------------------------------------------------------------------


def _version_1_binding() -> tuple[str, ...]:
    """What schema version 1 held of one inbound binding."""
    keys = identity_key("old@partner.example"), identity_key("sip:old@partner.example")
    binding = (
        "INSERT INTO primary_db (realm, host) VALUES ('primary.example', '')",
        "INSERT INTO inbound_binding (inbound_impi, inbound_impu, impi_key, impu_key, primary_db, primary_impi, "
        f"primary_impu, request_key, created_at) SELECT 'old@partner.example', 'sip:old@partner.example', {keys[0]}, "
        f"{keys[1]}, id, 'a@primary.example', 'sip:a@primary.example', 3, 0 FROM primary_db",
    )
    return binding


def test_version_1_is_migrated(make_store, backend, tmp_path, request, create_at_version):
    location = str(tmp_path / "store.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")
    create_at_version(backend, location, 1, *_version_1_binding())
    from hss_store import open_store

    with open_store(location) as store:
        assert store.schema_version() == LATEST_VERSION == 4
        assert store.inbound_registration("old@partner.example") is None
        store.set_inbound_registration("old@partner.example", SCSCF)
        assert store.inbound_registration("old@partner.example") == SCSCF
        assert store.last_binding_event_id() == 0
        assert store.last_agreement_event_id() == 0 and store.agreement_events_since(0) == []
