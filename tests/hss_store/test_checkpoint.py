"""WAL checkpoints in a thread of their own (hss_store.checkpoint): the writer's commits
never checkpoint below the backstop, the thread does, and it stops with the store."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from twisted.internet.task import Clock

from gateway.applications.storage import StoreAccess
from hss_store import open_store
from hss_store.checkpoint import BACKSTOP_PAGES, WalCheckpointer
from hss_store.records import Subscriber
from hss_store.sqlite_store import SqliteStore

FRAME = 4096 + 24  # a WAL frame: one page and its header (https://sqlite.org/fileformat.html#walformat)


def _wal_frames(path: Path) -> int:
    """How many frames the WAL file has room for: the most it held since it was created (a
    checkpoint lets writers start over at its beginning, it does not shrink the file)."""
    wal = Path(f"{path}-wal")
    return (wal.stat().st_size - 32) // FRAME if wal.exists() else 0


def _fill(store: SqliteStore, count: int) -> None:
    for i in range(count):
        store.add_subscriber(Subscriber.new(f"u{i}@ims.example.net", [f"sip:u{i}@ims.example.net"], bytes(16),
                                            opc=bytes(16)))


def test_commits_leave_the_checkpoints_to_the_thread(tmp_path):
    plain, background = tmp_path / "plain.db", tmp_path / "background.db"
    with SqliteStore(plain) as store:  # SQLite's default: the commit past 1,000 pages checkpoints
        _fill(store, 700)
        assert _wal_frames(plain) < 1100
    with SqliteStore(background) as store:
        store.checkpoint_in_background(interval=3600)  # the thread never gets to it in this test
        assert store._q("PRAGMA wal_autocheckpoint")[0][0] == BACKSTOP_PAGES
        _fill(store, 700)
        held = _wal_frames(background)
        assert held > 1100, "a commit checkpointed"
        busy, log, copied = store.checkpointer.checkpoint()
        assert (busy, log, copied) == (0, held, held) and store.checkpointer.checkpoints == 1
        assert store.get_subscriber("u699@ims.example.net").sqn == 0


def test_the_thread_checkpoints_every_interval_and_stops_with_the_store(tmp_path):
    path = tmp_path / "hss.db"
    store = SqliteStore(path)
    store.checkpoint_in_background(interval=0.01)
    checkpointer = store.checkpointer
    assert checkpointer is not None and checkpointer.running
    copied = threading.Event()  # set by the thread's first checkpoint that copies pages
    checkpoint = checkpointer.checkpoint

    def watched() -> tuple[int, int, int]:
        result = checkpoint()
        if result[2] > 0:
            copied.set()
        return result

    checkpointer.checkpoint = watched  # type: ignore[method-assign]
    _fill(store, 50)
    assert copied.wait(10), f"no checkpoint in 10 s (last error: {checkpointer.last_error})"
    assert checkpointer.checkpoints >= 1
    store.close()
    assert not checkpointer.running and store.checkpointer is None
    conn = sqlite3.connect(path)  # everything reached the database file, and nothing is lost
    assert conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM subscriber").fetchone()[0] == 50
    conn.close()


class _LockedFile:
    """A connection whose every checkpoint fails, as on a file another process damaged or locked."""

    def __init__(self) -> None:
        self.calls = 0
        self.third = threading.Event()  # the thread tried again after two failures

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls >= 3:
            self.third.set()
        raise sqlite3.OperationalError("database is locked")

    def close(self) -> None:
        """(Nothing to close: the test closes the real connection.)"""


def test_a_failing_checkpoint_is_kept_and_the_thread_goes_on(tmp_path):
    path = tmp_path / "hss.db"
    SqliteStore(path).close()
    checkpointer = WalCheckpointer(str(path), interval=0.005)
    locked = _LockedFile()
    real, checkpointer._conn = checkpointer._conn, locked
    assert locked.third.wait(10)
    assert checkpointer.running and checkpointer.last_error == "database is locked"
    checkpointer.stop()
    real.close()
    assert not checkpointer.running


def test_read_only_stores_and_servers_have_no_thread(tmp_path):
    path = tmp_path / "hss.db"
    SqliteStore(path).close()
    with SqliteStore(path, read_only=True) as store:
        store.checkpoint_in_background()
        assert store.checkpointer is None


def test_the_gateway_store_access_checkpoints_in_the_background(tmp_path):
    store = open_store(str(tmp_path / "hss.db"))
    access = StoreAccess(store, Clock())
    checkpointer = store.checkpointer
    assert checkpointer is not None and checkpointer.running
    access.close()
    assert not checkpointer.running
