"""gateway.applications.caches.InboundBindingCache: the partner's active inbound bindings
(TR 23.781 solution 2, step 17) as the fast path reads them, against the store's own
answer (``inbound_by_impi``): the same binding, expiry checked at every use, a revocation
seen at once without the watch and after ``forget`` with it, a failing store a miss."""

from __future__ import annotations

import pytest

from gateway.applications.caches import InboundBindingCache
from hss_store.allocation import AllocationPolicy
from hss_store.records import PrimaryDatabase

PRIMARY = PrimaryDatabase("primary.example", "Gw.Primary.Example")


@pytest.fixture
def store(clocked_store):
    clocked_store.set_policy(AllocationPolicy("inbound", impi_pattern="mig-<random>@partner.example",
                                              impu_pattern="sip:mig-<random>@partner.example", ttl_seconds=60))
    return clocked_store


def test_a_record_is_the_stores_binding_ready_for_the_fast_path(store) -> None:
    binding = store.allocate_inbound(PRIMARY, "out-1@primary.example", "sip:out-1@primary.example")
    record = InboundBindingCache(store).lookup(binding.inbound_impi)
    assert record is not None
    assert record.binding() == binding == store.inbound_by_impi(binding.inbound_impi)
    assert record.inbound_impu == binding.inbound_impu.encode()
    assert (record.host, record.host_key, record.realm) == ("Gw.Primary.Example", "gw.primary.example", "primary.example")
    # what RequestTranslator.translate_values puts in the MAR, in translate_to's order
    assert record.values == (b"out-1@primary.example", b"sip:out-1@primary.example", b"primary.example",
                             b"Gw.Primary.Example")
    no_host = store.allocate_inbound(PrimaryDatabase("primary.example"), "out-2@primary.example",
                                     "sip:out-2@primary.example")
    record = InboundBindingCache(store).lookup(no_host.inbound_impi)
    assert record is not None and record.binding() == no_host
    assert (record.host, record.host_key, record.values[2:]) == (None, None, (b"primary.example",))
    # the general path's read, kept, gives the same record
    cache = InboundBindingCache(store)
    assert cache.keep(no_host) == record and cache.active(no_host.inbound_impi) == no_host


def test_unwatched_every_use_reads_the_store(store) -> None:
    binding = store.allocate_inbound(PRIMARY, "out-1@primary.example", "sip:out-1@primary.example")
    cache = InboundBindingCache(store)
    assert cache.lookup(binding.inbound_impi) is not None and not cache._entries
    store.revoke_inbound(binding.inbound_impi)
    assert cache.lookup(binding.inbound_impi) is None and cache.active(binding.inbound_impi) is None
    assert cache.lookup("nobody@partner.example") is None
    assert cache.lookup("not an identity") is None


def test_watched_bindings_are_held_until_forgotten_and_expire_at_use(store) -> None:
    binding = store.allocate_inbound(PRIMARY, "out-1@primary.example", "sip:out-1@primary.example")
    cache = InboundBindingCache(store)
    cache.watching()
    held = cache.lookup(binding.inbound_impi)
    assert held is not None and set(cache._entries) == {binding.inbound_impi}
    store.revoke_inbound(binding.inbound_impi)  # unseen until the watch reads the change log
    assert cache.lookup(binding.inbound_impi) == held
    cache.forget(binding.inbound_impi)  # what the watch does for the event
    assert cache.lookup(binding.inbound_impi) is None
    other = store.allocate_inbound(PRIMARY, "out-2@primary.example", "sip:out-2@primary.example")
    assert cache.lookup(other.inbound_impi) is not None
    store.clock.now += 59
    assert cache.lookup(other.inbound_impi) is not None
    store.clock.now += 1  # its expiry, checked at every use
    assert cache.lookup(other.inbound_impi) is None and other.inbound_impi not in cache._entries


def test_the_size_bounds_what_is_held(store) -> None:
    made = [store.allocate_inbound(PRIMARY, f"out-{n}@primary.example", f"sip:out-{n}@primary.example")
            for n in range(3)]
    cache = InboundBindingCache(store, size=2)
    cache.watching()
    for binding in made:
        assert cache.lookup(binding.inbound_impi) is not None
    # full: the third is read (from the store here, from the packed tier once loaded), not
    # held, and what is held stays (never emptied at once: see BindingTiers)
    assert set(cache._entries) == {made[0].inbound_impi, made[1].inbound_impi}
    assert cache.lookup(made[2].inbound_impi).binding() == made[2]
    store.revoke_inbound(made[0].inbound_impi)
    cache.forget(made[0].inbound_impi)  # the watch's event: room again
    assert cache.lookup(made[0].inbound_impi) is None and cache.lookup(made[2].inbound_impi) is not None
    assert set(cache._entries) == {made[1].inbound_impi, made[2].inbound_impi}


def test_a_failing_store_is_a_miss(store) -> None:
    binding = store.allocate_inbound(PRIMARY, "out-1@primary.example", "sip:out-1@primary.example")
    cache = InboundBindingCache(store)
    store.close()  # every read now raises the store's StoreError
    assert cache.lookup(binding.inbound_impi) is None


class _OnlyTheInterface:
    """A store with HssStore's methods only (no ``active_inbound``)."""

    in_process = True

    def __init__(self, store) -> None:
        self.store, self._clock = store, store.clock

    def inbound_by_impi(self, impi: str):
        return self.store.inbound_by_impi(impi)


def test_a_store_without_the_lean_read_gives_the_same_records(store) -> None:
    binding = store.allocate_inbound(PRIMARY, "out-1@primary.example", "sip:out-1@primary.example")
    lean, plain = InboundBindingCache(store), InboundBindingCache(_OnlyTheInterface(store))  # type: ignore[arg-type]
    assert plain.lookup(binding.inbound_impi) == lean.lookup(binding.inbound_impi)
    assert plain.lookup("nobody@partner.example") is None
    store.clock.now += 60
    assert plain.lookup(binding.inbound_impi) is None and lean.lookup(binding.inbound_impi) is None


def test_a_store_read_off_the_reactor_is_not_read_here(store) -> None:
    binding = store.allocate_inbound(PRIMARY, "out-1@primary.example", "sip:out-1@primary.example")
    remote = _OnlyTheInterface(store)
    remote.in_process = False  # type: ignore[misc]
    # (the general path reads it off the reactor, and answers)
    assert InboundBindingCache(remote).lookup(binding.inbound_impi) is None  # type: ignore[arg-type]


def test_prefetch_holds_what_lookup_would_read(store) -> None:
    """The bindings of the MARs of one read, read at once: held as ``lookup`` would hold
    them one by one (expired, revoked and unknown ones left out); nothing without the watch."""
    made = [store.allocate_inbound(PRIMARY, f"out-{n}@primary.example", f"sip:out-{n}@primary.example")
            for n in range(5)]
    store.revoke_inbound(made[1].inbound_impi)
    impis = [b.inbound_impi for b in made] + ["nobody@partner.example"]
    one_by_one = InboundBindingCache(store)
    expected = {impi: one_by_one.lookup(impi) for impi in impis}
    cache = InboundBindingCache(store)
    cache.prefetch(impis)
    assert not cache._entries  # not watched: nothing may be held
    cache.watching()
    cache.prefetch(impis)
    assert set(cache._entries) == {impi for impi, record in expected.items() if record is not None}
    assert all(cache.lookup(impi) == expected[impi] for impi in impis)
    store.clock.now += 60  # expired: checked at use, as for any binding held
    assert all(cache.lookup(impi) is None for impi in impis)


def test_prefetch_reads_nothing_when_the_first_few_are_held(store) -> None:
    made = [store.allocate_inbound(PRIMARY, f"out-{n}@primary.example", f"sip:out-{n}@primary.example")
            for n in range(6)]
    cache = InboundBindingCache(store)
    cache.watching()
    for binding in made[:4]:
        assert cache.lookup(binding.inbound_impi) is not None
    cache.prefetch(b.inbound_impi for b in made)
    assert len(cache._entries) == 4  # (a working set held: no read at all)
    cache.prefetch(b.inbound_impi for b in made[1:])  # one of the first few not held: all read
    assert set(cache._entries) == {b.inbound_impi for b in made}
    store.close()
    cache.forget(made[1].inbound_impi)
    cache.prefetch([made[1].inbound_impi, made[2].inbound_impi])  # a failing store: each lookup finds out
    assert cache.lookup(made[1].inbound_impi) is None


def test_what_is_held_is_not_walked_by_the_cycle_collector(store) -> None:
    """The recent tier holds flat tuples of atoms, which CPython stops tracking at their
    first collection: 200,000 bindings held cost later collections nothing (a record per
    use is made from the tuple and freed with the request)."""
    import gc

    made = [store.allocate_inbound(PRIMARY, f"out-{n}@primary.example", f"sip:out-{n}@primary.example")
            for n in range(3)]
    cache = InboundBindingCache(store)
    cache.watching()
    for binding in made:
        assert cache.lookup(binding.inbound_impi) is not None
    gc.collect(0)
    assert not any(gc.is_tracked(held) for held in cache._entries.values())
    assert [cache.lookup(b.inbound_impi).binding() for b in made] == made  # type: ignore[union-attr]
