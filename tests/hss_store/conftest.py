"""Fixtures of the hss_store suite: a real PostgreSQL server and both store backends.

The PostgreSQL server (``hss_store.pgserver.TemporaryPostgres``: initdb into a temp dir,
pg_ctl start on 127.0.0.1 with an OS-chosen port, as the ``postgres`` user when we run
as root) is started once per session, lazily, and stopped at the end. Each test gets a
fresh schema in it, so tests do not see each other's rows.
"""

from __future__ import annotations

import uuid

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
