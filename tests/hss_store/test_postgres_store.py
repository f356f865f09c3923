"""PostgreSQL specifics: a server restart between operations loses nothing; unreachable server."""

from __future__ import annotations

import pytest

from hss_store import open_store
from hss_store.allocation import AllocationPolicy
from hss_store.errors import StoreUnavailable
from hss_store.pgserver import DEFAULT_BINDIR, TemporaryPostgres, free_port
from hss_store.postgres_store import PostgresStore, describe_url
from hss_store.records import PrimaryDatabase, Subscriber

IMPI = "alice@ims.example.net"


@pytest.fixture
def own_server(require_program):
    """A server of its own: these tests stop and restart it."""
    require_program("initdb", f"{DEFAULT_BINDIR}/initdb")
    with TemporaryPostgres() as server:
        yield server


def _subscriber(impi: str = IMPI) -> Subscriber:
    return Subscriber.new(impi, [f"sip:{impi}"], bytes(16), opc=bytes(16))


def test_restart_between_operations_loses_no_committed_write(own_server):
    store = open_store(own_server.url)
    assert isinstance(store, PostgresStore) and not store.in_process
    store.add_subscriber(_subscriber())
    issued = [v.sqn for v in store.generate_vectors(IMPI, 3)]
    store.set_policy(AllocationPolicy("inbound", "random", "m-{random}@p.example", "sip:m-{random}@p.example"))
    binding = store.allocate_inbound(PrimaryDatabase("primary.example"), "a@primary.example", "sip:a@primary.example")

    own_server.restart()  # every server-side connection is gone now

    more = store.generate_vectors(IMPI, 2)  # the next operation reconnects and succeeds
    assert more[0].sqn > issued[-1]
    assert store.inbound_by_impi(binding.inbound_impi) == binding
    store.add_subscriber(_subscriber("bob@ims.example.net"))

    own_server.stop_server()
    own_server.start_server()

    fresh = open_store(own_server.url)  # a second instance sees every committed write
    assert fresh.get_subscriber(IMPI).sqn == more[-1].sqn
    assert fresh.get_subscriber("bob@ims.example.net").impi == "bob@ims.example.net"
    assert store.get_subscriber("bob@ims.example.net").impi == "bob@ims.example.net"
    fresh.close()
    store.close()


def test_server_down_is_store_unavailable_then_recovers(own_server):
    store = open_store(own_server.url, reconnect_timeout=0.5)
    store.add_subscriber(_subscriber())
    own_server.stop_server()
    with pytest.raises(StoreUnavailable, match="unreachable"):
        store.generate_vectors(IMPI)
    own_server.start_server()
    [vector] = store.generate_vectors(IMPI)  # the failed call wrote nothing; this one works
    assert vector.sqn > 0
    store.close()


def test_unreachable_at_open():
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    with pytest.raises(StoreUnavailable, match="unreachable.*--db URL"):
        PostgresStore(url, connect_timeout=1)


def test_describe_url_hides_the_password():
    assert describe_url("postgresql://u:secret@db.example:5433/hss") == "db.example:5433/hss"


def test_add_subscriber_retried_after_an_unseen_commit_is_not_a_duplicate(postgres_url):
    """The retry after a reconnect finds its own row: success; a different row stays a duplicate."""
    from hss_store.errors import DuplicateSubscriber

    store = PostgresStore(postgres_url)
    store.add_subscriber(_subscriber())
    store._retrying = True  # what _run sets while it repeats an operation after reconnecting
    try:
        assert store.add_subscriber(_subscriber()).impi == IMPI
        with pytest.raises(DuplicateSubscriber):
            store.add_subscriber(Subscriber.new(IMPI, [f"sip:{IMPI}"], bytes(16), opc=b"\x01" * 16))
    finally:
        store._retrying = False
    with pytest.raises(DuplicateSubscriber):
        store.add_subscriber(_subscriber())
    store.close()
