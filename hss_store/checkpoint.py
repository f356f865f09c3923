"""WAL checkpoints of an SQLite store in a thread of their own, off the writer's thread.

In WAL mode every commit appends to the ``-wal`` file; a *checkpoint* copies those pages
back into the database file and syncs it (https://sqlite.org/wal.html#ckpt). By default
SQLite runs one inside the commit that takes the WAL past 1,000 pages, in the committing
connection: for the gateway that is the reactor thread, which then stops serving for the
10-15 ms of a checkpoint's writes and fsyncs (about every 300 commits of an HSS answering
MARs; bench/RESULTS.md, session 6). ``WalCheckpointer`` moves that work to a thread with
its own connection, running PASSIVE checkpoints (they never wait for, nor block, readers
and writers: https://sqlite.org/c3ref/wal_checkpoint_v2.html) every ``interval``; the
writer's connection keeps an automatic checkpoint only as a backstop far above what the
thread lets the WAL grow to (``BACKSTOP_PAGES``). Python's sqlite3 releases the GIL while
SQLite works, so the reactor runs on during a checkpoint.

Durability is unchanged: a commit is durable when it is in the WAL (see
hss_store.sqlite_store), whoever copies it to the database file later.
"""

from __future__ import annotations

import sqlite3
import threading

INTERVAL = 0.1  # seconds between checkpoints: the WAL holds about 0.1 s of commits
BACKSTOP_PAGES = 20_000  # the writer's own automatic checkpoint (80 MB of 4 KiB pages)


class WalCheckpointer:
    """A daemon thread that checkpoints the WAL of the SQLite file at ``path``."""

    def __init__(self, path: str, interval: float = INTERVAL, busy_timeout: float = 5.0) -> None:
        self.path = path
        self.interval = interval
        self.checkpoints = 0  # PASSIVE checkpoints that copied at least one page
        self.last_error: str | None = None  # the last failure, kept for whoever asks; the thread goes on
        self._stopping = threading.Event()
        # its own connection (a connection belongs to one thread), opened here so that a
        # file that cannot be opened is the caller's error at once
        self._conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
        self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint {path}", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint: (busy, pages in the WAL, pages copied), as SQLite's
        ``PRAGMA wal_checkpoint`` gives them."""
        busy, log, copied = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if copied > 0:
            self.checkpoints += 1
        return busy, log, copied

    def _run(self) -> None:
        try:
            while not self._stopping.wait(self.interval):
                try:
                    self.checkpoint()
                except sqlite3.Error as error:  # (a locked or damaged file: the backstop still holds)
                    self.last_error = str(error)
        finally:
            self._conn.close()

    def stop(self) -> None:
        """Stop the thread and close its connection (waits for a checkpoint under way)."""
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
