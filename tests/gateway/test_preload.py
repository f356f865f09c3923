"""caches.Preload: every active binding read into a cache's packed tier when its watch
starts, page by page, both directions; what the tier gives equals the store's answer;
capacity, a failing page, changes made while loading, and both watches (the primary's, the
partner's revocation watch) dropping what they hold after a failed poll and loading again."""

from __future__ import annotations

import gc

import pytest
from twisted.internet import task
from twisted.internet.defer import fail

from gateway.applications.caches import (
    AgreementCache,
    InboundBindingCache,
    OutboundBindingCache,
    Preload,
    PrimaryWatch,
)
from gateway.applications.cx import Local
from gateway.applications.revocation import RevocationWatcher
from gateway.applications.storage import StoreAccess
from hss_store.allocation import AllocationPolicy
from hss_store.errors import StoreUnavailable
from hss_store.records import Agreement, PrimaryDatabase, Subscriber

PRIMARIES = (PrimaryDatabase("primary.example", "hss1.primary.example"), PrimaryDatabase("primary.example"))


@pytest.fixture
def store(clocked_store):
    return clocked_store


def _inbound(store, count: int, ttl: int | None = None) -> list:
    store.set_policy(AllocationPolicy("inbound", impi_pattern="mig-<random>@partner.example",
                                      impu_pattern="sip:mig-<random>@partner.example", ttl_seconds=ttl))
    return [store.allocate_inbound(PRIMARIES[n % 2], f"out-{n}@primary.example", f"sip:out-{n}@primary.example")
            for n in range(count)]


def _outbound(store):
    """Alice, an agreement for every user of partner-a, and her outbound binding."""
    store.add_subscriber(Subscriber.new("alice@primary.example", ["sip:alice@primary.example"], bytes(16),
                                        opc=bytes(16)))
    store.add_agreement(Agreement("partner-a", "all", ""))
    store.set_policy(AllocationPolicy("outbound", impi_pattern="o-<random>@primary.example",
                                      impu_pattern="sip:o-<random>@primary.example"))
    return store.allocate_outbound("alice@primary.example", "sip:alice@primary.example", "partner-a")


def _load(store, cache, page: int = 3) -> tuple[Preload, task.Clock]:
    clock = task.Clock()
    cache.watching()
    preload = Preload(StoreAccess(store, clock), "inbound" if isinstance(cache, InboundBindingCache) else "outbound",
                      cache, clock)
    preload.page = page
    preload.start()
    for _ in range(100):
        if preload.done:
            break
        clock.advance(0)
    return preload, clock


def test_every_active_inbound_binding_is_loaded_and_read_as_the_store_reads_it(store) -> None:
    made = _inbound(store, 10)
    store.revoke_inbound(made[4].inbound_impi)
    cache = InboundBindingCache(store)
    preload, _ = _load(store, cache)
    assert preload.done and cache.complete and len(cache.packed) == 9
    reads = []
    store_read = cache._read
    cache._read = lambda impi: (reads.append(impi), store_read(impi))[1]  # type: ignore[misc]
    for binding in made:
        expected = None if binding is made[4] else binding
        assert cache.active(binding.inbound_impi) == expected
    assert reads == [made[4].inbound_impi]  # only what is not held is asked of the store


def test_expiry_is_checked_at_use_and_capacity_stops_the_load(store) -> None:
    made = _inbound(store, 5, ttl=60)
    cache = InboundBindingCache(store, capacity=3)
    preload, _ = _load(store, cache, page=2)
    assert preload.done and not cache.complete and len(cache.packed) == 3
    held = [b for b in made if b.inbound_impi.encode() in cache.packed]
    assert cache.active(held[0].inbound_impi) == held[0]
    store.clock.now += 60  # type: ignore[attr-defined]
    assert cache.lookup(held[1].inbound_impi) is None and held[1].inbound_impi.encode() not in cache.packed


def test_outbound_bindings_for_the_primary(store) -> None:
    binding = _outbound(store)
    cache = OutboundBindingCache(store)
    preload, _ = _load(store, cache)
    assert cache.complete and len(cache.packed) == 1
    store.outbound_by_impi = None  # type: ignore[method-assign,assignment]  # (not asked: held)
    assert cache.active(binding.outbound_impi) == binding
    gc.collect(0)  # what the recent tier holds is not walked by later collections
    assert not any(gc.is_tracked(held) for held in cache._entries.values())
    cache.forget(binding.outbound_impi)  # (the watch, for its event)
    assert binding.outbound_impi.encode() not in cache.packed


def test_a_full_recent_tier_still_gives_packed_outbound_bindings(store) -> None:
    """Once the recent tier is full a packed binding is given, not held; an expired one is
    refused (the store's answer, without asking it)."""
    binding = _outbound(store)
    store.set_policy(AllocationPolicy("outbound", impi_pattern="e-<random>@primary.example",
                                      impu_pattern="sip:e-<random>@primary.example", ttl_seconds=30))
    store.add_subscriber(Subscriber.new("bob@primary.example", ["sip:bob@primary.example"], bytes(16), opc=bytes(16)))
    expiring = store.allocate_outbound("bob@primary.example", "sip:bob@primary.example", "partner-a")
    assert expiring.expires_at is not None
    cache = OutboundBindingCache(store, size=1)
    _load(store, cache)
    assert cache.active("nobody@primary.example") is None  # held (an identity found unbound): full
    store.outbound_by_impi = None  # type: ignore[method-assign,assignment]  # (not asked: packed)
    for _ in range(2):
        assert cache.active(binding.outbound_impi) == binding and cache.active(expiring.outbound_impi) == expiring
    assert set(cache._entries) == {"nobody@primary.example"}
    store.clock.now += 30
    assert cache.active(expiring.outbound_impi) is None and cache.active(binding.outbound_impi) == binding


def test_a_failing_page_is_read_again_and_stop_stops(store) -> None:
    _inbound(store, 4)
    cache = InboundBindingCache(store)
    cache.watching()
    clock = task.Clock()
    access = StoreAccess(store, clock)
    calls = []
    real = access.call

    def flaky(function, *args):
        calls.append(args)
        if len(calls) == 2:
            return fail(StoreUnavailable("the store is restarting"))
        return real(function, *args)

    access.call = flaky  # type: ignore[method-assign]
    preload = Preload(access, "inbound", cache, clock, retry=5.0)
    preload.page = 2
    preload.start()
    clock.advance(0)  # the second page fails
    assert not preload.done and len(cache.packed) == 2
    clock.advance(5.0)  # read again, from where it stopped
    clock.advance(0)
    assert preload.done and cache.complete and len(cache.packed) == 4
    assert calls[1] == calls[2]
    stopped = Preload(access, "inbound", InboundBindingCache(store), clock)
    stopped.page = 1
    stopped.start()
    stopped.stop()
    clock.advance(0)
    assert not stopped.done and not clock.getDelayedCalls()


def test_a_revocation_while_loading_is_applied(store) -> None:
    made = _inbound(store, 6)
    cache = InboundBindingCache(store)
    cache.watching()
    clock = task.Clock()
    preload = Preload(StoreAccess(store, clock), "inbound", cache, clock)
    preload.page = 2
    preload.start()  # the first page is read
    store.revoke_inbound(made[5].inbound_impi)  # another process, meanwhile
    cache.forget(made[5].inbound_impi)  # the watch's event (it may come before or after the page)
    while not preload.done:
        clock.advance(0)
    assert made[5].inbound_impi.encode() not in cache.packed and cache.lookup(made[5].inbound_impi) is None


def test_the_primary_watch_loads_at_start_and_again_after_a_failed_poll(store) -> None:
    binding = _outbound(store)
    clock = task.Clock()
    bindings = OutboundBindingCache(store)
    watch = PrimaryWatch(store, clock, 1.0, bindings, AgreementCache(store), StoreAccess(store, clock))
    watch.start()
    assert bindings.complete and binding.outbound_impi.encode() in bindings.packed
    real = store.binding_events_since
    store.binding_events_since = lambda *_: (_ for _ in ()).throw(StoreUnavailable("locked"))  # type: ignore[method-assign]
    clock.advance(1.0)  # the poll fails: everything is dropped, to be read again
    assert not bindings.complete and len(bindings.packed) == 0 and watch.last is None
    store.binding_events_since = real  # type: ignore[method-assign]
    clock.advance(1.0)  # the next poll starts over: the log's position, and a new load
    assert bindings.complete and binding.outbound_impi.encode() in bindings.packed
    watch.stop()


def test_the_revocation_watch_drops_what_it_holds_after_a_failed_poll_and_loads_again(store) -> None:
    """While the change log cannot be read a revocation would go unseen: the partner serves
    nothing from memory (each MAR reads the store), and once the log answers its events are
    applied from where it stopped and every binding is loaded again."""
    made = _inbound(store, 4)
    clock = task.Clock()
    bindings = InboundBindingCache(store)
    watch = RevocationWatcher(StoreAccess(store, clock), Local("gw.partner.example", "partner.example"),
                              lambda _: fail(AssertionError("nobody registered: no RTR")), clock, 1.0, {}, bindings)
    watch.start()
    assert bindings.complete and made[0].inbound_impi.encode() in bindings.packed
    real = store.binding_events_since
    store.binding_events_since = lambda *_: (_ for _ in ()).throw(StoreUnavailable("locked"))  # type: ignore[method-assign]
    clock.advance(1.0)  # the poll fails
    assert not bindings.complete and len(bindings.packed) == 0
    position = watch.last_id
    store.revoke_inbound(made[0].inbound_impi)  # by another process, while the log cannot be read
    assert bindings.lookup(made[0].inbound_impi) is None  # the store's answer, not what was held
    assert bindings.lookup(made[1].inbound_impi) is not None
    clock.advance(1.0)  # still failing: nothing more happens
    store.binding_events_since = real  # type: ignore[method-assign]
    clock.advance(1.0)  # the log answers: from where it stopped, then a new load
    assert watch.last_id is not None and position is not None and watch.last_id > position
    assert bindings.complete and made[1].inbound_impi.encode() in bindings.packed
    assert made[0].inbound_impi.encode() not in bindings.packed and bindings.lookup(made[0].inbound_impi) is None
    watch.stop()


def test_an_identity_too_long_for_a_record_is_left_to_the_store(store) -> None:
    cache = InboundBindingCache(store)
    long_impu = "sip:" + "x" * 70_000 + "@partner.example"
    assert cache.load([("a@partner.example", long_impu, "o@primary.example", "sip:o@primary.example", PRIMARIES[0],
                        0, None), ("b@partner.example", "sip:b@partner.example", "p@primary.example",
                                   "sip:p@primary.example", PRIMARIES[0], 0, None)])
    assert b"a@partner.example" not in cache.packed and b"b@partner.example" in cache.packed


def test_a_bug_while_loading_is_said_not_swallowed(store) -> None:
    from twisted.logger import globalLogPublisher

    _inbound(store, 3)
    cache = InboundBindingCache(store)
    cache.watching()
    cache.load = lambda rows: 1 / 0  # type: ignore[method-assign]
    said: list[dict] = []
    globalLogPublisher.addObserver(said.append)
    try:
        clock = task.Clock()
        preload = Preload(StoreAccess(store, clock), "inbound", cache, clock)
        preload.start()
    finally:
        globalLogPublisher.removeObserver(said.append)
    assert not preload.done and any("bindings stopped" in e.get("log_format", "") and e.get("direction") == "inbound"
                                    for e in said)
    assert any(e.get("log_failure") is not None for e in said)


def test_a_page_is_held_a_turn_at_a_time(store) -> None:
    """A page read off the reactor (PostgreSQL's are large) is held ``TURN`` bindings per
    reactor turn, so that no turn holds the reactor for a whole page."""
    _inbound(store, 5)
    cache = InboundBindingCache(store)
    cache.watching()
    clock = task.Clock()
    preload = Preload(StoreAccess(store, clock), "inbound", cache, clock)
    preload.page, preload.TURN = 10, 2
    turns: list[int] = []  # bindings held at each turn, and when the next one is due
    load = cache.load
    cache.load = lambda rows: (turns.append(len(rows)), load(rows))[1]  # type: ignore[method-assign]
    preload.start()
    assert turns == [2] and len(clock.getDelayedCalls()) == 1  # the rest: at the next turn
    clock.advance(0)
    assert turns == [2, 2, 1] and preload.done and cache.complete and len(cache.packed) == 5
