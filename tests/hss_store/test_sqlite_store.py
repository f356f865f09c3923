"""SQLite specifics: WAL, schema versions, locked and corrupt files."""

from __future__ import annotations

import sqlite3

import pytest

from hss_store import open_store
from hss_store.errors import IncompatibleSchema, StoreCorrupt, StoreLocked, StoreUnavailable
from hss_store.records import Subscriber
from hss_store.schema import LATEST_VERSION
from hss_store.sqlite_store import SqliteStore


def test_new_file_is_wal_and_at_the_latest_schema(tmp_path):
    path = tmp_path / "hss.db"
    with open_store(str(path)) as store:
        assert isinstance(store, SqliteStore) and store.in_process
        assert store.schema_version() == LATEST_VERSION
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    conn.close()
    SqliteStore(path).close()  # reopening does not migrate again


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "hss.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={LATEST_VERSION + 1}")
    conn.close()
    with pytest.raises(IncompatibleSchema, match="newer than this code"):
        SqliteStore(path)


def test_corrupt_file(tmp_path):
    path = tmp_path / "hss.db"
    path.write_bytes(b"this is not a database, just some bytes" * 200)
    with pytest.raises(StoreCorrupt, match="not a valid database"):
        SqliteStore(path)


def test_damaged_pages(tmp_path):
    path = tmp_path / "hss.db"
    with SqliteStore(path, synchronous="FULL") as store:
        for i in range(300):
            store.add_subscriber(Subscriber.new(f"u{i}@x.net", [f"sip:u{i}@x.net"], bytes(16), opc=bytes(16)))
        store._q("PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    for offset in range(4096, len(data), 4096):  # scribble over every page but the header
        data[offset : offset + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt):
        with SqliteStore(path) as store:
            store.list_subscribers(limit=1000)


def test_locked_by_another_writer(tmp_path):
    path = tmp_path / "hss.db"
    SqliteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        with SqliteStore(path, busy_timeout=0.05) as store:
            with pytest.raises(StoreLocked, match="locked by another writer"):
                store.add_subscriber(Subscriber.new("a@x.net", ["sip:a@x.net"], bytes(16), opc=bytes(16)))
            assert store.list_subscribers() == []  # readers are not blocked in WAL mode
    finally:
        holder.rollback()
        holder.close()


def test_unopenable_path(tmp_path):
    with pytest.raises(StoreUnavailable, match="cannot open"):
        SqliteStore(tmp_path / "missing-dir" / "hss.db")


def test_bad_synchronous_mode(tmp_path):
    with pytest.raises(Exception, match="synchronous"):
        SqliteStore(tmp_path / "x.db", synchronous="SOMETIMES")
