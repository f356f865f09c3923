"""gateway.routing.pending: the table of requests sent and not yet answered, driven by task.Clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from gateway.routing.pending import PendingRequests

TX = 2.0


def make(tx=TX):
    clock = task.Clock()
    expired = []
    table = PendingRequests(clock, tx, expired.append)
    return clock, table, expired


def add(table, peer="hss-a", original=1, hop_by_hop=None, origin=None, data=b"req", deferred=None):
    return table.add(original, origin, peer, data, 303, hop_by_hop, deferred)


def active_timers(clock):
    return [call for call in clock.getDelayedCalls() if call.active()]


# -- ids --------------------------------------------------------------------------------


def test_new_ids_are_unique_and_consecutive():
    _, table, _ = make()
    ids = [table.new_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all((b - a) & 0xFFFFFFFF == 1 for a, b in zip(ids, ids[1:], strict=False))


def test_ids_wrap_at_32_bits():
    _, table, _ = make()
    table._next_id = 0xFFFFFFFE
    assert [table.new_id() for _ in range(4)] == [0xFFFFFFFE, 0xFFFFFFFF, 0, 1]


def test_new_id_skips_ids_in_use_even_across_the_wrap():
    _, table, _ = make()
    add(table, hop_by_hop=0xFFFFFFFF)
    add(table, hop_by_hop=0)
    add(table, hop_by_hop=2)
    table._next_id = 0xFFFFFFFF
    assert table.new_id() == 1
    assert table.new_id() == 3


def test_add_without_id_takes_a_new_one():
    _, table, _ = make()
    entries = [add(table) for _ in range(50)]
    assert len({entry.hop_by_hop for entry in entries}) == 50
    assert len(table) == 50
    assert all(table.get(entry.hop_by_hop) is entry for entry in entries)


# -- per-peer counts, get, pop, move ------------------------------------------------------


def test_per_peer_counts_follow_add_and_pop():
    _, table, _ = make()
    a = [add(table, peer="hss-a") for _ in range(3)]
    b = [add(table, peer="hss-b") for _ in range(2)]
    assert (table.outstanding("hss-a"), table.outstanding("hss-b"), table.outstanding("hss-c")) == (3, 2, 0)
    assert table.pop(a[0].hop_by_hop) is a[0]
    assert table.pop(a[0].hop_by_hop) is None  # twice: no double decrement
    assert table.outstanding("hss-a") == 2
    assert table.pop(a[1].hop_by_hop ^ 0x80000000) is None  # an id never given
    assert table.for_peer("hss-b") == b
    assert len(table) == 4


def test_entry_fields():
    clock, table, _ = make()
    clock.advance(10)
    origin = object()
    entry = table.add(0xAB, origin, "hss-a", b"bytes", 303, 0x42)
    assert entry.hop_by_hop == 0x42
    assert entry.original_hop_by_hop == 0xAB
    assert entry.origin is origin
    assert entry.data == b"bytes"
    assert entry.command_code == 303
    assert table.started(entry) == 10.0
    assert entry.deadline == 10.0 + TX
    assert entry.tried == ()  # peers tried before entry.peer
    assert entry.deferred is None


def test_move_keeps_id_and_deadline_and_updates_counts_and_tried():
    clock, table, _ = make()
    entry = add(table, peer="hss-a")
    clock.advance(0.5)
    moved = table.move(entry, "hss-b", b"retransmission")
    assert table.get(entry.hop_by_hop) is moved
    assert moved.hop_by_hop == entry.hop_by_hop
    assert moved.data == b"retransmission"
    assert moved.tried == ("hss-a",) and moved.peer == "hss-b"
    assert moved.deadline == TX
    assert list(table) == [moved]  # still in its place in deadline order
    entry = moved
    assert (table.outstanding("hss-a"), table.outstanding("hss-b")) == (0, 1)
    assert table.for_peer("hss-a") == []
    assert table.for_peer("hss-b") == [entry]
    table.pop(entry.hop_by_hop)
    assert table.outstanding("hss-b") == 0


def test_iteration_is_a_snapshot():
    _, table, _ = make()
    entries = [add(table) for _ in range(5)]
    seen = []
    for entry in table:  # popping while iterating is allowed
        seen.append(entry)
        table.pop(entry.hop_by_hop)
    assert seen == entries
    assert len(table) == 0


# -- expiry --------------------------------------------------------------------------------


def test_expiry_in_deadline_order_with_one_timer():
    clock, table, expired = make()
    first = add(table, original=1)
    clock.advance(0.5)
    second = add(table, original=2)
    third = add(table, original=3)
    clock.advance(0.5)
    fourth = add(table, original=4)
    assert len(active_timers(clock)) == 1
    clock.advance(0.99)  # t = 1.99
    assert expired == []
    clock.advance(0.01)  # t = 2.0
    assert expired == [first]
    assert len(active_timers(clock)) == 1
    clock.advance(0.5)  # t = 2.5
    assert expired == [first, second, third]
    assert len(table) == 1
    assert table.outstanding("hss-a") == 1
    clock.advance(0.5)  # t = 3.0
    assert expired == [first, second, third, fourth]
    assert len(table) == 0
    assert table.outstanding("hss-a") == 0
    assert active_timers(clock) == []


def test_many_requests_one_timer():
    clock, table, expired = make()
    for index in range(1000):
        add(table, original=index)
        clock.advance(0.001)
    assert len(active_timers(clock)) == 1
    clock.advance(TX)
    assert [entry.original_hop_by_hop for entry in expired] == list(range(1000))
    assert active_timers(clock) == []


def test_answered_requests_do_not_expire():
    clock, table, expired = make()
    first = add(table)
    second = add(table)
    table.pop(first.hop_by_hop)
    clock.advance(TX)
    assert expired == [second]


def test_timer_armed_for_a_popped_head_rearms_for_the_next():
    clock, table, expired = make()
    first = add(table)
    clock.advance(1.0)
    second = add(table)
    table.pop(first.hop_by_hop)
    clock.advance(1.0)  # the timer fires for the popped head: nothing expires
    assert expired == []
    assert len(active_timers(clock)) == 1
    clock.advance(0.999)
    assert expired == []
    clock.advance(0.001)
    assert expired == [second]


def test_moved_request_keeps_its_original_deadline():
    clock, table, expired = make()
    entry = add(table, peer="hss-a")
    clock.advance(1.5)
    moved = table.move(entry, "hss-b", b"T")
    clock.advance(0.5)
    assert expired == [moved]
    assert table.outstanding("hss-b") == 0


def test_on_expired_may_add_requests():
    clock = task.Clock()
    expired = []

    def on_expired(entry):
        expired.append(entry)
        if len(expired) == 1:
            table.add(99, None, "hss-b", b"again", 303)

    table = PendingRequests(clock, TX, on_expired)
    table.add(1, None, "hss-a", b"x", 303)
    clock.advance(TX)
    assert [e.original_hop_by_hop for e in expired] == [1]
    assert len(active_timers(clock)) == 1
    clock.advance(TX)
    assert [e.original_hop_by_hop for e in expired] == [1, 99]


def test_stop_cancels_the_timer():
    clock, table, expired = make()
    add(table)
    table.stop()
    assert active_timers(clock) == []
    clock.advance(10 * TX)
    assert expired == []
    table.stop()  # twice is fine


def test_the_duplicate_cache_keeps_the_newest_answers_last_and_evicts_the_oldest() -> None:
    """DuplicateCache (RFC 6733 §6.1.3): an answer put again for a key moves it last, the
    oldest goes beyond ``size``, an entry past its ttl is not given."""
    from twisted.internet import task

    from gateway.routing.local import DuplicateCache

    clock = task.Clock()
    cache = DuplicateCache(size=2, ttl=5.0, clock=clock)
    cache.put(("a", 1), b"first")
    cache.put(("b", 2), b"second")
    cache.put(("a", 1), b"first again")  # now the newest
    cache.put(("c", 3), b"third")  # evicts ("b", 2), the oldest
    assert sorted(cache._answers) == [("a", 1), ("c", 3)]
    assert cache.get(("a", 1)) == b"first again" and cache.get(("b", 2)) is None
    cache.put(("a", 1), b"first, third time")  # its older place is reused: still kept
    cache.put(("d", 4), b"fourth")  # the oldest place held ("c", 3)
    assert sorted(cache._answers) == [("a", 1), ("d", 4)] and cache.get(("a", 1)) == b"first, third time"
    clock.advance(5.1)
    assert cache.get(("d", 4)) is None


@settings(max_examples=200, deadline=None)
@given(keys=st.lists(st.integers(0, 12), max_size=200), size=st.integers(0, 6))
def test_the_duplicate_cache_holds_the_answers_of_the_last_puts(keys, size) -> None:
    """Against a model: after any puts, the cache gives the newest answer of each key put
    among the last ``size`` puts, and nothing for the others."""
    from twisted.internet import task

    from gateway.routing.local import DuplicateCache

    cache = DuplicateCache(size=size, ttl=5.0, clock=task.Clock())
    for n, key in enumerate(keys):
        cache.put(("host", key), b"%d" % n)
    recent = keys[max(0, len(keys) - size) :] if size else []
    newest = {key: n for n, key in enumerate(keys)}
    for key in range(13):
        assert cache.get(("host", key)) == (b"%d" % newest[key] if key in recent else None)
    assert len(cache._answers) == len(set(recent))
