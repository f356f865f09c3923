"""PostgreSQL backend: one store shared by several gateway instances.

Each call is a network round trip, so ``in_process`` is False: the gateway runs these
calls in a thread, not in the reactor. One connection per store object, in autocommit
mode, guarded by a lock (so the object may be shared by threads; open several stores for
parallelism). Multi-statement writes run in a transaction; allocations take an advisory
transaction lock on the request's hash, pool rows are picked ``FOR UPDATE SKIP LOCKED``.

Reconnect: when the connection breaks (server restarted, network cut), the operation
that noticed it reconnects, polling until ``reconnect_timeout``, and runs once more.
Every operation is safe to run again: reads trivially, the SQN write is a
compare-and-set (a repeat after an unseen commit skips SQNs, never reuses one),
allocations are idempotent, revocations are no-ops the second time, and an
``add_subscriber`` that finds its own row (identical data) on the retry succeeds. A commit the
server acknowledged is never lost; if the server stays away, StoreUnavailable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors

from hss_store.errors import IncompatibleSchema, StoreError, StoreUnavailable
from hss_store.keywrap import MasterKey
from hss_store.schema import LATEST_VERSION, POSTGRES_MIGRATIONS
from hss_store.sql_bindings import BindingsSqlStore
from hss_store.sqlstore import Conflict, Row

T = TypeVar("T")
_MIGRATION_LOCK = 0x63786777  # "cxgw": one migrating instance at a time


def _text(exc: BaseException) -> str:
    """An exception's message on one line (libpq's span several)."""
    return " ".join(str(exc).split())


def describe_url(url: str) -> str:
    """host:port/dbname of a conninfo, without the password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable URL>"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class PostgresStore(BindingsSqlStore):
    """The store in a PostgreSQL database."""

    in_process = False
    _lock_clause = " FOR UPDATE SKIP LOCKED"

    def __init__(
        self,
        url: str,
        *,
        master_key: MasterKey | None = None,
        clock: Callable[[], float] | None = None,
        connect_timeout: float = 5.0,
        reconnect_timeout: float = 15.0,
    ) -> None:
        super().__init__(master_key, clock)
        self.url = url
        self.where = describe_url(url)
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._lock = threading.RLock()
        self._depth = 0
        self._sql: dict[str, str] = {}
        self._conn = self._connect()
        self._run(self._migrate)
        self._run(self._init_master_key)

    # -- connection ---------------------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                self.url, autocommit=True, connect_timeout=max(1, int(self._connect_timeout)), prepare_threshold=0
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"PostgreSQL at {self.where} is unreachable ({_text(exc)}); "
                "check that the server runs and the --db URL (host, port, user, database)"
            ) from None

    def _reconnect(self) -> None:
        """Poll for a new connection until the deadline (the server may be restarting)."""
        deadline = time.monotonic() + self._reconnect_timeout
        backoff = 0.05
        while True:
            try:
                self._conn = self._connect()
                return
            except StoreUnavailable:
                if time.monotonic() + backoff >= deadline:
                    raise
            time.sleep(backoff)  # back-off between connection attempts, bounded by the deadline
            backoff = min(backoff * 2, 1.0)

    def _run(self, call: Callable[[], T]) -> T:
        with self._lock:
            if self._depth:  # nested inside an operation: the outer one retries
                return call()
            self._depth += 1
            try:
                try:
                    return call()
                except psycopg.OperationalError as exc:
                    if not (self._conn.broken or self._conn.closed):
                        raise StoreError(f"PostgreSQL at {self.where}: {_text(exc)}") from exc
                self._reconnect()
                self._retrying = True
                try:
                    return call()
                except psycopg.OperationalError as exc:
                    raise StoreUnavailable(
                        f"PostgreSQL at {self.where} failed again after reconnecting ({_text(exc)})"
                    ) from exc
                finally:
                    self._retrying = False
            finally:
                self._depth -= 1

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- schema -----------------------------------------------------------------------------------
    def _migrate(self) -> None:
        self._x("SELECT pg_advisory_lock(?)", (_MIGRATION_LOCK,))
        try:
            self._x("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = self._one("SELECT version FROM schema_version")
            version = int(row[0]) if row else 0
            if version > LATEST_VERSION:
                raise IncompatibleSchema(
                    f"PostgreSQL store at {self.where} has schema version {version}, newer than this code "
                    f"({LATEST_VERSION}); upgrade cx-gateway"
                )
            for number in range(version + 1, LATEST_VERSION + 1):
                with self._txn():
                    for statement in POSTGRES_MIGRATIONS[number - 1]:
                        self._x(statement)
                    self._x("DELETE FROM schema_version")
                    self._x("INSERT INTO schema_version (version) VALUES (?)", (number,))
        finally:
            if not self._conn.broken:
                self._x("SELECT pg_advisory_unlock(?)", (_MIGRATION_LOCK,))

    def schema_version(self) -> int:
        row = self._run(lambda: self._one("SELECT version FROM schema_version"))
        return int(row[0]) if row else 0

    # -- hooks --------------------------------------------------------------------------------------
    def _prepare(self, sql: str) -> str:
        text = self._sql.get(sql)
        if text is None:
            text = self._sql[sql] = sql.replace("?", "%s")
        return text

    def _execute(self, sql: str, params: tuple[Any, ...]) -> psycopg.Cursor[Any]:
        try:
            return self._conn.execute(self._prepare(sql), params)
        except pgerrors.UniqueViolation as exc:
            raise Conflict(str(exc)) from exc
        except psycopg.OperationalError:
            raise  # _run reconnects
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL at {self.where}: {_text(exc)}") from exc

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        cur = self._execute(sql, params)
        return cur.fetchall() if cur.description else []

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        cur = self._execute(sql, params)
        return cur.fetchone() if cur.description else None

    def _x(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        return self._execute(sql, params).rowcount

    def _xmany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            with self._conn.cursor() as cur:
                cur.executemany(self._prepare(sql), rows)
        except pgerrors.UniqueViolation as exc:
            raise Conflict(str(exc)) from exc
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL at {self.where}: {_text(exc)}") from exc

    @contextmanager
    def _txn(self, lock_key: int | None = None) -> Iterator[None]:
        with self._conn.transaction():
            if lock_key is not None:
                self._x("SELECT pg_advisory_xact_lock(?)", (lock_key,))
            yield
