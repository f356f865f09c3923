"""SQLite backend: the embedded default, one file in WAL mode.

Calls are plain in-process ``sqlite3`` statements (a point lookup is a few
microseconds), made from the caller's thread: the gateway calls them straight from the
reactor thread. The connection is in autocommit mode; multi-statement writes use
``BEGIN IMMEDIATE`` so that concurrent processes serialise on the write lock and wait up
to ``busy_timeout`` for it.

Durability: ``synchronous="NORMAL"`` (the default) makes a commit durable against the
death of the process (kill -9: the WAL is in the OS before the commit returns) but not
against power loss, which may roll back the last commits; ``"FULL"`` adds an fsync per
commit and survives power loss too, at a lower vector rate (see bench/RESULTS.md).
"""

from __future__ import annotations

import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hss_store.checkpoint import BACKSTOP_PAGES, INTERVAL, WalCheckpointer
from hss_store.errors import (
    IncompatibleSchema,
    InvalidRequest,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    StoreUnavailable,
)
from hss_store.keywrap import MasterKey
from hss_store.schema import LATEST_VERSION, SQLITE_MIGRATIONS
from hss_store.sql_bindings import BindingsSqlStore
from hss_store.sqlstore import Conflict, Row

SYNCHRONOUS_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
# Reads of the database file through a memory map instead of a read() per page
# (https://sqlite.org/mmap.html): a point lookup among 1,000,000 bindings 10 -> 7.7 us
# (bench/RESULTS.md, session 5). Address space, not memory: the pages are the OS's page
# cache, shared by every process on the file. Writes still go through the WAL.
MMAP_SIZE = 1 << 30


class SqliteStore(BindingsSqlStore):
    """The store in one SQLite file."""

    in_process = True

    def __init__(
        self,
        path: str | Path,
        *,
        master_key: MasterKey | None = None,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        clock: Callable[[], float] | None = None,
        check_same_thread: bool = True,
        read_only: bool = False,
    ) -> None:
        super().__init__(master_key, clock)
        if synchronous.upper() not in SYNCHRONOUS_MODES:
            raise InvalidRequest(f"synchronous={synchronous!r}; use one of {', '.join(SYNCHRONOUS_MODES)}")
        self.path = str(path)
        self._busy_timeout = busy_timeout
        self.read_only = read_only
        self.checkpointer: WalCheckpointer | None = None
        # read_only: SQLite's mode=ro URI (https://sqlite.org/uri.html): reads work on a
        # file this user cannot write, nothing is created, any write fails
        target = f"file:{urllib.parse.quote(os.path.abspath(self.path))}?mode=ro" if read_only else self.path
        try:
            self._conn = sqlite3.connect(
                target, timeout=busy_timeout, isolation_level=None, check_same_thread=check_same_thread, uri=read_only
            )
        except sqlite3.Error as exc:
            raise StoreUnavailable(
                f"cannot open SQLite store {self.path!r}: {exc}; check that the directory exists and is writable"
            ) from None
        try:
            self._pragmas(synchronous.upper())
            self._migrate()
            if not read_only:  # read-only, a wrong master key shows when a key is unwrapped
                self._init_master_key()
        except BaseException:
            self._conn.close()
            raise

    # -- setup ------------------------------------------------------------------------------
    def _pragmas(self, synchronous: str) -> None:
        self._q(f"PRAGMA mmap_size={MMAP_SIZE}")
        if self.read_only:
            self._x("PRAGMA query_only=ON")
            return
        mode = self._q("PRAGMA journal_mode=WAL")[0][0]
        if str(mode).lower() != "wal":
            raise StoreUnavailable(f"SQLite store {self.path!r} refused WAL mode (got {mode!r}); is it on a network file system?")
        self._x(f"PRAGMA synchronous={synchronous}")
        self._x("PRAGMA foreign_keys=ON")

    def _migrate(self) -> None:
        version = int(self._q("PRAGMA user_version")[0][0])
        if self.read_only and version != LATEST_VERSION:
            raise StoreUnavailable(
                f"SQLite store {self.path!r} has schema version {version} and this code needs {LATEST_VERSION}; "
                "it cannot be upgraded read-only: run one cxgw provision write command on it as its owner"
            )
        if version > LATEST_VERSION:
            raise IncompatibleSchema(
                f"SQLite store {self.path!r} has schema version {version}, newer than this code ({LATEST_VERSION}); "
                "upgrade cx-gateway"
            )
        for number in range(version + 1, LATEST_VERSION + 1):
            with self._txn():
                for statement in SQLITE_MIGRATIONS[number - 1]:
                    self._x(statement)
                self._x(f"PRAGMA user_version={number}")

    def schema_version(self) -> int:
        return int(self._q("PRAGMA user_version")[0][0])

    def checkpoint_in_background(self, interval: float = INTERVAL) -> None:
        """Checkpoint the WAL in a thread of its own (hss_store.checkpoint) rather than in
        the commit that fills it, so that a commit in the reactor thread never pays for
        one; the writer's automatic checkpoint stays as a backstop. Stopped by ``close``."""
        if self.read_only or self.checkpointer is not None:
            return
        try:
            self.checkpointer = WalCheckpointer(self.path, interval, self._busy_timeout)
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        self._x(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None
        self._conn.close()

    # -- hooks --------------------------------------------------------------------------------
    def _error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return StoreLocked(
                f"SQLite store {self.path!r} stayed locked by another writer for more than {self._busy_timeout}s "
                "(another cxgw process or a long transaction); retry, or find the process holding it"
            )
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError | sqlite3.IntegrityError):
            return StoreCorrupt(
                f"SQLite store {self.path!r} is not a valid database or is damaged ({text}); "
                "restore it from a backup (sqlite3 .recover can salvage rows)"
            )
        if "no such table" in text:
            return StoreCorrupt(f"SQLite store {self.path!r} lacks a table ({text}); it was not created by cx-gateway")
        return StoreError(f"SQLite store {self.path!r}: {text}")

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        try:
            return self._conn.execute(sql, params).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _x(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        try:
            return self._conn.execute(sql, params).rowcount
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    def _xmany(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        try:
            self._conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise Conflict(str(exc)) from exc
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    @contextmanager
    def _txn(self, lock_key: int | None = None) -> Iterator[None]:
        if self._conn.in_transaction:  # nested: the outer transaction decides
            yield
            return
        self._x("BEGIN IMMEDIATE")  # take the write lock now: no upgrade deadlock later
        try:
            yield
        except BaseException:
            self._conn.rollback()
            raise
        try:
            self._conn.commit()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
