"""Versioned schema migrations, one list per dialect.

Migration N brings a database from version N-1 to N. SQLite records the version in
``PRAGMA user_version``, PostgreSQL in the one-row table ``schema_version``. A database
newer than the code is refused (IncompatibleSchema) rather than half understood.

Sizes matter on SQLite (goal: 1M bindings under 300 MB): binding tables are rowid tables
whose unique indexes cover 64-bit hashes of the migration IMPI and IMPU (``impi_key``,
``impu_key``, see ``identities.identity_key``) rather than the strings; the primary
database identifier is a small integer into ``primary_db``; the request of an allocation
is found via a 64-bit hash (``request_key``) instead of an index over three strings.
Queries always compare the strings as well, so a hash only narrows the search. On
PostgreSQL (no size goal) the strings themselves are the primary key and unique.
"""

from __future__ import annotations

SQLITE_MIGRATIONS: list[list[str]] = [
    # 1: initial schema
    [
        """CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE subscriber (
            impi TEXT PRIMARY KEY,
            k BLOB NOT NULL,
            opc BLOB NOT NULL,
            amf BLOB NOT NULL,
            sqn INTEGER NOT NULL,
            schemes TEXT NOT NULL,
            scscf_name TEXT,
            groups TEXT NOT NULL DEFAULT '',
            wrapped INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID""",
        """CREATE TABLE impu (
            impi TEXT NOT NULL REFERENCES subscriber(impi) ON DELETE CASCADE,
            impu TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (impi, impu)
        ) WITHOUT ROWID""",
        """CREATE TABLE agreement (
            partner_id TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (partner_id, scope, value)
        ) WITHOUT ROWID""",
        """CREATE TABLE allocation_policy (
            direction TEXT PRIMARY KEY, mode TEXT NOT NULL, impi_pattern TEXT, impu_pattern TEXT,
            ttl_seconds INTEGER, rotate INTEGER NOT NULL
        )""",
        """CREATE TABLE identity_pool (
            direction TEXT NOT NULL, impi TEXT NOT NULL, impu TEXT NOT NULL,
            used INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (direction, impi)
        ) WITHOUT ROWID""",
        """CREATE INDEX identity_pool_free ON identity_pool(direction, used)""",
        """CREATE TABLE primary_db (
            id INTEGER PRIMARY KEY, realm TEXT NOT NULL, host TEXT NOT NULL, UNIQUE (realm, host)
        )""",
        # Rowid tables (appended in order, pages full) with unique indexes on 64-bit hashes of
        # the identities: half the size of text indexes. Lookups compare the text too.
        """CREATE TABLE inbound_binding (
            inbound_impi TEXT NOT NULL,
            inbound_impu TEXT NOT NULL,
            impi_key INTEGER NOT NULL,
            impu_key INTEGER NOT NULL,
            primary_db INTEGER NOT NULL REFERENCES primary_db(id),
            primary_impi TEXT NOT NULL,
            primary_impu TEXT NOT NULL,
            request_key INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            revoked_at INTEGER
        )""",
        """CREATE UNIQUE INDEX inbound_binding_impi ON inbound_binding(impi_key)""",
        """CREATE UNIQUE INDEX inbound_binding_impu ON inbound_binding(impu_key)""",
        """CREATE INDEX inbound_binding_request ON inbound_binding(request_key)""",
        """CREATE TABLE outbound_binding (
            outbound_impi TEXT NOT NULL,
            outbound_impu TEXT NOT NULL,
            impi_key INTEGER NOT NULL,
            impu_key INTEGER NOT NULL,
            real_impi TEXT NOT NULL,
            real_impu TEXT NOT NULL,
            partner_id TEXT NOT NULL,
            request_key INTEGER NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER,
            revoked_at INTEGER
        )""",
        """CREATE UNIQUE INDEX outbound_binding_impi ON outbound_binding(impi_key)""",
        """CREATE UNIQUE INDEX outbound_binding_impu ON outbound_binding(impu_key)""",
        """CREATE INDEX outbound_binding_request ON outbound_binding(request_key)""",
    ],
    # 2: the bindings' change log (a gateway polls it for revocations made by another
    # process) and the S-CSCF that registered an inbound identity (for the RTR that follows
    # its revocation, TS 29.228 §6.1.3). AUTOINCREMENT: an id is never reused, even after the
    # newest rows are deleted, so "events after id N" stays exact.
    [
        """CREATE TABLE binding_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            direction TEXT NOT NULL,
            impi TEXT NOT NULL,
            impu TEXT NOT NULL,
            event TEXT NOT NULL,
            at INTEGER NOT NULL
        )""",
        """ALTER TABLE inbound_binding ADD COLUMN server_name TEXT""",
    ],
    # 3: the subscriber of a public identity (an LIR names only that, TS 29.228 §6.2.1)
    [
        """CREATE INDEX impu_by_impu ON impu(impu)""",
    ],
    # 4: the agreements' change log, as the bindings' (a primary gateway keeps a partner's
    # agreements in memory and polls it for changes made by another process)
    [
        """CREATE TABLE agreement_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            partner_id TEXT NOT NULL,
            event TEXT NOT NULL,
            at INTEGER NOT NULL
        )""",
    ],
]

POSTGRES_MIGRATIONS: list[list[str]] = [
    # 1: initial schema (same tables as SQLite, PostgreSQL types)
    [
        """CREATE TABLE meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL)""",
        """CREATE TABLE subscriber (
            impi TEXT PRIMARY KEY,
            k BYTEA NOT NULL,
            opc BYTEA NOT NULL,
            amf BYTEA NOT NULL,
            sqn BIGINT NOT NULL,
            schemes TEXT NOT NULL,
            scscf_name TEXT,
            groups TEXT NOT NULL DEFAULT '',
            wrapped INTEGER NOT NULL DEFAULT 0
        )""",
        """CREATE TABLE impu (
            impi TEXT NOT NULL REFERENCES subscriber(impi) ON DELETE CASCADE,
            impu TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (impi, impu)
        )""",
        """CREATE TABLE agreement (
            partner_id TEXT NOT NULL, scope TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (partner_id, scope, value)
        )""",
        """CREATE TABLE allocation_policy (
            direction TEXT PRIMARY KEY, mode TEXT NOT NULL, impi_pattern TEXT, impu_pattern TEXT,
            ttl_seconds BIGINT, rotate INTEGER NOT NULL
        )""",
        """CREATE TABLE identity_pool (
            direction TEXT NOT NULL, impi TEXT NOT NULL, impu TEXT NOT NULL,
            used INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (direction, impi)
        )""",
        """CREATE INDEX identity_pool_free ON identity_pool(direction, used)""",
        """CREATE TABLE primary_db (
            id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
            realm TEXT NOT NULL, host TEXT NOT NULL, UNIQUE (realm, host)
        )""",
        """CREATE TABLE inbound_binding (
            inbound_impi TEXT PRIMARY KEY,
            inbound_impu TEXT NOT NULL UNIQUE,
            impi_key BIGINT NOT NULL,
            impu_key BIGINT NOT NULL,
            primary_db BIGINT NOT NULL REFERENCES primary_db(id),
            primary_impi TEXT NOT NULL,
            primary_impu TEXT NOT NULL,
            request_key BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            revoked_at BIGINT
        )""",
        """CREATE INDEX inbound_binding_request ON inbound_binding(request_key)""",
        """CREATE TABLE outbound_binding (
            outbound_impi TEXT PRIMARY KEY,
            outbound_impu TEXT NOT NULL UNIQUE,
            impi_key BIGINT NOT NULL,
            impu_key BIGINT NOT NULL,
            real_impi TEXT NOT NULL,
            real_impu TEXT NOT NULL,
            partner_id TEXT NOT NULL,
            request_key BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            expires_at BIGINT,
            revoked_at BIGINT
        )""",
        """CREATE INDEX outbound_binding_request ON outbound_binding(request_key)""",
    ],
    # 2: as SQLite's 2. Sequence values are taken in transactions that may commit out of
    # order; writers take an advisory lock before inserting (PostgresStore._event_lock) so
    # ids become visible in increasing order and a reader polling by id misses none.
    [
        """CREATE TABLE binding_events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            direction TEXT NOT NULL,
            impi TEXT NOT NULL,
            impu TEXT NOT NULL,
            event TEXT NOT NULL,
            at BIGINT NOT NULL
        )""",
        """ALTER TABLE inbound_binding ADD COLUMN server_name TEXT""",
    ],
    # 3: as SQLite's 3
    [
        """CREATE INDEX impu_by_impu ON impu(impu)""",
    ],
    # 4: as SQLite's 4 (writers take the same advisory lock as for binding_events)
    [
        """CREATE TABLE agreement_events (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            partner_id TEXT NOT NULL,
            event TEXT NOT NULL,
            at BIGINT NOT NULL
        )""",
    ],
]

LATEST_VERSION = len(SQLITE_MIGRATIONS)
assert len(POSTGRES_MIGRATIONS) == LATEST_VERSION, "both dialects must have the same migrations"
