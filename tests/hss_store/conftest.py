"""Fixtures of the hss_store suite: a real PostgreSQL server and both store backends.

The PostgreSQL server (``hss_store.pgserver.TemporaryPostgres``: initdb into a temp dir,
pg_ctl start on 127.0.0.1 with an OS-chosen port, as the ``postgres`` user when we run
as root) is started once per session, lazily, and stopped at the end. Each test gets a
fresh schema in it, so tests do not see each other's rows.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from hss_store.pgserver import DEFAULT_BINDIR, TemporaryPostgres
from hss_store.postgres_store import PostgresStore
from hss_store.sqlite_store import SqliteStore

INITDB = f"{DEFAULT_BINDIR}/initdb"


class FakeClock:
    """A clock the test moves by hand (no sleeping to make bindings expire)."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="session")
def _postgres_session():
    servers: list[TemporaryPostgres] = []
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def postgres_server(_postgres_session, require_program) -> TemporaryPostgres:
    """The session's PostgreSQL server (skips locally, fails under CI, without the binaries)."""
    require_program("initdb", INITDB)
    if not _postgres_session:
        server = TemporaryPostgres()
        server.start()
        _postgres_session.append(server)
    return _postgres_session[0]


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A URL whose search_path is a fresh, empty schema."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{postgres_server.url}?options=-csearch_path%3D{schema}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(request, tmp_path, clock):
    """Factory: ``make_store(backend, **options)``; every store opened is closed at teardown."""
    opened = []
    locations: dict[str, str] = {}

    def make(backend: str, **options):
        options.setdefault("clock", clock)
        if backend == "sqlite":
            store = SqliteStore(locations.setdefault("sqlite", str(tmp_path / "store.db")), **options)
        else:
            if "postgres" not in locations:
                locations["postgres"] = request.getfixturevalue("postgres_url")
            store = PostgresStore(locations["postgres"], **options)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def store(make_store, backend):
    """A fresh, empty store of each backend."""
    return make_store(backend)


@pytest.fixture
def follow_log_while_writing() -> Callable[..., tuple[list[int], list[int]]]:
    """Four writers (``write(store, worker)``, each on ``stores[worker + 1]``) change the
    store at once while a poller on ``stores[0]`` follows the change log ``events`` (the
    name of a ``*_events_since(after_id, limit)`` method) by id; returns the ids the poller
    saw and every id of the log, for the test to compare."""

    def run(stores: list[Any], write: Callable[[Any, int], None], events: str) -> tuple[list[int], list[int]]:
        done = threading.Event()
        seen: list[int] = []
        errors: list[BaseException] = []

        def writer(worker: int) -> None:
            try:
                write(stores[worker + 1], worker)
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        def poll() -> None:
            since, last = getattr(stores[0], events), 0
            try:
                while True:
                    finished = done.is_set()  # read before the poll: a last full pass follows the writers
                    for event in since(last):
                        assert event.id > last
                        seen.append(event.id)
                        last = event.id
                    if finished:
                        return
            except BaseException as exc:
                errors.append(exc)

        writers = [threading.Thread(target=writer, args=(worker,)) for worker in range(4)]
        poller = threading.Thread(target=poll)
        poller.start()
        for thread in writers:
            thread.start()
        for thread in writers:
            thread.join()
        done.set()
        poller.join()
        assert not errors, errors
        return seen, [event.id for event in getattr(stores[0], events)(0, limit=100_000)]

    return run


@pytest.fixture
def create_at_version() -> Callable[..., None]:
    """``_create_at_version``, for upgrade tests."""
    return _create_at_version


def _create_at_version(backend: str, location: str, version: int, *statements: str) -> None:
    """A database as schema ``version`` left it (its migrations and nothing later), with
    ``statements`` run on it: what an older cx-gateway wrote, for upgrade tests."""
    from hss_store.schema import POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS

    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(location, isolation_level=None)
        for statement in (*(s for m in SQLITE_MIGRATIONS[:version] for s in m), f"PRAGMA user_version={version}",
                          *statements):
            conn.execute(statement)
        conn.close()
        return
    import psycopg

    with psycopg.connect(location, autocommit=True) as conn:
        for statement in (
            *(s for m in POSTGRES_MIGRATIONS[:version] for s in m),
            "CREATE TABLE schema_version (version INTEGER NOT NULL)",
            f"INSERT INTO schema_version (version) VALUES ({version})",
            *statements,
        ):
            conn.execute(statement)  # type: ignore[arg-type]
