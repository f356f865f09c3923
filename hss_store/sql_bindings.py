"""Migration bindings, identity pools and allocation policies on the shared SQL layer.

Allocation (TR 23.781 steps 4-6 outbound, 9-11 inbound) runs in one write transaction
that is serialised per request (``_txn(lock_key=request_key)``: SQLite's single writer,
a PostgreSQL advisory lock), so that two concurrent identical requests get the same
binding. Migration identities are unique by primary key and unique index; a pool entry
is marked used in the same transaction that binds it (``FOR UPDATE SKIP LOCKED`` on
PostgreSQL) and is never handed out again, even after revocation, because a device may
still hold it.

Every allocation and revocation appends to ``binding_events`` in its own transaction: a
revocation that rolls back leaves no event, and one that commits cannot lose its event.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from hss_store.agreements import no_agreement
from hss_store.allocation import AllocationPolicy, check_direction, request_key
from hss_store.errors import (
    InvalidRequest,
    NoAllocationPolicy,
    PoolExhausted,
    StoreError,
    UnknownBinding,
)
from hss_store.identities import identity_key, validate_impi, validate_impu
from hss_store.records import (
    BindingEvent,
    InboundBinding,
    OutboundBinding,
    PrimaryDatabase,
    check_partner_id,
    check_server_name,
)
from hss_store.sqlstore import Conflict, Row, SqlStore, _limit, chunks, operation

_IN_COLUMNS = "inbound_impi, inbound_impu, primary_db, primary_impi, primary_impu, created_at, expires_at, revoked_at"
_OUT_COLUMNS = "outbound_impi, outbound_impu, real_impi, real_impu, partner_id, created_at, expires_at, revoked_at"
_TABLE = {"inbound": "inbound_binding", "outbound": "outbound_binding"}
_COLUMNS = {"inbound": _IN_COLUMNS, "outbound": _OUT_COLUMNS}
_KEY = {"inbound": "inbound_impi", "outbound": "outbound_impi"}
# The partner's read per MAR (TR 23.781 step 17), one statement kept as it is (no SQL
# made per call): what an active inbound binding of an IMPI gives; revoked ones left out
_ACTIVE_INBOUND = (
    "SELECT inbound_impu, primary_db, primary_impi, primary_impu, created_at, expires_at "
    "FROM inbound_binding WHERE impi_key = ? AND inbound_impi = ? AND revoked_at IS NULL"
)
ActiveInbound = tuple[str, PrimaryDatabase, str, str, int, "int | None"]
# the same for the IMPIs of several MARs: one statement per power of two of keys (at most
# 8 texts, each prepared once by the driver), the keys of a short list repeated
_ACTIVE_INBOUND_MANY = (
    "SELECT impi_key, inbound_impi, inbound_impu, primary_db, primary_impi, primary_impu, created_at, expires_at "
    "FROM inbound_binding WHERE impi_key IN ({}) AND revoked_at IS NULL"
)
_MANY_AT_ONCE = 128
# Pages of every active binding of one direction, in the order of the IMPI's key (indexed on
# both backends): what a gateway holds in memory (gateway.applications.caches), read page by
# page; the first page has no lower bound (a key may be any signed 64-bit value)
_PAGE_COLUMNS = {
    "inbound": "impi_key, inbound_impi, inbound_impu, primary_impi, primary_impu, primary_db, created_at, expires_at",
    "outbound": "impi_key, outbound_impi, outbound_impu, real_impi, real_impu, partner_id, created_at, expires_at",
}
_PAGE_SQL = {
    (direction, first): f"SELECT {columns} FROM {_TABLE[direction]} WHERE "
                        f"{'' if first else 'impi_key > ? AND '}revoked_at IS NULL ORDER BY impi_key LIMIT ?"
    for direction, columns in _PAGE_COLUMNS.items() for first in (True, False)
}
# (IMPI, IMPU, the IMPI and IMPU they stand for, owner, created_at, expires_at)
BindingRow = tuple[str, str, str, str, "PrimaryDatabase | str", int, "int | None"]
_MANY_SQL = {n: _ACTIVE_INBOUND_MANY.format(", ".join("?" * n)) for n in (1 << k for k in range(8))}
ALLOCATION_ATTEMPTS = 5


def _when(ts: int) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class BindingsSqlStore(SqlStore):
    """SqlStore plus bindings; the backends derive from this class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._primaries: dict[int, PrimaryDatabase] = {}

    # -- records -----------------------------------------------------------------------
    def _primary(self, primary_id: int) -> PrimaryDatabase:
        primary = self._primaries.get(primary_id)
        if primary is None:
            realm, host = self._one("SELECT realm, host FROM primary_db WHERE id = ?", (primary_id,)) or ("", "")
            primary = self._primaries[primary_id] = PrimaryDatabase(realm, host or None)
        return primary

    def _primary_id(self, primary: PrimaryDatabase) -> int:
        params = (primary.realm, primary.host or "")
        self._x("INSERT INTO primary_db (realm, host) VALUES (?, ?) ON CONFLICT DO NOTHING", params)
        row = self._one("SELECT id FROM primary_db WHERE realm = ? AND host = ?", params)
        assert row is not None
        return int(row[0])

    def _record(self, direction: str, row: Row) -> InboundBinding | OutboundBinding:
        if direction == "inbound":
            return InboundBinding(row[0], row[1], self._primary(row[2]), row[3], row[4], row[5], row[6], row[7])
        return OutboundBinding(*row)

    def _active(self, direction: str, column: str, value: str, validate: Callable[[str], str]) -> Any:
        label = "IMPI" if column.endswith("impi") else "IMPU"
        row = self._one(
            f"SELECT {_COLUMNS[direction]} FROM {_TABLE[direction]} WHERE {label.lower()}_key = ? AND {column} = ?",
            (identity_key(value), value),
        )
        if row is None:
            validate(value)
            raise UnknownBinding(
                f"no {direction} migration binding for {label} {value!r}; "
                f"allocate one with: cxgw provision binding allocate-{direction} ..."
            )
        record = self._record(direction, row)
        if record.revoked_at is not None:
            raise UnknownBinding(
                f"the {direction} migration binding of {label} {value!r} was revoked at {_when(record.revoked_at)}; "
                "allocate a new one"
            )
        if record.expires_at is not None and self._clock() >= record.expires_at:
            raise UnknownBinding(
                f"the {direction} migration binding of {label} {value!r} expired at {_when(record.expires_at)}; "
                "allocate a new one"
            )
        return record

    # -- policy and pool -----------------------------------------------------------------
    @operation
    def set_policy(self, policy: AllocationPolicy) -> None:
        self._x(
            "INSERT INTO allocation_policy (direction, mode, impi_pattern, impu_pattern, ttl_seconds, rotate) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (direction) DO UPDATE SET mode = excluded.mode, "
            "impi_pattern = excluded.impi_pattern, impu_pattern = excluded.impu_pattern, "
            "ttl_seconds = excluded.ttl_seconds, rotate = excluded.rotate",
            (policy.direction, policy.mode, policy.impi_pattern, policy.impu_pattern, policy.ttl_seconds, int(policy.rotate)),
        )

    def _get_policy(self, direction: str) -> AllocationPolicy:
        check_direction(direction)
        row = self._one(
            "SELECT mode, impi_pattern, impu_pattern, ttl_seconds, rotate FROM allocation_policy WHERE direction = ?",
            (direction,),
        )
        if row is None:
            raise NoAllocationPolicy(
                f"no {direction} allocation policy is set; set one with: cxgw provision policy set {direction} "
                "--impi-pattern 'mig-{random}@your.domain' --impu-pattern 'sip:mig-{random}@your.domain' (or --pool)"
            )
        mode, impi_pattern, impu_pattern, ttl, rotate = row
        return AllocationPolicy(direction, mode, impi_pattern, impu_pattern, ttl, bool(rotate))

    @operation
    def get_policy(self, direction: str) -> AllocationPolicy:
        return self._get_policy(direction)

    @operation
    def add_to_pool(self, direction: str, pairs: Iterable[tuple[str, str]]) -> int:
        check_direction(direction)
        rows = [(direction, validate_impi(impi), validate_impu(impu)) for impi, impu in pairs]
        before = sum(self.pool_status(direction))
        with self._txn():
            for chunk in chunks(rows, 10_000):
                self._xmany(
                    "INSERT INTO identity_pool (direction, impi, impu) VALUES (?, ?, ?) ON CONFLICT DO NOTHING", chunk
                )
        return sum(self.pool_status(direction)) - before

    @operation
    def pool_status(self, direction: str) -> tuple[int, int]:
        counts = dict(
            self._q("SELECT used, COUNT(*) FROM identity_pool WHERE direction = ? GROUP BY used", (check_direction(direction),))
        )
        return int(counts.get(0, 0)), int(counts.get(1, 0))

    def _identities_taken(self, impi: str, impu: str) -> bool:
        """True if the IMPI or IMPU is bound already, in either direction, or is a subscriber's.

        (A different identity with the same 64-bit hash shows up as a Conflict at INSERT on
        SQLite, and the allocation is retried with other identities.)
        """
        keys = (identity_key(impi), impi, identity_key(impu), impu)
        return any(
            self._one(sql, params) is not None
            for sql, params in (
                (
                    "SELECT 1 FROM inbound_binding WHERE (impi_key = ? AND inbound_impi = ?) "
                    "OR (impu_key = ? AND inbound_impu = ?)",
                    keys,
                ),
                (
                    "SELECT 1 FROM outbound_binding WHERE (impi_key = ? AND outbound_impi = ?) "
                    "OR (impu_key = ? AND outbound_impu = ?)",
                    keys,
                ),
                ("SELECT 1 FROM subscriber WHERE impi = ?", (impi,)),
            )
        )

    def _new_identities(self, policy: AllocationPolicy) -> tuple[str, str]:
        if policy.mode == "random":
            for _ in range(ALLOCATION_ATTEMPTS):
                impi, impu = policy.generate()
                if not self._identities_taken(impi, impu):
                    return impi, impu
            raise StoreError(f"{ALLOCATION_ATTEMPTS} random identities in a row were taken; check the pattern")
        while True:
            row = self._one(
                f"SELECT impi, impu FROM identity_pool WHERE direction = ? AND used = 0 LIMIT 1{self._lock_clause}",
                (policy.direction,),
            )
            if row is None:
                raise PoolExhausted(
                    f"the {policy.direction} identity pool has no free entry left ({self.pool_status(policy.direction)[1]} "
                    f"used); load more with: cxgw provision pool add {policy.direction} ..."
                )
            self._x("UPDATE identity_pool SET used = 1 WHERE direction = ? AND impi = ?", (policy.direction, row[0]))
            if not self._identities_taken(row[0], row[1]):
                return row[0], row[1]

    # -- allocation ------------------------------------------------------------------------
    def _allocate(
        self, direction: str, key: int, matches: Callable[[Row], bool], values: Callable[[str, str, int, int | None], tuple],
        rotate: bool | None,
    ) -> Any:
        policy = self._get_policy(direction)
        rotate = policy.rotate if rotate is None else rotate
        table, columns, key_column = _TABLE[direction], _COLUMNS[direction], _KEY[direction]
        for attempt in range(ALLOCATION_ATTEMPTS):
            try:
                with self._txn(lock_key=key):
                    now = self._now()
                    revoked: list[tuple[str, str]] = []  # bindings a rotation ends
                    rows = self._q(f"SELECT {columns} FROM {table} WHERE request_key = ? AND revoked_at IS NULL", (key,))
                    for row in filter(matches, rows):
                        record = self._record(direction, row)
                        if record.is_active(now) and not rotate:
                            return record
                        self._x(
                            f"UPDATE {table} SET revoked_at = ? WHERE impi_key = ? AND {key_column} = ?",
                            (now, identity_key(row[0]), row[0]),
                        )
                        revoked.append((row[0], row[1]))
                    impi, impu = self._new_identities(policy)
                    expires = now + policy.ttl_seconds if policy.ttl_seconds else None
                    row = values(impi, impu, now, expires)
                    self._x(
                        f"INSERT INTO {table} ({columns}, request_key, impi_key, impu_key) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (*row, key, identity_key(impi), identity_key(impu)),
                    )
                    self._events(
                        direction, [(old_impi, old_impu, "revoked") for old_impi, old_impu in revoked]
                        + [(impi, impu, "allocated")], now,
                    )
                    return self._record(direction, row)
            except Conflict:
                if attempt == ALLOCATION_ATTEMPTS - 1:
                    raise StoreError(f"{direction} allocation kept colliding with concurrent ones; retry") from None
        raise AssertionError("unreachable")

    @operation
    def allocate_outbound(
        self, real_impi: str, real_impu: str, partner_id: str, *, rotate: bool | None = None
    ) -> OutboundBinding:
        check_partner_id(partner_id)
        self.check_impu(real_impi, real_impu)
        if not self._may_migrate(partner_id, real_impi):
            raise no_agreement(partner_id, real_impi)
        return self._allocate(
            "outbound",
            request_key("outbound", real_impi, real_impu, partner_id),
            lambda r: (r[2], r[3], r[4]) == (real_impi, real_impu, partner_id),
            lambda impi, impu, now, exp: (impi, impu, real_impi, real_impu, partner_id, now, exp, None),
            rotate,
        )

    @operation
    def allocate_inbound(
        self, primary: PrimaryDatabase, primary_impi: str, primary_impu: str, *, rotate: bool | None = None
    ) -> InboundBinding:
        validate_impi(primary_impi)
        validate_impu(primary_impu)
        key = request_key("inbound", primary.realm, primary.host, primary_impi, primary_impu)
        primary_id = self._primary_id(primary)
        return self._allocate(
            "inbound",
            key,
            lambda r: (r[2], r[3], r[4]) == (primary_id, primary_impi, primary_impu),
            lambda impi, impu, now, exp: (impi, impu, primary_id, primary_impi, primary_impu, now, exp, None),
            rotate,
        )

    # -- lookups (hot path) and revocation ---------------------------------------------------
    @operation
    def outbound_by_impi(self, outbound_impi: str) -> OutboundBinding:
        return self._active("outbound", "outbound_impi", outbound_impi, validate_impi)

    @operation
    def outbound_by_impu(self, outbound_impu: str) -> OutboundBinding:
        return self._active("outbound", "outbound_impu", outbound_impu, validate_impu)

    @operation
    def inbound_by_impi(self, inbound_impi: str) -> InboundBinding:
        return self._active("inbound", "inbound_impi", inbound_impi, validate_impi)

    def active_inbound(self, inbound_impi: str) -> ActiveInbound | None:
        """``inbound_by_impi`` for the partner's read per MAR: (inbound IMPU, primary SIP
        database, primary IMPI, primary IMPU, created_at, expires_at) of the active
        binding, or None where ``inbound_by_impi`` raises UnknownBinding (none, revoked,
        expired) or the identity is malformed; any other failure is the backend's
        StoreError. No record object is made (the caller keeps what it reads:
        gateway.applications.caches.InboundBindingCache), and on a store called in the
        reactor thread (``in_process``: SQLite, nothing to reconnect) no ``_run`` either."""
        if not self.in_process:
            return self._run(lambda: self._active_inbound(inbound_impi))
        return self._active_inbound(inbound_impi)

    def _active_inbound(self, inbound_impi: str) -> ActiveInbound | None:
        row = self._one(_ACTIVE_INBOUND, (identity_key(inbound_impi), inbound_impi))
        if row is None or (row[5] is not None and self._clock() >= row[5]):
            return None
        return row[0], self._primary(row[1]), row[2], row[3], row[4], row[5]

    def active_inbound_many(self, inbound_impis: Iterable[str]) -> dict[str, ActiveInbound]:
        """``active_inbound`` for several IMPIs, by IMPI (those without an active binding
        left out), in one statement per 128: SQLite looks the keys up in order, in one
        pass down the index, where one statement each walks from the root every time (the
        partner reads the bindings of the MARs of one read at once)."""
        if not self.in_process:
            return self._run(lambda: self._active_inbound_many(inbound_impis))
        return self._active_inbound_many(inbound_impis)

    def _active_inbound_many(self, inbound_impis: Iterable[str]) -> dict[str, ActiveInbound]:
        wanted = {identity_key(impi): impi for impi in inbound_impis}
        found: dict[str, ActiveInbound] = {}
        if not wanted:
            return found
        now = self._clock()
        for keys in chunks(list(wanted), _MANY_AT_ONCE):
            size = 1 << (len(keys) - 1).bit_length()
            for key, impi, impu, primary_id, primary_impi, primary_impu, created_at, expires_at in self._q(
                _MANY_SQL[size], (*keys, *[keys[0]] * (size - len(keys)))
            ):
                if wanted.get(key) == impi and (expires_at is None or now < expires_at):
                    found[impi] = (impu, self._primary(primary_id), primary_impi, primary_impu, created_at, expires_at)
        return found

    @operation
    def active_bindings(
        self, direction: str, after: int | None = None, limit: int = 1000
    ) -> tuple[list[BindingRow], int | None]:
        """A page of the active (neither revoked nor expired) bindings of ``direction``,
        each (IMPI, IMPU, the primary or real IMPI and IMPU they stand for, owner,
        created_at, expires_at), the owner being the primary SIP database of an inbound
        binding and the partner_id of an outbound one; and the ``after`` of the next page,
        None after the last. A gateway reads them all at start to hold them in memory."""
        check_direction(direction)
        limit = _limit(limit)
        if after is None:
            rows = self._q(_PAGE_SQL[direction, True], (limit,))
        else:
            rows = self._q(_PAGE_SQL[direction, False], (after, limit))
        now = self._clock()
        owner = self._primary if direction == "inbound" else str
        page = [
            (impi, impu, to_impi, to_impu, owner(owned), created_at, expires_at)
            for _, impi, impu, to_impi, to_impu, owned, created_at, expires_at in rows
            if expires_at is None or now < expires_at
        ]
        return page, (rows[-1][0] if len(rows) == limit else None)

    @operation
    def inbound_by_impu(self, inbound_impu: str) -> InboundBinding:
        return self._active("inbound", "inbound_impu", inbound_impu, validate_impu)

    def _for_request(self, direction: str, key: int, matches: Callable[[Row], bool], what: str) -> Any:
        now = self._clock()
        rows = self._q(
            f"SELECT {_COLUMNS[direction]} FROM {_TABLE[direction]} WHERE request_key = ? AND revoked_at IS NULL", (key,)
        )
        for row in filter(matches, rows):
            record = self._record(direction, row)
            if record.is_active(now):
                return record
        raise UnknownBinding(f"no active {direction} migration binding for {what}")

    @operation
    def outbound_for(self, real_impi: str, real_impu: str, partner_id: str) -> OutboundBinding:
        return self._for_request(
            "outbound",
            request_key("outbound", real_impi, real_impu, partner_id),
            lambda r: (r[2], r[3], r[4]) == (real_impi, real_impu, partner_id),
            f"{real_impi!r} / {real_impu!r} and partner {partner_id!r}",
        )

    @operation
    def inbound_for(self, primary: PrimaryDatabase, primary_impi: str, primary_impu: str) -> InboundBinding:
        return self._for_request(
            "inbound",
            request_key("inbound", primary.realm, primary.host, primary_impi, primary_impu),
            lambda r: (self._primary(r[2]), r[3], r[4]) == (primary, primary_impi, primary_impu),
            f"{primary_impi!r} / {primary_impu!r} of primary {primary}",
        )

    def _revoke(self, direction: str, impi: str) -> Any:
        table, key_column = _TABLE[direction], _KEY[direction]
        with self._txn():
            where = f"WHERE impi_key = ? AND {key_column} = ?"
            row = self._one(f"SELECT {_COLUMNS[direction]} FROM {table} {where}", (identity_key(impi), impi))
            if row is None:
                validate_impi(impi)
                raise UnknownBinding(f"no {direction} migration binding for IMPI {impi!r} to revoke")
            if row[7] is None:  # a second revocation changes nothing and logs nothing
                row = (*row[:7], self._now())
                self._x(f"UPDATE {table} SET revoked_at = ? {where}", (row[7], identity_key(impi), impi))
                self._events(direction, [(row[0], row[1], "revoked")], row[7])
            return self._record(direction, row)

    @operation
    def revoke_outbound(self, outbound_impi: str) -> OutboundBinding:
        return self._revoke("outbound", outbound_impi)

    @operation
    def revoke_inbound(self, inbound_impi: str) -> InboundBinding:
        return self._revoke("inbound", inbound_impi)

    def _list(self, direction: str, after: str | None, limit: int) -> list[Any]:
        rows = self._q(
            f"SELECT {_COLUMNS[direction]} FROM {_TABLE[direction]} WHERE {_KEY[direction]} > ? "
            f"ORDER BY {_KEY[direction]} LIMIT ?",
            (after or "", _limit(limit)),
        )
        return [self._record(direction, r) for r in rows]

    @operation
    def bindings_of(self, identity: str) -> list[InboundBinding | OutboundBinding]:
        """Every binding, in any state, whose migration identity (IMPI or IMPU) or real
        (outbound) / primary (inbound) identity is ``identity``: outbound ones first, oldest
        first. For provisioning lookups; the real identities are not indexed (a scan)."""
        key = identity_key(identity)
        found: list[InboundBinding | OutboundBinding] = []
        for direction, real in (("outbound", "real"), ("inbound", "primary")):
            migration = _KEY[direction].removesuffix("_impi")
            rows = self._q(
                f"SELECT {_COLUMNS[direction]} FROM {_TABLE[direction]} WHERE (impi_key = ? AND {migration}_impi = ?) "
                f"OR (impu_key = ? AND {migration}_impu = ?) OR {real}_impi = ? OR {real}_impu = ? "
                f"ORDER BY created_at, {_KEY[direction]}",
                (key, identity, key, identity, identity, identity),
            )
            found += [self._record(direction, row) for row in rows]
        return found

    @property
    def protects_keys(self) -> bool:
        """True when K and OPc are stored wrapped by a master key (hss_store.keywrap)."""
        return self._master_key is not None

    @operation
    def list_outbound(self, *, after: str | None = None, limit: int = 100) -> list[OutboundBinding]:
        return self._list("outbound", after, limit)

    @operation
    def list_inbound(self, *, after: str | None = None, limit: int = 100) -> list[InboundBinding]:
        return self._list("inbound", after, limit)

    # -- registration of inbound identities (partner side) -----------------------------------
    @operation
    def set_inbound_registration(self, inbound_impi: str, server_name: str | None) -> None:
        if server_name is not None:
            check_server_name(server_name)
        if not self._x(
            "UPDATE inbound_binding SET server_name = ? WHERE impi_key = ? AND inbound_impi = ?",
            (server_name, identity_key(inbound_impi), inbound_impi),
        ):
            validate_impi(inbound_impi)
            raise UnknownBinding(
                f"no inbound migration binding for IMPI {inbound_impi!r} to record a registration on; "
                "the S-CSCF registered an identity this partner never allocated"
            )

    @operation
    def inbound_registration(self, inbound_impi: str) -> str | None:
        row = self._one(
            "SELECT server_name FROM inbound_binding WHERE impi_key = ? AND inbound_impi = ?",
            (identity_key(inbound_impi), inbound_impi),
        )
        if row is None:
            validate_impi(inbound_impi)
            raise UnknownBinding(f"no inbound migration binding for IMPI {inbound_impi!r}")
        return row[0]

    # -- change log --------------------------------------------------------------------------
    def _event_written(self, event_id: int) -> None:
        """Hook: tell listeners (PostgreSQL NOTIFY); called inside the writing transaction."""

    def _events(self, direction: str, events: list[tuple[str, str, str]], at: int) -> None:
        """Append to the change log; inside the caller's transaction, as its last writes."""
        self._event_lock()
        for impi, impu, event in events:
            row = self._q(
                "INSERT INTO binding_events (direction, impi, impu, event, at) VALUES (?, ?, ?, ?, ?) RETURNING id",
                (direction, impi, impu, event, at),
            )
            self._event_written(int(row[0][0]))

    @operation
    def binding_events_since(self, after_id: int, limit: int = 1000) -> list[BindingEvent]:
        if not isinstance(after_id, int) or isinstance(after_id, bool) or after_id < 0:
            raise InvalidRequest(f"after_id {after_id!r} must be an event id (0 for the start of the log)")
        rows = self._q(
            "SELECT id, direction, impi, impu, event, at FROM binding_events WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, _limit(limit)),
        )
        return [BindingEvent(int(r[0]), r[1], r[2], r[3], r[4], int(r[5])) for r in rows]

    @operation
    def last_binding_event_id(self) -> int:
        row = self._one("SELECT MAX(id) FROM binding_events")
        return int(row[0]) if row and row[0] is not None else 0
