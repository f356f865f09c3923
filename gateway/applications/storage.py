"""Calling the SIP database (hss_store) without blocking the reactor.

An in-process store (SQLite: point lookups of microseconds, writes short) is called in the
reactor thread, which is about fifteen times faster than a hop through a thread pool; its
WAL checkpoints, the one slow thing a commit may do, run in a thread of their own
(hss_store.checkpoint). A
store across the network (PostgreSQL) is called from a pool of threads of its own, each call
with a deadline below Tx, so that a slow or restarting server costs a well-formed error
answer at once, never a stalled reactor or a silent request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from hss_store.errors import StoreError, StoreUnavailable
from hss_store.store import HssStore

T = TypeVar("T")


class StoreAccess:
    def __init__(self, store: HssStore, reactor: Any, deadline: float = 2.0, threads: int = 4) -> None:
        self.store = store
        self.reactor = reactor
        self.deadline = deadline
        self._pool: ThreadPool | None = None
        store.checkpoint_in_background()
        if not store.in_process:
            self._pool = ThreadPool(minthreads=1, maxthreads=threads, name="hss_store")
            self._pool.start()

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> Deferred[T]:
        """``function(*args, **kwargs)`` (a bound method of the store): its result, or its
        StoreError; any other failure, and a deadline passed, as StoreUnavailable."""
        if self._pool is None:
            try:
                return succeed(function(*args, **kwargs))
            except StoreError as error:
                return fail(error)
            except Exception as error:  # a bug or a broken file: the caller answers 5012
                return fail(StoreUnavailable(f"the store failed: {error!r}"))
        # a call still queued when its deadline passes is not made: its request has been
        # answered 5012 already, and its work (SQNs, a Server-Name) must not happen late
        started_by = time.monotonic() + self.deadline
        result: Deferred[T] = deferToThreadPool(
            self.reactor, self._pool, _unless_late, started_by, function, *args, **kwargs
        )
        result.addTimeout(self.deadline, self.reactor)
        result.addErrback(self._unavailable)
        return result

    def _unavailable(self, failure: Any) -> Any:
        if failure.check(StoreError):
            return failure
        raise StoreUnavailable(f"the store did not answer within {self.deadline:g} s: {failure.getErrorMessage()}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.stop()
            self._pool = None
        self.store.close()


def _unless_late(started_by: float, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    if time.monotonic() > started_by:
        raise StoreUnavailable("the call waited past its deadline for a free connection; not made")
    return function(*args, **kwargs)
