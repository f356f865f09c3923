"""The SIP database: subscribers, Milenage AKA, SQN management, migration bindings.

Open a store with :func:`open_store` (a file path for SQLite, a ``postgresql://`` URL for
PostgreSQL); the interface is :class:`hss_store.store.HssStore`, the errors are in
:mod:`hss_store.errors`. No Diameter here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hss_store.store import HssStore


def is_postgres_url(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def open_store(target: str, **options: Any) -> HssStore:
    """A SQLite store for a path, a PostgreSQL store for a ``postgresql://`` URL.

    Options go to the backend (``master_key``, ``clock``, ``busy_timeout``, ``synchronous``
    for SQLite; ``timeout``, ``max_connections``, ``connect_timeout``, ``reconnect_timeout`` for
    PostgreSQL).
    """
    if is_postgres_url(target):
        from hss_store.postgres_store import PostgresStore

        return PostgresStore(target, **options)
    from hss_store.sqlite_store import SqliteStore

    return SqliteStore(target, **options)
