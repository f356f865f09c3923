"""What the Cx roles read for every MAR, held in memory: the partner's inbound bindings
(``InboundBindingCache``, TR 23.781 solution 2 step 17), the primary's outbound bindings and
each partner's agreements (step 19's precondition, ``PrimaryApplication._real_identities``).

Bindings are held only once a watch reads the store's change logs: the partner's
revocation watch (gateway.applications.revocation) and ``PrimaryWatch`` here. Every binding
event drops the binding it names (an allocation drops a remembered "not bound"), every
agreement event drops that partner's agreements, so a revocation or an agreement removed by
`cxgw provision` or the provisioning API in another process takes effect within
``[partner]``/``[primary] revocation_poll``. A binding's expiry is checked at every use; a
group agreement still reads the subscriber's groups from the store (subscribers have no
change log).

Two tiers of bindings: the recently used ones as records ready for the fast paths (a dict,
bounded), and every active binding of the store packed (gateway.applications.packed, about
230 bytes each, up to ``[partner]``/``[primary] bindings_in_memory``), read page by page when
the watch starts (``Preload``). A binding in neither is read from the store (SQLite in the
reactor thread; the partner's PostgreSQL by the general path, off it) and kept.
"""

from __future__ import annotations

import abc
import contextlib
import itertools
import time
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.applications.packed import NEVER, PackedBindings
from gateway.applications.storage import StoreAccess
from hss_store.errors import StoreError, UnknownBinding
from hss_store.records import (
    Agreement,
    InboundBinding,
    OutboundBinding,
    PrimaryDatabase,
    check_partner_id,
)
from hss_store.store import HssStore

log = Logger(namespace="cxgw.primary")
loading = Logger(namespace="cxgw.bindings")

_NOT_BOUND = None  # remembered: the store had no active binding for the identity
# active bindings held packed per role, at most (about 230 bytes each: some 460 MB);
# ``[partner]``/``[primary] bindings_in_memory``
BINDINGS_IN_MEMORY = 2_000_000


class ActiveBinding(NamedTuple):
    """What the partner's fast path reads of an active inbound binding, ready to use: the
    identities as the MARs carry them and the translated MAR's values (UTF-8 bytes), its
    primary SIP database's Destination-Host and realm. Only str, bytes, int and None: the
    cycle collector untracks it (a cache of 200,000 records costs the GC nothing)."""

    inbound_impu: bytes
    expires_at: int | None
    host: str | None  # the primary SIP database's host (Destination-Host), or None
    host_key: str | None  # the same, as the node's peers table keys it (lower case)
    realm: str
    values: tuple[bytes, ...]  # primary IMPI, primary IMPU, realm[, host]: RequestTranslator.translate_values
    inbound_impi: str
    created_at: int

    def binding(self) -> InboundBinding:
        """The store's record of it (``inbound_by_impi``'s)."""
        return InboundBinding(self.inbound_impi, self.inbound_impu.decode(), PrimaryDatabase(self.realm, self.host),
                              self.values[0].decode(), self.values[1].decode(), self.created_at, self.expires_at)


_new_record = tuple.__new__
# _UNTRACKED: the recent tiers hold flat tuples of str, bytes, int and None, which the
# cycle collector stops tracking the first time it sees them (CPython untracks exact
# tuples of atoms; a NamedTuple or a dataclass stays tracked, and a tuple holding a tuple
# may survive a collection tracked). Held as records, the bindings would be walked again
# by every collection of the older generations: pauses of 9 ms and more every few seconds
# at 5,000 MARs/s (bench/RESULTS.md, session 6). A record is made from the tuple per
# use, and freed with the request.
_SAMPLE = 4  # IMPIs of a read looked at before prefetch gives up: all held, the rest likely too


class BindingTiers:
    """What both roles' binding caches hold: the recently used bindings (``_entries``, a
    dict of at most ``size`` flat tuples, _UNTRACKED) and every active binding packed
    (``packed``, up to ``capacity``, filled by ``Preload``; ``complete`` once it holds all
    of the store's). ``forget`` is the watch's call for a binding event.

    The recent tier is a bound, not an LRU: once full it holds nothing more (a binding not
    in it is in ``packed``, about 2 us more, or read from the store) until forgotten or
    expired entries make room. It is never emptied at once: freeing 200,000 entries held the
    reactor for 30-65 ms, and freeing them a few at a time held back CPython's collections
    until one of some 48,000 young objects took 24-37 ms (bench/RESULTS.md, session 7)."""

    def __init__(self, store: HssStore, size: int = 200_000, capacity: int = BINDINGS_IN_MEMORY) -> None:
        self.store = store
        self.size = size
        self.cached = False
        self._entries: dict[str, tuple[Any, ...] | None] = {}
        self.packed = PackedBindings()
        self.capacity = capacity
        self.complete = False
        self._clock: Callable[[], float] = getattr(store, "_clock", time.time)

    def forget(self, impi: str) -> None:
        self._entries.pop(impi, None)
        self.packed.remove(impi.encode())

    def clear(self) -> None:
        self._entries.clear()
        self.packed.clear()
        self.complete = False

    def load(self, rows: list[Any]) -> bool:
        """Hold the store's ``active_bindings`` rows (a page of ``Preload``); False once
        ``capacity`` is reached (the rest is read from the store when asked for)."""
        pack = self._pack
        for impi, impu, to_impi, to_impu, owner, created_at, expires_at in rows:
            if not pack(impi.encode(), impu.encode(), to_impi.encode(), to_impu.encode(), owner, created_at,
                        expires_at):
                return False
        return True

    def _pack(self, impi: bytes, impu: bytes, to_impi: bytes, to_impu: bytes, owner: Any, created_at: int,
              expires_at: int | None) -> bool:
        """Keep a binding in the packed tier; False once ``capacity`` is reached. One with an
        identity too long for a record (over 65,535 octets) is left to the store."""
        packed = self.packed
        if len(packed) >= self.capacity:
            return False
        with contextlib.suppress(ValueError):  # (too long: not held, the store answers for it when asked)
            packed.put(impi, impu, to_impi, to_impu, owner, created_at, expires_at)
        return True


class InboundBindingCache(BindingTiers):
    """Active inbound bindings by inbound IMPI, read from the store on a miss (SQLite: in
    the reactor thread, as ``StoreAccess`` calls it). Only a store whose change log is
    watched may be cached: the revocation watch (gateway.applications.revocation) calls
    ``forget`` for every binding event and ``watching`` once it reads the log, so a
    revocation made by another process takes effect within ``[partner] revocation_poll``;
    an expiry is checked at every use. Without a watch (``cached`` False) every MAR reads
    the store. Held as ``ActiveBinding`` records (``lookup``, the fast path's read)."""

    def __init__(self, store: HssStore, size: int = 200_000, capacity: int = BINDINGS_IN_MEMORY) -> None:
        super().__init__(store, size, capacity)
        # the store's lean read of an active binding (sql_bindings.active_inbound), if it has one
        self._read: Callable[[str], Any] | None = getattr(store, "active_inbound", None)
        self._read_many: Callable[[list[str]], Any] | None = getattr(store, "active_inbound_many", None)
        self._tails: dict[tuple[str, str | None], tuple[bytes, ...]] = {}  # (realm, host) -> their bytes

    def watching(self) -> None:
        """The change log is read from now on: bindings may be kept."""
        self.cached = True

    def active(self, impi: str) -> InboundBinding | None:
        """The active binding of ``impi``, or None (as ``lookup``)."""
        record = self.lookup(impi)
        return None if record is None else record.binding()

    def lookup(self, impi: str) -> ActiveBinding | None:
        """The active binding of ``impi``, or None (unknown, revoked, expired, the store
        failing, or a store that cannot be read in the reactor thread): the general path
        finds out which and answers."""
        held = self._entries.get(impi)
        if held is not None:
            expires_at = held[1]
            if expires_at is None or self._clock() < expires_at:
                return _new_record(ActiveBinding, (*held[:5], held[7:], held[5], held[6]))
            del self._entries[impi]
            return None
        packed = self.packed
        if packed:
            found = packed.find(impi.encode())
            if found is not None:
                owner, created_at, expires_at, _, impu, primary_impi, primary_impu = found
                if expires_at != NEVER and self._clock() >= expires_at:
                    packed.remove(impi.encode())
                    return None
                record = self._record_of(impi, impu, packed.owners[owner], primary_impi, primary_impu, created_at,
                                         None if expires_at == NEVER else expires_at)
                self._hold_recent(impi, record)
                return record
        store = self.store
        if not store.in_process:
            return None  # (PostgreSQL: the general path reads it off the reactor, and keeps it)
        read = self._read
        try:
            if read is None:
                return self.keep(store.inbound_by_impi(impi))
            found = read(impi)
        except (StoreError, ValueError):
            return None
        if found is None:
            return None
        inbound_impu, primary, primary_impi, primary_impu, created_at, expires_at = found
        record = self._record(impi, inbound_impu, primary.realm, primary.host, primary_impi, primary_impu,
                              created_at, expires_at)
        if self.cached:
            self._hold(impi, record)
        return record

    def prefetch(self, impis: Iterable[str]) -> None:
        """Hold the active bindings of those of ``impis`` not held, read in one statement
        (``active_inbound_many``): the IMPIs of the MARs of one read, before the first
        is served (gateway.applications.fastpath). What ``lookup`` would read for each,
        read at once; only where bindings may be held (the watch reads the change log).
        When the first few are all held, so are the others, most likely (a working set
        held in memory): the rest of ``impis`` is not even looked at."""
        read_many = self._read_many
        if not self.cached or read_many is None or not self.store.in_process or self.complete:
            return  # (complete: a binding not held is unknown, or newer than the last poll)
        entries, packed = self._entries, self.packed
        impis = iter(impis)
        first = list(itertools.islice(impis, _SAMPLE))
        if all(impi in entries for impi in first):
            return
        missing = [impi for impi in itertools.chain(first, impis) if impi not in entries and impi.encode() not in packed]
        if len(missing) < 2:
            return  # (``lookup``'s own read)
        try:
            found = read_many(missing)
        except (StoreError, ValueError):
            return  # each ``lookup`` finds out
        record = self._record
        for impi, (impu, primary, primary_impi, primary_impu, created_at, expires_at) in found.items():
            self._hold(impi, record(impi, impu, primary.realm, primary.host, primary_impi, primary_impu,
                                    created_at, expires_at))

    def keep(self, binding: InboundBinding) -> ActiveBinding:
        """Hold ``binding`` (read by the general path) if bindings may be kept; its record."""
        primary = binding.primary
        record = self._record(binding.inbound_impi, binding.inbound_impu, primary.realm, primary.host,
                              binding.primary_impi, binding.primary_impu, binding.created_at, binding.expires_at)
        if self.cached:
            self._hold(binding.inbound_impi, record)
        return record

    def _record(self, impi: str, impu: str, realm: str, host: str | None, primary_impi: str, primary_impu: str,
                created_at: int, expires_at: int | None) -> ActiveBinding:
        return self._record_of(impi, impu.encode(), PrimaryDatabase(realm, host), primary_impi.encode(),
                               primary_impu.encode(), created_at, expires_at)

    def _record_of(self, impi: str, impu: bytes, primary: PrimaryDatabase, primary_impi: bytes, primary_impu: bytes,
                   created_at: int, expires_at: int | None) -> ActiveBinding:
        """The record of a binding, its identities in UTF-8."""
        realm, host = primary.realm, primary.host
        tail = self._tails.get((realm, host))
        if tail is None:
            if len(self._tails) >= 1024:
                self._tails.clear()
            tail = self._tails[realm, host] = (realm.encode(),) if host is None else (realm.encode(), host.encode())
        return _new_record(ActiveBinding, (
            impu, expires_at, host, None if host is None else host.lower(), realm,
            (primary_impi, primary_impu, *tail), impi, created_at,
        ))

    def _hold(self, impi: str, record: ActiveBinding) -> None:
        """Keep a binding read from the store in both tiers."""
        self._hold_recent(impi, record)
        values = record.values
        self._pack(impi.encode(), record.inbound_impu, values[0], values[1], PrimaryDatabase(record.realm, record.host),
                   record.created_at, record.expires_at)

    def _hold_recent(self, impi: str, record: ActiveBinding) -> None:
        entries = self._entries
        if len(entries) < self.size:  # (full: see BindingTiers)
            # (a flat tuple of atoms, see _UNTRACKED: the fields, ``values`` last)
            entries[impi] = (*record[:5], record[6], record[7], *record[5])


class OutboundBindingCache(BindingTiers):
    """Active outbound bindings by outbound IMPI, and identities found unbound, read from
    the store on a miss; every active binding also packed once ``Preload`` read them.
    Without the watch (``cached`` False) every call reads the store."""

    def watching(self) -> None:
        self.cached = self.store.in_process  # (a store called from threads is not cached)

    def active(self, impi: str) -> OutboundBinding | None:
        """The active binding of ``impi``, or None (never bound, revoked, expired: the
        store's UnknownBinding); any other StoreError is raised, as the store raises it."""
        entries = self._entries
        binding: OutboundBinding | None
        if self.cached:
            if impi in entries:
                held = entries[impi]
                if held is None:
                    return None
                if held[6] is None or self._clock() < held[6]:
                    return OutboundBinding(*held)
                entries[impi] = _NOT_BOUND  # expired: for good (an expiry is never moved)
                return None
            found = self.packed.find(impi.encode()) if self.packed else None
            if found is not None:
                owner, created_at, expires, _, impu, real_impi, real_impu = found
                expires_at = None if expires == NEVER else expires
                if expires_at is not None and self._clock() >= expires_at:
                    self._hold_recent(impi, _NOT_BOUND)  # (for good, as above)
                    return None
                held = (impi, impu.decode(), real_impi.decode(), real_impu.decode(), self.packed.owners[owner],
                        created_at, expires_at, None)
                self._hold_recent(impi, held)
                return OutboundBinding(*held)
        try:
            binding = self.store.outbound_by_impi(impi)
        except UnknownBinding:
            binding = _NOT_BOUND
        if self.cached:
            if binding is None:
                self._hold_recent(impi, None)
            else:
                self._hold_recent(impi, (binding.outbound_impi, binding.outbound_impu, binding.real_impi,
                                         binding.real_impu, binding.partner_id, binding.created_at,
                                         binding.expires_at, binding.revoked_at))
                self._pack(impi.encode(), binding.outbound_impu.encode(), binding.real_impi.encode(),
                           binding.real_impu.encode(), binding.partner_id, binding.created_at, binding.expires_at)
        return binding

    def _hold_recent(self, impi: str, binding: tuple[Any, ...] | None) -> None:
        entries = self._entries
        if len(entries) < self.size:  # (full: see BindingTiers)
            entries[impi] = binding


class Preload:
    """Reads every active binding of one direction into a cache's packed tier when its
    watch starts, page by page from the store's ``active_bindings`` (through
    ``StoreAccess``: SQLite in the reactor thread, PostgreSQL off it), ``TURN`` bindings
    held per reactor turn, so the node keeps serving while it loads. Changes made
    meanwhile are the watch's events, applied after the page that read them (a page reads
    the store as it is when read). A page that fails is read again after ``retry``
    seconds; loading stops at the cache's capacity."""

    TURN = 1_000  # bindings held per reactor turn: about 3 ms, plus 4 ms to read them from SQLite
    # bindings per page: SQLite's are read in the reactor thread, a turn at a time;
    # PostgreSQL's in a thread, where each page is a round trip (pages of 1,000 made a
    # load of 1,000,000 four times slower than pages of 10,000)
    PAGE = {True: TURN, False: 10_000}

    def __init__(self, access: StoreAccess, direction: str, cache: InboundBindingCache | OutboundBindingCache,
                 clock: Any, retry: float = 1.0) -> None:
        self.access, self.direction, self.cache, self.clock, self.retry = access, direction, cache, clock, retry
        self.page = self.PAGE[access.store.in_process]
        self.done = False
        self._call: Any = None
        self._stopped = False
        self._started_at = 0.0

    def start(self) -> None:
        self._started_at = time.monotonic()
        self._read(None)

    def stop(self) -> None:
        self._stopped = True
        if self._call is not None and self._call.active():
            self._call.cancel()

    def _read(self, after: int | None) -> None:
        self._call = None
        if self._stopped:
            return
        store = self.access.store
        result = self.access.call(store.active_bindings, self.direction, after, self.page)  # type: ignore[attr-defined]
        result.addCallbacks(self._page, self._failed, errbackArgs=(after,))
        result.addErrback(self._broken)

    def _page(self, page: tuple[list[Any], int | None]) -> None:
        rows, after = page
        self._hold(rows, 0, after)

    def _hold(self, rows: list[Any], start: int, after: int | None) -> None:
        """Hold ``TURN`` rows of a page from ``start``; the rest at the next turn."""
        self._call = None
        if self._stopped:
            return
        cache = self.cache
        end = start + self.TURN
        try:
            held = cache.load(rows[start:end])
        except Exception:  # (a bug: said once, and the others are left to the store)
            self._broken(Failure())
            return
        if not held:
            self._finish(f"stopped at bindings_in_memory = {cache.capacity:,}; the others are read from the store")
        elif end < len(rows):
            self._call = self.clock.callLater(0, self._hold, rows, end, after)
        elif after is None:
            cache.complete = True
            self._finish("all of them")
        else:
            self._call = self.clock.callLater(0, self._read, after)

    def _finish(self, how: str) -> None:
        self.done = True
        packed = self.cache.packed
        loading.info("{count} active {direction} bindings held in memory, {how} ({mb:.1f} MB, {seconds:.1f} s)",
                 count=f"{len(packed):,}", direction=self.direction, how=how, mb=packed.nbytes / 1e6,
                 seconds=time.monotonic() - self._started_at)

    def _broken(self, failure: Any) -> None:
        """Anything but the store failing (a bug): said once; the rest is read from the store."""
        loading.failure("loading the {direction} bindings stopped; the others are read from the store when asked for",
                        failure, direction=self.direction)

    def _failed(self, failure: Any, after: int | None) -> None:
        failure.trap(StoreError)
        loading.warn("loading the {direction} bindings: the store did not answer ({error}); trying again in {retry} s",
                 direction=self.direction, error=failure.value, retry=self.retry)
        if not self._stopped:
            self._call = self.clock.callLater(self.retry, self._read, after)


class PartnerTerms:
    """One partner's agreements, as ``Agreement.covers`` reads them."""

    __slots__ = ("everyone", "users", "groups")

    def __init__(self, agreements: list[Agreement]) -> None:
        self.everyone = any(a.scope == "all" for a in agreements)
        self.users = frozenset(a.value for a in agreements if a.scope == "user")
        self.groups = tuple(a.value for a in agreements if a.scope == "group")


class AgreementCache:
    """``HssStore.may_migrate`` with each partner's agreements read once, until the
    agreements' change log names the partner."""

    def __init__(self, store: HssStore) -> None:
        self.store = store
        self.cached = False
        self._terms: dict[str, PartnerTerms] = {}

    def watching(self) -> None:
        self.cached = self.store.in_process

    def forget(self, partner_id: str) -> None:
        self._terms.pop(partner_id, None)

    def clear(self) -> None:
        self._terms.clear()

    def may_migrate(self, partner_id: str, impi: str) -> bool:
        if not self.cached:
            return self.store.may_migrate(partner_id, impi)
        terms = self._terms.get(partner_id)
        if terms is None:
            check_partner_id(partner_id)  # as the store's may_migrate checks it
            terms = self._terms[partner_id] = PartnerTerms(self.store.list_agreements(partner_id))
        if terms.everyone or impi in terms.users:
            return True
        if not terms.groups:
            return False
        return self.store.may_migrate(partner_id, impi)  # the subscriber's groups: the store's


class LogWatch(abc.ABC):
    """A poll of the store's change logs every ``interval`` seconds (``poll``, the
    subclass's), and the ``Preload`` it starts once it has read where the logs are; both
    stopped by ``stop``."""

    def __init__(self, clock: Any, interval: float) -> None:
        self.clock, self.interval = clock, interval
        self._loop = LoopingCall(self.poll)
        self._loop.clock = clock
        self.preload: Preload | None = None

    @abc.abstractmethod
    def poll(self) -> Any:
        """Read the logs from where the last poll stopped (the first: where they are)."""

    def start(self) -> None:
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop.running:
            self._loop.stop()
        if self.preload is not None:
            self.preload.stop()


class PrimaryWatch(LogWatch):
    """Polls the change logs of bindings and agreements every ``interval`` seconds and drops
    what changed from the primary role's caches. The store is called directly: only an
    in-process store is cached (``OutboundBindingCache.watching``). With ``access``, every
    active outbound binding is read into memory when the watch starts (``Preload``)."""

    def __init__(self, store: HssStore, clock: Any, interval: float, bindings: OutboundBindingCache,
                 agreements: AgreementCache, access: StoreAccess | None = None) -> None:
        self.store = store
        self.bindings, self.agreements = bindings, agreements
        self.last: tuple[int, int] | None = None  # (binding event id, agreement event id) read up to
        self.access = access
        super().__init__(clock, interval)

    def poll(self) -> None:
        try:
            if self.last is None:  # before the caches keep anything: what they read is newer
                self.last = (self.store.last_binding_event_id(), self.store.last_agreement_event_id())
                self.bindings.watching()
                self.agreements.watching()
                if self.access is not None and self.bindings.cached:
                    self.preload = Preload(self.access, "outbound", self.bindings, self.clock)
                    self.preload.start()
                return
            self.last = (self._binding_events(self.last[0]), self._agreement_events(self.last[1]))
        except StoreError as error:
            # a change could go unseen: read everything from the store again until the logs
            # answer, then start over from where they are (the bindings loaded again)
            if self.preload is not None:
                self.preload.stop()
                self.preload = None
            self.bindings.clear()
            self.agreements.clear()
            self.last = None
            log.warn("primary change watch: the store did not answer ({error}); trying again", error=error)

    def _binding_events(self, last: int) -> int:
        while events := self.store.binding_events_since(last):
            for event in events:
                if event.direction == "outbound":
                    self.bindings.forget(event.impi)
            last = events[-1].id
        return last

    def _agreement_events(self, last: int) -> int:
        while events := self.store.agreement_events_since(last):
            for event in events:
                self.agreements.forget(event.partner_id)
            last = events[-1].id
        return last
