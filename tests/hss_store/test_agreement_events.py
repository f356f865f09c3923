"""The agreements' change log (``agreement_events``, schema 4), on both backends: what a
primary gateway polls to drop the agreements it holds in memory
(gateway.applications.caches)."""

from __future__ import annotations

import pytest

from hss_store.errors import InvalidRequest, StoreError
from hss_store.records import AGREEMENT_EVENTS, Agreement, AgreementEvent


def test_empty_log(store):
    assert store.last_agreement_event_id() == 0
    assert store.agreement_events_since(0) == []


def test_changes_are_logged_in_order(store, clock):
    store.add_agreement(Agreement("partner-a", "all"))
    store.add_agreement(Agreement("partner-a", "all"))  # there already: nothing changes, nothing logged
    clock.advance(10)
    store.add_agreement(Agreement("partner-b", "user", "u1@primary.example"))
    store.remove_agreement(Agreement("partner-a", "all"))
    with pytest.raises(InvalidRequest, match="no agreement"):
        store.remove_agreement(Agreement("partner-a", "all"))  # gone already: nothing logged
    events = store.agreement_events_since(0)
    assert all(isinstance(e, AgreementEvent) and e.event in AGREEMENT_EVENTS for e in events)
    assert [(e.partner_id, e.event) for e in events] == [
        ("partner-a", "added"), ("partner-b", "added"), ("partner-a", "removed"),
    ]
    assert [e.at for e in events] == [int(clock()) - 10, int(clock()), int(clock())]
    ids = [e.id for e in events]
    assert ids == sorted(set(ids)) and store.last_agreement_event_id() == ids[-1]
    for i, event in enumerate(events):  # paging by id: exactly the later events, in order
        assert store.agreement_events_since(event.id) == events[i + 1 :]
    assert store.agreement_events_since(0, limit=2) == events[:2]
    assert store.binding_events_since(0) == []  # a log of its own


def test_bad_arguments(store):
    for bad in (-1, "0", None, 1.5):
        with pytest.raises(InvalidRequest, match="after_id"):
            store.agreement_events_since(bad)
    with pytest.raises(InvalidRequest, match="limit"):
        store.agreement_events_since(0, limit=0)


def test_a_change_that_rolls_back_logs_nothing(store, monkeypatch):
    """The event is written in the change's transaction: when that fails after the event,
    neither the change nor the event remains."""
    store.add_agreement(Agreement("partner-a", "all"))
    last = store.last_agreement_event_id()
    written = store._agreement_event

    def fail(partner_id: str, event: str) -> None:
        written(partner_id, event)
        assert store.agreement_events_since(last)[0].event == event  # written, in this transaction
        raise StoreError("injected failure after the event was written")

    monkeypatch.setattr(store, "_agreement_event", fail)
    with pytest.raises(StoreError, match="injected"):
        store.remove_agreement(Agreement("partner-a", "all"))
    with pytest.raises(StoreError, match="injected"):
        store.add_agreement(Agreement("partner-b", "all"))
    monkeypatch.undo()
    assert store.last_agreement_event_id() == last and store.agreement_events_since(last) == []
    assert store.list_agreements() == [Agreement("partner-a", "all")]  # neither change remains


def test_concurrent_writers_a_poller_misses_no_event(make_store, backend, follow_log_while_writing):
    """Four writers add and remove agreements at once while a poller follows the log by id;
    the poller sees every event exactly once (ids become visible in increasing order)."""
    stores = [make_store(backend, check_same_thread=False) if backend == "sqlite" else make_store(backend)
              for _ in range(5)]

    def write(store, worker: int) -> None:
        for i in range(15):
            agreement = Agreement(f"partner-{worker}", "user", f"u{i}@primary.example")
            store.add_agreement(agreement)
            store.remove_agreement(agreement)

    seen, every = follow_log_while_writing(stores, write, "agreement_events_since")
    assert len(every) == 4 * 15 * 2
    assert seen == every


def test_version_3_is_migrated(backend, tmp_path, request, create_at_version):
    """An existing database gets the log; its agreements stay and their changes are logged."""
    location = str(tmp_path / "store.db") if backend == "sqlite" else request.getfixturevalue("postgres_url")
    create_at_version(backend, location, 3,  # with one agreement
                      "INSERT INTO agreement (partner_id, scope, value) VALUES ('partner-a', 'all', '')")
    from hss_store import open_store

    with open_store(location) as store:
        assert store.schema_version() == 4
        assert store.last_agreement_event_id() == 0
        assert store.list_agreements() == [Agreement("partner-a", "all")]
        store.remove_agreement(Agreement("partner-a", "all"))
        assert [(e.partner_id, e.event) for e in store.agreement_events_since(0)] == [("partner-a", "removed")]
