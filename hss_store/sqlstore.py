"""The store logic shared by both SQL backends: subscribers, AKA and SQN, agreements.

Backends supply a handful of hooks (``_q``, ``_x``, ``_xmany``, ``_txn``, ``_run``); the
SQL here is written with ``?`` placeholders and the common subset of SQLite and
PostgreSQL. Bindings, pools and policies live in :mod:`hss_store.sql_bindings`.

SQN durability (TS 33.102 Annex C.1.2: never issue a SQN twice): a vector is computed only after the
conditional ``UPDATE subscriber SET sqn = new WHERE impi = ? AND sqn = old`` has
committed. If the process dies after that commit, the SQNs are skipped, never reissued;
if two writers race, the loser's update matches no row and it starts again from the
new value. The write is one short single-row statement.
"""

from __future__ import annotations

import abc
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, NamedTuple, ParamSpec, TypeVar

from hss_store import sqn as sqnmod
from hss_store.aka import AkaVector, build_vectors, fresh_rands, split_rand_auts, verify_auts
from hss_store.errors import (
    DuplicateSubscriber,
    IdentitiesDontMatch,
    InvalidKey,
    InvalidRequest,
    SchemeNotAllowed,
    StoreCorrupt,
    StoreError,
    StoreLocked,
    UnknownIdentity,
    UnknownSubscriber,
)
from hss_store.identities import validate_impi, validate_impu
from hss_store.keywrap import MasterKey
from hss_store.milenage import Milenage, require_count
from hss_store.records import (
    AKA_SCHEMES,
    CLEARS_SERVER_NAME,
    SCHEME_UNKNOWN,
    STORES_SERVER_NAME,
    Agreement,
    AgreementEvent,
    AuthResult,
    Subscriber,
    check_partner_id,
    check_server_name,
    server_assignment_type,
)
from hss_store.store import MAX_VECTORS_PER_REQUEST, HssStore

P = ParamSpec("P")
T = TypeVar("T")
Row = tuple[Any, ...]
MAX_SQN_RACE_RETRIES = 1000
_SUBSCRIBER_COLUMNS = "impi, k, opc, amf, sqn, schemes, scscf_name, groups, wrapped"
# The MAR's one read: the keys, the SQN, the schemes and, in the same statement, the IMPU
# (the one asked about if it belongs to the IMPI, else the default: the first by position).
_MAR_READ = "SELECT s.k, s.opc, s.amf, s.sqn, s.wrapped, s.schemes, (SELECT i.impu FROM impu i WHERE i.impi = s.impi "
_MAR_WITH_IMPU = _MAR_READ + "AND i.impu = ?) FROM subscriber s WHERE s.impi = ?"
_MAR_DEFAULT_IMPU = _MAR_READ + "ORDER BY i.position LIMIT 1) FROM subscriber s WHERE s.impi = ?"
_SQN_CAS = "UPDATE subscriber SET sqn = ? WHERE impi = ? AND sqn = ?"
_SQN_CAS_NAME = "UPDATE subscriber SET sqn = ?, scscf_name = ? WHERE impi = ? AND sqn = ?"


class Conflict(Exception):
    """Internal: a unique constraint was violated (backends raise it, the logic maps it)."""


class _SqnMoved(Exception):
    """Internal: the compare-and-set of the SQN matched no row; the transaction starts again."""


def operation(method: Callable[P, T]) -> Callable[P, T]:
    """A public store call: runs through the backend's ``_run`` (reconnect and retry on PostgreSQL)."""

    @functools.wraps(method)
    def wrapper(self: SqlStore, *args: Any, **kwargs: Any) -> T:
        return self._run(lambda: method(self, *args, **kwargs))

    return wrapper  # type: ignore[return-value]


class SqlStore(HssStore):
    """Common SQL implementation; see :class:`SqliteStore` and :class:`PostgresStore`."""

    #: Appended to the pool's SELECT so concurrent allocators skip each other's rows.
    _lock_clause = ""
    #: Appended to a read of the subscriber row that is about to be written in the same
    #: transaction (PostgreSQL: FOR UPDATE; SQLite's BEGIN IMMEDIATE locks the file already).
    _row_lock = ""
    #: True while a backend runs an operation again after reconnecting (see PostgresStore._run).
    _retrying = False

    def __init__(self, master_key: MasterKey | None, clock: Callable[[], float] | None) -> None:
        self._master_key = master_key
        self._clock = clock or time.time

    # -- backend hooks ----------------------------------------------------------------
    @abc.abstractmethod
    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[Row]: ...

    @abc.abstractmethod
    def _x(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Execute one statement; its row count. Raises Conflict on a unique violation."""

    @abc.abstractmethod
    def _xmany(self, sql: str, rows: list[tuple[Any, ...]]) -> None: ...

    @abc.abstractmethod
    def _txn(self, lock_key: int | None = None) -> AbstractContextManager[None]:
        """A write transaction; ``lock_key`` serialises writers of the same allocation request."""

    def _run(self, call: Callable[[], T]) -> T:
        return call()

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> Row | None:
        rows = self._q(sql, params)
        return rows[0] if rows else None

    def _now(self) -> int:
        return int(self._clock())

    # -- master key ---------------------------------------------------------------------
    def _init_master_key(self) -> None:
        """Verify (or record, on first use) the master key check value (see keywrap)."""
        if self._master_key is None:
            return
        row = self._one("SELECT value FROM meta WHERE name = 'master_key_check'")
        if row is None:
            self._x("INSERT INTO meta (name, value) VALUES ('master_key_check', ?)", (self._master_key.check_value(),))
        else:
            self._master_key.verify_check_value(bytes(row[0]))

    def _seal(self, impi: str, k: bytes, opc: bytes) -> tuple[bytes, bytes, int]:
        if self._master_key is None:
            return k, opc, 0
        return self._master_key.wrap(k, f"{impi} k"), self._master_key.wrap(opc, f"{impi} opc"), 1

    def _open_keys(self, impi: str, k: bytes, opc: bytes, wrapped: int) -> tuple[bytes, bytes]:
        if not wrapped:
            return bytes(k), bytes(opc)
        if self._master_key is None:
            raise InvalidKey(
                f"K and OPc of {impi!r} are protected by a master key; "
                "open the store with it (--master-key-file or $CXGW_MASTER_KEY)"
            )
        return self._master_key.unwrap(bytes(k), f"{impi} k"), self._master_key.unwrap(bytes(opc), f"{impi} opc")

    # -- subscribers -------------------------------------------------------------------
    def _subscriber_from(self, row: Row, impus: tuple[str, ...]) -> Subscriber:
        impi, k, opc, amf, sqn, schemes, scscf_name, groups, wrapped = row
        k, opc = self._open_keys(impi, k, opc, wrapped)
        return Subscriber(
            impi=impi,
            impus=impus,
            k=k,
            opc=opc,
            amf=bytes(amf),
            sqn=int(sqn),
            schemes=tuple(schemes.split(",")),
            scscf_name=scscf_name,
            groups=tuple(g for g in groups.split(",") if g),
        )

    def _subscriber_row(self, impi: str, columns: str = _SUBSCRIBER_COLUMNS) -> Row:
        row = self._one(f"SELECT {columns} FROM subscriber WHERE impi = ?", (impi,))
        if row is None:
            raise self._unknown_subscriber(impi)
        return row

    @operation
    def add_subscriber(self, subscriber: Subscriber) -> Subscriber:
        s = subscriber
        k, opc, wrapped = self._seal(s.impi, s.k, s.opc)
        try:
            with self._txn():
                self._x(
                    f"INSERT INTO subscriber ({_SUBSCRIBER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (s.impi, k, opc, s.amf, s.sqn, ",".join(s.schemes), s.scscf_name, ",".join(s.groups), wrapped),
                )
                self._xmany(
                    "INSERT INTO impu (impi, impu, position) VALUES (?, ?, ?)",
                    [(s.impi, impu, i) for i, impu in enumerate(s.impus)],
                )
        except Conflict:
            if self._retrying and self._same_subscriber(s):
                return s  # our own first attempt committed before the connection broke
            raise DuplicateSubscriber(
                f"a subscriber with IMPI {s.impi!r} already exists; remove it first "
                f"(cxgw provision subscriber remove {s.impi}) or choose another IMPI"
            ) from None
        return s

    def _same_subscriber(self, s: Subscriber) -> bool:
        try:
            stored = self.get_subscriber(s.impi)
        except StoreError:
            return False
        return (stored.impus, stored.k, stored.opc, stored.amf, stored.schemes, stored.groups) == (
            s.impus, s.k, s.opc, s.amf, s.schemes, s.groups,
        )

    @operation
    def get_subscriber(self, impi: str) -> Subscriber:
        row = self._subscriber_row(impi)
        impus = tuple(r[0] for r in self._q("SELECT impu FROM impu WHERE impi = ? ORDER BY position", (impi,)))
        return self._subscriber_from(row, impus)

    @operation
    def list_subscribers(self, *, after: str | None = None, limit: int = 100) -> list[Subscriber]:
        rows = self._q(
            f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscriber WHERE impi > ? ORDER BY impi LIMIT ?",
            (after or "", _limit(limit)),
        )
        impus: dict[str, list[str]] = {r[0]: [] for r in rows}
        if rows:
            for impi, impu in self._q(
                "SELECT impi, impu FROM impu WHERE impi >= ? AND impi <= ? ORDER BY impi, position",
                (rows[0][0], rows[-1][0]),
            ):
                if impi in impus:
                    impus[impi].append(impu)
        return [self._subscriber_from(r, tuple(impus[r[0]])) for r in rows]

    @operation
    def remove_subscriber(self, impi: str) -> None:
        with self._txn():
            self._x("DELETE FROM impu WHERE impi = ?", (impi,))
            if self._x("DELETE FROM subscriber WHERE impi = ?", (impi,)) == 0:
                validate_impi(impi)
                raise UnknownSubscriber(f"no subscriber with IMPI {impi!r} to remove")

    @operation
    def check_impu(self, impi: str, impu: str) -> None:
        if self._one("SELECT 1 FROM impu WHERE impi = ? AND impu = ?", (impi, impu)) is not None:
            return
        self._subscriber_row(impi, "impi")
        raise self._identities_dont_match(impi, impu)

    @operation
    def check_scheme(self, impi: str, scheme: str) -> None:
        schemes = self._subscriber_row(impi, "schemes")[0].split(",")
        if scheme.casefold() not in (s.casefold() for s in schemes):
            raise SchemeNotAllowed(
                f"subscriber {impi!r} may not use authentication scheme {scheme!r} "
                f"(allowed: {', '.join(schemes)}); change it with --scheme at provisioning"
            )

    @operation
    def set_scscf_name(self, impi: str, scscf_name: str | None) -> None:
        if scscf_name is not None:
            check_server_name(scscf_name)
        if self._x("UPDATE subscriber SET scscf_name = ? WHERE impi = ?", (scscf_name, impi)) == 0:
            self._subscriber_row(impi, "impi")

    @operation
    def get_scscf_name(self, impi: str) -> str | None:
        return self._subscriber_row(impi, "scscf_name")[0]

    @operation
    def impi_of_impu(self, impu: str) -> str:
        row = self._one("SELECT impi FROM impu WHERE impu = ?", (validate_impu(impu),))
        if row is None:
            raise UnknownIdentity(f"no subscriber has public identity {impu!r}; add it with cxgw provision subscriber add")
        return str(row[0])

    def _unknown_subscriber(self, impi: str) -> UnknownSubscriber:
        validate_impi(impi)
        return UnknownSubscriber(
            f"no subscriber with IMPI {impi!r}; add it with: cxgw provision subscriber add {impi} ..."
        )

    @staticmethod
    def _identities_dont_match(impi: str, impu: str) -> IdentitiesDontMatch:
        validate_impu(impu)
        return IdentitiesDontMatch(
            f"IMPU {impu!r} is not in the implicit registration set of {impi!r}; "
            "add it to the subscriber's --impu list if it should be"
        )

    # -- Cx procedures (one transaction each) ----------------------------------------------
    @operation
    def multimedia_auth(
        self,
        impi: str,
        impu: str | None,
        scheme: str,
        count: int,
        *,
        rand_auts: bytes | None = None,
        server_name: str | None = None,
        max_count: int = MAX_VECTORS_PER_REQUEST,
    ) -> AuthResult:
        for _ in range(MAX_SQN_RACE_RETRIES):
            try:
                with self._txn():
                    claim = self._claim_mar(impi, impu, scheme, count, rand_auts, server_name, max_count)
                # committed: only now may vectors carrying these SQNs be computed
                return _vectors_of(claim)
            except _SqnMoved:
                continue
        raise StoreLocked(f"SQN of {impi!r} changed under us {MAX_SQN_RACE_RETRIES} times in a row; too many writers")

    @operation
    def multimedia_auth_many(self, requests: Sequence[MarArguments]) -> list[AuthResult | StoreError]:
        """``multimedia_auth`` for several MARs in ONE transaction (group commit: the MARs
        an HSS read at once cost one commit, not one each): each one's result, or the
        StoreError it alone gets, in order. Every SQN is committed before any vector is
        computed; a failure of the transaction itself (the store locked, unavailable, an
        SQN moved by another writer) raises, and nothing is committed."""
        claims: list[_Claim | StoreError] = []
        try:
            with self._txn():
                for impi, impu, scheme, count, rand_auts, server_name, max_count in requests:
                    try:
                        claims.append(self._claim_mar(impi, impu, scheme, count, rand_auts, server_name, max_count))
                    except StoreError as error:  # its own failure, found before it wrote
                        claims.append(error)
        except _SqnMoved:
            raise StoreLocked("an SQN changed under a group of MARs; another writer holds the store") from None
        # the RANDs of all the group's vectors from one read of the CSPRNG
        rands = fresh_rands(sum(len(claim.sqns) for claim in claims if not isinstance(claim, StoreError)))
        at = 0
        results: list[AuthResult | StoreError] = []
        for claim in claims:
            if isinstance(claim, StoreError):
                results.append(claim)
                continue
            at += len(claim.sqns)
            try:
                results.append(_vectors_of(claim, rands[at - len(claim.sqns) : at]))
            except StoreError as error:
                results.append(error)
        return results

    def _claim_mar(
        self, impi: str, impu: str | None, scheme: str, count: int, rand_auts: bytes | None, server_name: str | None,
        max_count: int,
    ) -> _Claim:
        """Within a write transaction: the checks of a MAR (nothing written if one fails)
        and the compare-and-set of its SQNs."""
        count = _vector_count(count, max_count)
        if rand_auts is not None:
            split_rand_auts(rand_auts)  # a malformed one is InvalidRequest before any read
        if server_name is not None:
            check_server_name(server_name)
        if impu is None:
            read, params = _MAR_DEFAULT_IMPU + self._row_lock, (impi,)
        else:
            read, params = _MAR_WITH_IMPU + self._row_lock, (impu, impi)
        row = self._one(read, params)
        if row is None:
            raise self._unknown_subscriber(impi)
        k, opc, amf, old, wrapped, schemes, found_impu = row
        if found_impu is None:  # TS 29.228 §6.3.1: the IMPU must belong to the IMPI
            if impu is None:
                raise StoreCorrupt(f"subscriber {impi!r} has no IMPU; remove it and provision it again")
            raise self._identities_dont_match(impi, impu)
        used = _resolve_scheme(impi, scheme, schemes)
        k, opc = self._open_keys(impi, k, opc, wrapped)
        milenage = Milenage.cached(k, opc)
        last = int(old)
        if rand_auts is not None:  # TS 33.102 §6.3.5; raises before any write
            last = sqnmod.after_resync(last, verify_auts(milenage, rand_auts, who=repr(impi)))
        sqns = sqnmod.next_sqns(last, count)
        if server_name is None:
            written = self._x(_SQN_CAS, (sqns[-1], impi, old))
        else:
            written = self._x(_SQN_CAS_NAME, (sqns[-1], server_name, impi, old))
        if written != 1:
            raise _SqnMoved
        return _Claim(used, milenage, sqns, bytes(amf), impi, found_impu)

    @operation
    def server_assignment(
        self, impi: str, impu: str | None, server_name: str | None, assignment_type: int
    ) -> Subscriber:
        kind = server_assignment_type(assignment_type)
        if kind in STORES_SERVER_NAME:
            if server_name is None:
                raise InvalidRequest(
                    f"Server-Assignment-Type {kind.name} for {impi!r} stores the S-CSCF name, "
                    "but no Server-Name was given; pass the SAR's Server-Name (TS 29.228 §6.1.2)"
                )
            check_server_name(server_name)
        with self._txn():
            row = self._one(f"SELECT {_SUBSCRIBER_COLUMNS} FROM subscriber WHERE impi = ?{self._row_lock}", (impi,))
            if row is None:
                raise self._unknown_subscriber(impi)
            impus = tuple(r[0] for r in self._q("SELECT impu FROM impu WHERE impi = ? ORDER BY position", (impi,)))
            if impu is not None and impu not in impus:
                raise self._identities_dont_match(impi, impu)
            if kind in STORES_SERVER_NAME or kind in CLEARS_SERVER_NAME:
                name = server_name if kind in STORES_SERVER_NAME else None
                self._x("UPDATE subscriber SET scscf_name = ? WHERE impi = ?", (name, impi))
                row = (*row[:6], name, *row[7:])
        return self._subscriber_from(row, impus)

    # -- AKA ---------------------------------------------------------------------------
    def _claim_sqns(self, impi: str, first_guess: Row, plan: Callable[[int], list[int]]) -> tuple[Row, list[int]]:
        """Commit the SQNs planned from the stored one (compare-and-set, retried on a race)."""
        row = first_guess
        for _ in range(MAX_SQN_RACE_RETRIES):
            old = int(row[3])
            sqns = plan(old)
            if self._x("UPDATE subscriber SET sqn = ? WHERE impi = ? AND sqn = ?", (sqns[-1], impi, old)) == 1:
                return row, sqns
            row = self._subscriber_row(impi, "k, opc, amf, sqn, wrapped")
        raise StoreLocked(f"SQN of {impi!r} changed under us {MAX_SQN_RACE_RETRIES} times in a row; too many writers")

    @operation
    def generate_vectors(self, impi: str, count: int = 1) -> list[AkaVector]:
        require_count(count, MAX_VECTORS_PER_REQUEST)
        row = self._subscriber_row(impi, "k, opc, amf, sqn, wrapped")
        row, sqns = self._claim_sqns(impi, row, lambda old: sqnmod.next_sqns(old, count))
        k, opc = self._open_keys(impi, row[0], row[1], row[4])
        return build_vectors(Milenage.cached(k, opc), sqns, bytes(row[2]))

    @operation
    def resync(self, impi: str, rand_auts: bytes, count: int = 1) -> list[AkaVector]:
        require_count(count, MAX_VECTORS_PER_REQUEST)
        row = self._subscriber_row(impi, "k, opc, amf, sqn, wrapped")
        k, opc = self._open_keys(impi, row[0], row[1], row[4])
        milenage = Milenage.cached(k, opc)
        sqn_ms = verify_auts(milenage, rand_auts, who=repr(impi))  # raises before any write
        row, sqns = self._claim_sqns(
            impi, row, lambda old: sqnmod.next_sqns(sqnmod.after_resync(old, sqn_ms), count)
        )
        return build_vectors(milenage, sqns, bytes(row[2]))

    # -- agreements ----------------------------------------------------------------------
    # Every change appends to ``agreement_events`` in its own transaction, as bindings do to
    # ``binding_events``: a primary gateway that keeps agreements in memory polls the log.
    @operation
    def add_agreement(self, agreement: Agreement) -> None:
        with self._txn():
            if self._x(
                "INSERT INTO agreement (partner_id, scope, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (agreement.partner_id, agreement.scope, agreement.value),
            ):
                self._agreement_event(agreement.partner_id, "added")

    @operation
    def remove_agreement(self, agreement: Agreement) -> None:
        with self._txn():
            if not self._x(
                "DELETE FROM agreement WHERE partner_id = ? AND scope = ? AND value = ?",
                (agreement.partner_id, agreement.scope, agreement.value),
            ):
                raise InvalidRequest(
                    f"no agreement {agreement.scope} {agreement.value or ''} for partner {agreement.partner_id!r} "
                    "to remove; list them with: cxgw provision agreement list"
                )
            self._agreement_event(agreement.partner_id, "removed")

    def _event_lock(self) -> None:
        """Hook: make event ids visible in the order they were taken (see PostgresStore)."""

    def _agreement_event(self, partner_id: str, event: str) -> None:
        """Append to the agreements' change log; inside the caller's transaction, its last write."""
        self._event_lock()
        self._x("INSERT INTO agreement_events (partner_id, event, at) VALUES (?, ?, ?)", (partner_id, event, self._now()))

    @operation
    def agreement_events_since(self, after_id: int, limit: int = 1000) -> list[AgreementEvent]:
        if not isinstance(after_id, int) or isinstance(after_id, bool) or after_id < 0:
            raise InvalidRequest(f"after_id {after_id!r} must be an event id (0 for the start of the log)")
        rows = self._q(
            "SELECT id, partner_id, event, at FROM agreement_events WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, _limit(limit)),
        )
        return [AgreementEvent(int(r[0]), r[1], r[2], int(r[3])) for r in rows]

    @operation
    def last_agreement_event_id(self) -> int:
        row = self._one("SELECT MAX(id) FROM agreement_events")
        return int(row[0]) if row and row[0] is not None else 0

    @operation
    def list_agreements(self, partner_id: str | None = None) -> list[Agreement]:
        if partner_id is None:
            rows = self._q("SELECT partner_id, scope, value FROM agreement ORDER BY partner_id, scope, value")
        else:
            rows = self._q(
                "SELECT partner_id, scope, value FROM agreement WHERE partner_id = ? ORDER BY scope, value",
                (partner_id,),
            )
        return [Agreement(*r) for r in rows]

    def _may_migrate(self, partner_id: str, impi: str) -> bool:
        """Agreement.covers over the partner's agreements (rows checked when they were
        added), without building them: the primary role asks this for every MAR; the
        subscriber's groups are read only when a group agreement is there to match."""
        check_partner_id(partner_id)
        rows = self._q("SELECT scope, value FROM agreement WHERE partner_id = ?", (partner_id,))
        wanted_groups = []
        for scope, value in rows:
            if scope == "all" or (scope == "user" and value == impi):
                return True
            if scope == "group":
                wanted_groups.append(value)
        if not wanted_groups:
            return False
        row = self._one("SELECT groups FROM subscriber WHERE impi = ?", (impi,))
        groups = [g for g in row[0].split(",") if g] if row else []
        return any(group in groups for group in wanted_groups)

    @operation
    def may_migrate(self, partner_id: str, impi: str) -> bool:
        return self._may_migrate(partner_id, impi)


# a MAR's arguments, as multimedia_auth takes them: (IMPI, IMPU or None, scheme, count,
# RAND || AUTS or None, Server-Name or None, the vector cap)
MarArguments = tuple[str, "str | None", str, int, "bytes | None", "str | None", int]


class _Claim(NamedTuple):
    """A MAR's SQNs, written in the open transaction; its vectors are made after the commit."""

    scheme: str
    milenage: Milenage
    sqns: list[int]
    amf: bytes
    impi: str
    impu: str


def _vectors_of(claim: _Claim, rands: list[bytes] | None = None) -> AuthResult:
    return AuthResult(claim.scheme, build_vectors(claim.milenage, claim.sqns, claim.amf, rands), claim.impi, claim.impu)


def _vector_count(count: int, max_count: int) -> int:
    """SIP-Number-Auth-Items (TS 29.229 §6.3.8) brought into 1..max_count: a MAR asking for
    more than the HSS hands out gets fewer (TS 29.228 §6.3.1 lets the HSS send fewer), not an error."""
    if not isinstance(max_count, int) or isinstance(max_count, bool) or not 1 <= max_count <= MAX_VECTORS_PER_REQUEST:
        raise InvalidRequest(
            f"max_count {max_count!r} must be 1 to {MAX_VECTORS_PER_REQUEST} (one vector per IND slot, "
            "TS 33.102 Annex C.3.2)"
        )
    if not isinstance(count, int) or isinstance(count, bool):
        raise InvalidRequest(f"number of vectors {count!r} must be an integer (SIP-Number-Auth-Items)")
    return min(max(count, 1), max_count)


def _resolve_scheme(impi: str, scheme: str, stored: str) -> str:
    """The scheme to answer with, as provisioned: "Unknown" means the subscriber's default
    (its first, TS 29.229 §6.3.9); any other must be allowed (compared without case)."""
    if not isinstance(scheme, str):
        raise InvalidRequest(f"SIP-Authentication-Scheme {scheme!r} must be a string (\"Unknown\" lets the HSS choose)")
    schemes = stored.split(",")
    if scheme.casefold() == SCHEME_UNKNOWN.casefold():
        used = schemes[0]
    else:
        folded = scheme.casefold()
        for allowed in schemes:
            if allowed.casefold() == folded:
                used = allowed
                break
        else:
            raise SchemeNotAllowed(
                f"subscriber {impi!r} may not use authentication scheme {scheme!r} "
                f"(allowed: {', '.join(schemes)}); change it with --scheme at provisioning"
            )
    if used not in AKA_SCHEMES:
        raise SchemeNotAllowed(
            f"subscriber {impi!r} uses authentication scheme {used!r}, for which this HSS has no "
            f"credentials (it generates AKA vectors only: {', '.join(AKA_SCHEMES)}); "
            "provision the subscriber with --scheme Digest-AKAv1-MD5"
        )
    return used


def _limit(limit: int) -> int:
    if not isinstance(limit, int) or not 1 <= limit <= 100_000:
        raise InvalidRequest(f"limit {limit!r} must be 1 to 100000")
    return limit


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
