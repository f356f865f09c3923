"""PostgreSQL backend: one store shared by several gateway instances.

Each call is a network round trip, so ``in_process`` is False: the gateway runs these
calls in a thread pool. A psycopg connection must not serve two threads at once, so each
call borrows a connection of the store's own small pool (at most ``max_connections``,
opened on demand, kept open) and gives it back when it ends; a call made inside another
one, in the same thread, uses the outer call's connection. Multi-statement writes run in a
transaction; allocations take an advisory transaction lock on the request's hash, pool rows
are picked ``FOR UPDATE SKIP LOCKED``, a MAR locks its subscriber row ``FOR UPDATE``.

Deadline: a call ends within ``timeout`` seconds (default 2, below the Diameter Tx of 4 s)
of its start, whatever the server does, with a result or a StoreError:

- each connection carries a ``statement_timeout`` a little shorter than ``timeout``, so the
  server cancels a statement that runs or waits for a lock too long before the watchdog
  below has to cut the connection (StoreUnavailable; the connection stays usable);
- a watchdog thread shuts down the socket of a call still running at its deadline (a
  server that stopped answering cannot cancel anything itself); the call fails with
  StoreUnavailable and that connection is dropped;
- connections are opened in a helper thread, waited for only until the deadline;
- waiting for a free connection and re-connecting stop at the deadline too.

Reconnect: when the connection breaks (server restarted, network cut), the call that noticed
it drops the store's idle connections (they went the same way), reconnects, polling until
its deadline (or ``reconnect_timeout`` if that comes first), and runs once more. Every
operation is safe to run again: reads trivially, the SQN write is a compare-and-set (a
repeat after an unseen commit skips SQNs, never reuses one), allocations are idempotent,
revocations are no-ops the second time, and an ``add_subscriber`` that finds its own row
(identical data) on the retry succeeds. A commit the server acknowledged is never lost; a
call cut by its deadline may have committed (SQNs then skipped, never reissued).
"""

from __future__ import annotations

import math
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pgerrors
from psycopg.pq import TransactionStatus

from hss_store.errors import IncompatibleSchema, InvalidRequest, StoreError, StoreUnavailable
from hss_store.keywrap import MasterKey
from hss_store.schema import LATEST_VERSION, POSTGRES_MIGRATIONS
from hss_store.sql_bindings import BindingsSqlStore
from hss_store.sqlstore import Conflict, Row

T = TypeVar("T")
Connection = psycopg.Connection[Any]
_MIGRATION_LOCK = 0x63786777  # "cxgw": one migrating instance at a time
_EVENTS_LOCK = 0x63786765  # "cxge": writers of binding_events, one at a time (see _event_lock)
NOTIFY_CHANNEL = "cxgw_bindings"  # LISTEN on it to learn of a new binding event early
DEFAULT_TIMEOUT = 2.0
STATEMENT_TIMEOUT_MARGIN = 0.25  # seconds; statement_timeout = timeout - margin (at most a quarter)
DEFAULT_MAX_CONNECTIONS = 10  # Twisted's reactor thread pool has at most 10 threads by default


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


class _Call:
    """One operation in flight: its deadline and the connection it uses right now."""

    __slots__ = ("conn", "deadline", "cut")

    def __init__(self, deadline: float, conn: Connection | None = None) -> None:
        self.deadline = deadline
        self.conn = conn
        self.cut = False  # the watchdog shut its connection down at the deadline


def _shut_down(conn: Connection) -> None:
    """Make every pending and later read or write on the connection fail at once.

    shutdown(2), not close(2): the descriptor stays the connection's (no reuse race with
    the thread inside libpq), which then sees end-of-file and marks the connection broken.
    """
    try:
        fd = conn.fileno()
    except psycopg.Error:
        return  # closed or broken already
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more: nothing left to wake


class _Watchdog:
    """A thread that cuts the connections of calls still running at their deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._armed: dict[int, _Call] = {}
        self._wake_at = math.inf
        self._thread: threading.Thread | None = None
        self._stopped = False

    def arm(self, call: _Call) -> None:
        with self._cond:
            self._armed[id(call)] = call
            if self._thread is None and not self._stopped:
                self._thread = threading.Thread(target=self._loop, name="cxgw-pg-watchdog", daemon=True)
                self._thread.start()
            if call.deadline < self._wake_at:
                self._cond.notify()

    def disarm(self, call: _Call) -> None:
        with self._cond:
            self._armed.pop(id(call), None)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify()

    def _loop(self) -> None:
        with self._cond:
            while not self._stopped:
                now = time.monotonic()
                for key, call in list(self._armed.items()):
                    if call.deadline <= now and call.conn is not None:
                        del self._armed[key]
                        call.cut = True
                        _shut_down(call.conn)  # under the lock: the caller cannot release it meanwhile
                self._wake_at = min((c.deadline for c in self._armed.values()), default=math.inf)
                self._cond.wait(None if self._wake_at == math.inf else self._wake_at - now)
            self._wake_at = math.inf


class _Opening:
    """A connection being opened in a helper thread; the caller waits only until its deadline."""

    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._conn: Connection | None = None
        self._error: BaseException | None = None
        self._abandoned = False
        threading.Thread(target=self._open, args=(connect,), name="cxgw-pg-connect", daemon=True).start()

    def _open(self, connect: Callable[[], Connection]) -> None:
        try:
            conn = connect()
        except BaseException as exc:  # handed to the waiting caller
            self._error = exc
            self._done.set()
            return
        with self._lock:
            if not self._abandoned:
                self._conn = conn
                self._done.set()
                return
        conn.close()  # its caller gave up at its deadline

    def result(self, timeout: float) -> Connection | None:
        """The connection, None if not open within ``timeout``; re-raises the connect error."""
        if not self._done.wait(max(timeout, 0.0)):
            with self._lock:
                if self._conn is None:
                    self._abandoned = True
                    return None
        if self._error is not None:
            raise self._error
        return self._conn


class PostgresStore(BindingsSqlStore):
    """The store in a PostgreSQL database."""

    in_process = False
    _lock_clause = " FOR UPDATE SKIP LOCKED"
    _row_lock = " FOR UPDATE"

    def __init__(
        self,
        url: str,
        *,
        master_key: MasterKey | None = None,
        clock: Callable[[], float] | None = None,
        connect_timeout: float = 5.0,
        reconnect_timeout: float = 15.0,
        timeout: float = DEFAULT_TIMEOUT,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(master_key, clock)
        if not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
            raise InvalidRequest(f"timeout={timeout!r}; give the seconds a store call may take, above 0 (default 2.0)")
        if not isinstance(max_connections, int) or max_connections < 1:
            raise InvalidRequest(f"max_connections={max_connections!r}; give at least 1 (the size of the thread pool)")
        self.url = url
        self.where = describe_url(url)
        self.timeout = float(timeout)
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self._max_connections = max_connections
        self._local = threading.local()
        self._pool = threading.Condition(threading.Lock())
        self._idle: list[Connection] = []  # last in, first out: the warmest connection next
        self._open = 0  # connections open or being opened, idle or in use
        self._closed = False
        self._watchdog = _Watchdog()
        self._sql: dict[str, str] = {}
        # migrations may take long (an index over many rows): their own connection, no timeouts
        migrator = self._connect_before(time.monotonic() + max(connect_timeout, 1.0), statement_timeout=False)
        try:
            self._within(migrator, self._migrate)
            self._run(self._init_master_key)
        except BaseException:
            self.close()
            raise
        finally:
            migrator.close()

    # -- connections ------------------------------------------------------------------------------
    def _open_connection(self, statement_timeout: bool = True) -> Connection:
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(2, math.ceil(self._connect_timeout)),  # libpq's minimum is 2 s
                prepare_threshold=0,
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"PostgreSQL at {self.where} is unreachable ({_text(exc)}); "
                "check that the server runs and the --db URL (host, port, user, database)"
            ) from None
        if statement_timeout:
            # shorter than the call's deadline by a margin, so that on a live server it fires
            # first (for a lock wait, say) and the connection survives
            margin = min(STATEMENT_TIMEOUT_MARGIN, self.timeout / 4)
            try:
                conn.execute(f"SET statement_timeout = {max(1, round((self.timeout - margin) * 1000))}")
            except psycopg.Error as exc:
                conn.close()
                raise StoreUnavailable(f"PostgreSQL at {self.where} failed right after connecting ({_text(exc)})") from None
        return conn

    def _connect_before(self, deadline: float, statement_timeout: bool = True) -> Connection:
        opening = _Opening(lambda: self._open_connection(statement_timeout))
        conn = opening.result(deadline - time.monotonic())
        if conn is None:
            raise StoreUnavailable(
                f"PostgreSQL at {self.where} did not complete a connection within the call's {self.timeout:g} s "
                "(server overloaded or hung, or packets dropped); check the server and the network"
            )
        return conn

    def _acquire(self, deadline: float) -> Connection:
        """An idle connection, or a new one if fewer than max_connections are open; waits until the deadline."""
        with self._pool:
            while True:
                if self._closed:
                    raise StoreUnavailable(f"the store of PostgreSQL at {self.where} was closed; open it again")
                if self._idle:
                    return self._idle.pop()
                if self._open < self._max_connections:
                    self._open += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreUnavailable(
                        f"all {self._max_connections} connections to PostgreSQL at {self.where} stayed busy for "
                        f"{self.timeout:g} s; raise max_connections to the size of the calling thread pool"
                    )
                self._pool.wait(remaining)
        try:
            return self._connect_before(deadline)
        except BaseException:
            self._forget(None)
            raise

    def _forget(self, conn: Connection | None) -> None:
        with self._pool:
            self._open -= 1
            self._pool.notify()
        if conn is not None:
            conn.close()

    def _release(self, conn: Connection, reusable: bool) -> None:
        reusable = reusable and not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE
        with self._pool:
            if reusable and not self._closed:
                self._idle.append(conn)
                self._pool.notify()
                return
        self._forget(conn)

    def _drop_idle(self) -> None:
        """Close the idle connections: one broke, the others most likely went the same way."""
        with self._pool:
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._pool.notify_all()
        for conn in idle:
            conn.close()

    def _reconnect(self, deadline: float) -> Connection:
        """Poll for a new connection until the deadline (the server may be restarting)."""
        limit = min(deadline, time.monotonic() + self._reconnect_timeout)
        backoff = 0.05
        while True:
            try:
                return self._acquire(limit)
            except StoreUnavailable:
                if self._closed or time.monotonic() + backoff >= limit:
                    raise
            time.sleep(backoff)  # between connection attempts; ends before the deadline (checked above)
            backoff = min(backoff * 2, 1.0)

    # -- running an operation -----------------------------------------------------------------------
    @property
    def _current(self) -> _Call | None:
        return getattr(self._local, "call", None)

    @property
    def _conn(self) -> Connection:
        call = self._current
        if call is None or call.conn is None:
            raise StoreError("internal: a PostgreSQL statement outside a store operation")
        return call.conn

    @property  # type: ignore[override]
    def _retrying(self) -> bool:
        return getattr(self._local, "retrying", False)

    @_retrying.setter
    def _retrying(self, value: bool) -> None:
        self._local.retrying = value

    def _within(self, conn: Connection, work: Callable[[], T]) -> T:
        """Run ``work`` on a connection of our choosing, without deadline (migrations)."""
        self._local.call = _Call(math.inf, conn)
        try:
            return work()
        finally:
            self._local.call = None

    def _late(self, call: _Call, exc: BaseException | None) -> StoreUnavailable:
        detail = f" ({_text(exc)})" if exc is not None else ""
        return StoreUnavailable(
            f"PostgreSQL at {self.where} did not answer within the call's {self.timeout:g} s{detail}; "
            "the server is overloaded, hung or cut off. Check it; raise the store timeout only if it is "
            "merely slow (it must stay below the Diameter Tx timer)"
        )

    def _run(self, work: Callable[[], T]) -> T:
        if self._current is not None:  # nested inside an operation: the outer one retries
            return work()
        call = _Call(time.monotonic() + self.timeout)
        self._local.call = call
        try:
            return self._attempt(call, work)
        finally:
            self._local.call = None
            self._retrying = False

    def _attempt(self, call: _Call, work: Callable[[], T]) -> T:
        conn = call.conn = self._acquire(call.deadline)
        for attempt in (1, 2):
            self._watchdog.arm(call)
            try:
                result = work()
            except psycopg.OperationalError as exc:
                self._watchdog.disarm(call)
                if call.cut or time.monotonic() >= call.deadline:
                    self._forget(conn)
                    raise self._late(call, exc) from exc
                if isinstance(exc, pgerrors.QueryCanceled):  # our statement_timeout
                    self._release(conn, reusable=True)
                    raise self._late(call, exc) from exc
                if not (conn.broken or conn.closed):
                    self._release(conn, reusable=True)
                    raise StoreError(f"PostgreSQL at {self.where}: {_text(exc)}") from exc
                self._forget(conn)
                self._drop_idle()
                if attempt == 2:
                    raise StoreUnavailable(
                        f"PostgreSQL at {self.where} failed again after reconnecting ({_text(exc)})"
                    ) from exc
                call.conn = None
                conn = call.conn = self._reconnect(call.deadline)
                self._retrying = True
                continue
            except psycopg.Error as exc:  # from outside _execute: a COMMIT refused, for one
                self._watchdog.disarm(call)
                self._release(conn, reusable=not call.cut)
                raise StoreError(f"PostgreSQL at {self.where}: {_text(exc)}") from exc
            except BaseException:
                self._watchdog.disarm(call)
                self._release(conn, reusable=not call.cut)
                raise
            self._watchdog.disarm(call)
            self._release(conn, reusable=not call.cut)
            return result
        raise AssertionError("unreachable")

    def close(self) -> None:
        with self._pool:
            self._closed = True
        self._drop_idle()
        self._watchdog.stop()

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

    # -- change log ---------------------------------------------------------------------------------
    def _event_lock(self) -> None:
        # An identity value is taken at INSERT but becomes visible at COMMIT, so two writers
        # could make id 6 visible before id 5, and a reader that had seen 6 would never see 5.
        # Holding this lock from before the INSERT to the commit orders them (events are the
        # last writes of their transaction, so nothing waits while holding it).
        self._x("SELECT pg_advisory_xact_lock(?)", (_EVENTS_LOCK,))

    def _event_written(self, event_id: int) -> None:
        self._x("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, str(event_id)))  # delivered at commit

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
        if self._current is None:  # a statement on its own (tools, tests): an operation of its own
            return self._run(lambda: self._q(sql, params))
        cur = self._execute(sql, params)
        return cur.fetchall() if cur.description else []

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        if self._current is None:
            return self._run(lambda: self._one(sql, params))
        cur = self._execute(sql, params)
        return cur.fetchone() if cur.description else None

    def _x(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        if self._current is None:
            return self._run(lambda: self._x(sql, params))
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
