"""PostgreSQL specifics: restarts lose nothing; unreachable, hung and busy servers; calls from threads."""

from __future__ import annotations

import os
import random
import signal
import threading
import time

import pytest

from hss_store import open_store
from hss_store.allocation import AllocationPolicy
from hss_store.errors import InvalidRequest, StoreError, StoreUnavailable
from hss_store.pgserver import DEFAULT_BINDIR, TemporaryPostgres, free_port
from hss_store.postgres_store import NOTIFY_CHANNEL, PostgresStore, describe_url
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


# -- calls from a thread pool; the deadline of every call ------------------------------------------

THREADS = 8


def _hammer(store, impis: list[str], stop: threading.Event, outcomes: list, rounds: int | None = None) -> None:
    """A thread-pool worker: MARs (and plain vector requests) until told to stop."""
    rng = random.Random()
    done = 0
    while not stop.is_set() and (rounds is None or done < rounds):
        impi = rng.choice(impis)
        started = time.monotonic()
        try:
            if rng.random() < 0.8:
                vectors = store.multimedia_auth(impi, None, "Unknown", rng.randint(1, 5)).vectors
            else:
                vectors = store.generate_vectors(impi, rng.randint(1, 3))
            outcomes.append((impi, [v.sqn for v in vectors], time.monotonic() - started, None))
        except Exception as exc:  # judged by the test
            outcomes.append((impi, [], time.monotonic() - started, exc))
        done += 1


def _run_workers(store, impis, stop, outcomes, rounds=None) -> list[threading.Thread]:
    workers = [
        threading.Thread(target=_hammer, args=(store, impis, stop, outcomes, rounds), name=f"pool-{i}")
        for i in range(THREADS)
    ]
    for w in workers:
        w.start()
    return workers


def _sqns_by_user(outcomes) -> dict[str, list[int]]:
    issued: dict[str, list[int]] = {}
    for impi, sqns, _, _ in outcomes:
        issued.setdefault(impi, []).extend(sqns)
    return issued


def test_eight_threads_never_share_a_sqn(postgres_url):
    store = PostgresStore(postgres_url, max_connections=THREADS)
    impis = [IMPI, "bob@ims.example.net"]
    for impi in impis:
        store.add_subscriber(_subscriber(impi))
    outcomes: list = []
    for w in _run_workers(store, impis, threading.Event(), outcomes, rounds=40):
        w.join()
    assert [o[3] for o in outcomes if o[3] is not None] == []
    assert len(outcomes) == THREADS * 40
    for impi, sqns in _sqns_by_user(outcomes).items():
        assert len(sqns) == len(set(sqns)), f"a SQN of {impi} was issued twice"
        assert store.get_subscriber(impi).sqn == max(sqns)
    assert store._open <= THREADS
    store.close()


def test_restart_mid_load_fails_or_succeeds_within_the_deadline(own_server):
    """pg_ctl restart, then a stop and a start, while 8 threads make calls: each call returns
    vectors or a StoreError, within its deadline; no SQN is issued twice; calls succeed again."""
    timeout = 1.0
    store = open_store(own_server.url, timeout=timeout, max_connections=THREADS)
    store.add_subscriber(_subscriber())
    stop, outcomes = threading.Event(), []
    workers = _run_workers(store, [IMPI], stop, outcomes)

    def successes_after(index: int, wanted: int) -> None:
        _wait_for(lambda: sum(1 for o in outcomes[index:] if o[3] is None) >= wanted)

    try:
        successes_after(0, 200)
        own_server.restart()  # quick: the calls that meet it mostly reconnect within their deadline
        successes_after(len(outcomes), 200)
        own_server.stop_server()  # down for longer than a deadline: calls fail, in time
        stopped = len(outcomes)
        _wait_for(lambda: sum(1 for o in outcomes[stopped:] if o[3] is not None) >= 2 * THREADS)
        own_server.start_server()
        successes_after(len(outcomes), 200)
    finally:
        stop.set()
        for w in workers:
            w.join()
    failures = [o[3] for o in outcomes if o[3] is not None]
    assert failures and all(isinstance(exc, StoreError) for exc in failures), failures
    # generous (the deadline is 1 s): a call never waits out connect_timeout (5 s) or
    # reconnect_timeout (15 s), which is what it did before calls had a deadline
    assert max(o[2] for o in outcomes) < timeout + 2.0
    sqns = _sqns_by_user(outcomes)[IMPI]
    assert len(sqns) == len(set(sqns))
    assert store.get_subscriber(IMPI).sqn >= max(sqns)
    store.close()


def _wait_for(condition, limit: float = 60.0) -> None:
    """Block until the workers have made progress (an Event-free wait on their output)."""
    ready = threading.Event()
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the workers made no progress"
        ready.wait(0.01)


def _server_pids(server) -> list[int]:
    """The postmaster and its children (backends, background processes)."""
    postmaster = int((server.data / "postmaster.pid").read_text().split()[0])
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()  # noqa: SIM115 - one read
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                children.append(int(entry))
    return [postmaster, *children]


def _in_thread(call):
    """Run a store call in a thread; (result or exception, finished). A hang shows as not finished."""
    box: list = []

    def target():
        try:
            box.append(call())
        except BaseException as exc:  # handed to the test
            box.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(30)  # liveness bound only: the store's own deadline is 0.5 s
    return (box[0] if box else None), not thread.is_alive()


def test_a_hung_server_is_store_unavailable_within_the_deadline(own_server):
    """SIGSTOP every server process: the statement in flight and the connection attempt
    that follows both end at the call's deadline; after SIGCONT calls work again."""
    store = open_store(own_server.url, timeout=0.5)
    store.add_subscriber(_subscriber())
    pids = _server_pids(own_server)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        outcome, finished = _in_thread(lambda: store.multimedia_auth(IMPI, None, "Unknown", 1))
        assert finished, "a call to a hung server outlived its deadline"
        assert isinstance(outcome, StoreUnavailable) and "did not answer within" in str(outcome)
        outcome, finished = _in_thread(lambda: store.generate_vectors(IMPI))  # needs a new connection
        assert finished and isinstance(outcome, StoreUnavailable), outcome
        assert "did not complete a connection" in str(outcome)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    result = store.multimedia_auth(IMPI, None, "Unknown", 1)
    assert len(result.vectors) == 1
    store.close()


def test_a_lock_held_too_long_is_the_statement_timeout(postgres_url):
    """Another session holds the subscriber row: the MAR gives up at the deadline (the
    server's statement_timeout), its connection stays usable, and the SQN is unchanged."""
    import psycopg

    store = PostgresStore(postgres_url, timeout=0.5)
    store.add_subscriber(_subscriber())
    with psycopg.connect(postgres_url) as holder:
        holder.execute("SELECT sqn FROM subscriber WHERE impi = %s FOR UPDATE", (IMPI,))
        outcome, finished = _in_thread(lambda: store.multimedia_auth(IMPI, None, "Unknown", 1))
        assert finished and isinstance(outcome, StoreUnavailable), outcome
        assert "statement timeout" in str(outcome)
        holder.rollback()
    assert store.get_subscriber(IMPI).sqn == 0
    assert len(store._idle) == 1  # the cancelled statement did not cost the connection
    assert len(store.multimedia_auth(IMPI, None, "Unknown", 2).vectors) == 2
    store.close()


def test_all_connections_busy_ends_at_the_deadline(postgres_url):
    store = PostgresStore(postgres_url, timeout=0.3, max_connections=1)
    store.add_subscriber(_subscriber())
    held = store._acquire(time.monotonic() + 5)  # as a call in flight on the only connection does
    outcome, finished = _in_thread(lambda: store.get_subscriber(IMPI))
    store._release(held, reusable=True)
    assert finished and isinstance(outcome, StoreUnavailable) and "stayed busy" in str(outcome)
    assert store.get_subscriber(IMPI).impi == IMPI
    store.close()


def test_timeout_option_is_checked(postgres_url):
    with pytest.raises(InvalidRequest, match="timeout"):
        PostgresStore(postgres_url, timeout=0)
    with pytest.raises(InvalidRequest, match="max_connections"):
        PostgresStore(postgres_url, max_connections=0)


def test_a_revocation_notifies_listeners(postgres_url):
    """NOTIFY cxgw_bindings, payload the event id, delivered when the revocation commits."""
    import psycopg

    store = PostgresStore(postgres_url)
    store.set_policy(AllocationPolicy("inbound", "random", "m-{random}@p.example", "sip:m-{random}@p.example"))
    binding = store.allocate_inbound(PrimaryDatabase("primary.example"), "a@primary.example", "sip:a@primary.example")
    with psycopg.connect(postgres_url, autocommit=True) as listener:
        listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
        store.revoke_inbound(binding.inbound_impi)
        notes = list(listener.notifies(timeout=10, stop_after=1))  # liveness bound; it is there already
    assert [(n.channel, int(n.payload)) for n in notes] == [(NOTIFY_CHANNEL, store.last_binding_event_id())]
    assert store.binding_events_since(int(notes[0].payload) - 1)[0].event == "revoked"
    store.close()
