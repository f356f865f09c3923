"""The RFC 3539 watchdog, row by row and in scenarios, with a fake clock and seeded jitter."""

from __future__ import annotations

import random

import pytest

from gateway.peer.watchdog import (
    RFC3539_TABLE,
    Watchdog,
    WatchdogAction,
    WatchdogError,
    WatchdogEvent,
    WatchdogState,
)

SEND_DWR = WatchdogAction.SEND_DWR
FAILOVER = WatchdogAction.FAILOVER
FAILBACK = WatchdogAction.FAILBACK
CLOSE = WatchdogAction.CLOSE_CONNECTION
THROWAWAY = WatchdogAction.THROWAWAY

UP = WatchdogEvent.CONNECTION_UP
DOWN_EV = WatchdogEvent.CONNECTION_DOWN
DWA = WatchdogEvent.RECEIVE_DWA
NON_DWA = WatchdogEvent.RECEIVE_NON_DWA
TIMER = WatchdogEvent.TIMER_EXPIRES

INITIAL = WatchdogState.INITIAL
OKAY = WatchdogState.OKAY
SUSPECT = WatchdogState.SUSPECT
DOWN = WatchdogState.DOWN
REOPEN = WatchdogState.REOPEN


class FakeClock:
    """Time that moves only when the test says so (like twisted.internet.task.Clock)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def seconds(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def no_jitter() -> float:
    return 0.5  # Tw = Twinit exactly


SENTINEL_DEADLINE = 12345.0

# RFC 3539 Appendix A, transcribed independently of the module:
# state, event, condition set-up (Pending, NumDWA), actions for the executor, new state,
# Pending and NumDWA afterwards, whether SetWatchdog() ran.
ROWS = [
    (INITIAL, UP, "", False, 0, [], OKAY, False, 0, True),
    (INITIAL, DWA, "", True, 0, [THROWAWAY], INITIAL, False, 0, False),
    (INITIAL, NON_DWA, "", False, 0, [THROWAWAY], INITIAL, False, 0, False),
    (OKAY, DWA, "", True, 0, [], OKAY, False, 0, True),
    (OKAY, NON_DWA, "", True, 0, [], OKAY, True, 0, True),
    (OKAY, TIMER, "!Pending", False, 0, [SEND_DWR], OKAY, True, 0, True),
    (OKAY, TIMER, "Pending", True, 0, [FAILOVER], SUSPECT, True, 0, True),
    (OKAY, DOWN_EV, "", False, 0, [CLOSE, FAILOVER], DOWN, False, 0, True),
    (SUSPECT, DWA, "", True, 0, [FAILBACK], OKAY, False, 0, True),
    (SUSPECT, NON_DWA, "", True, 0, [FAILBACK], OKAY, True, 0, True),
    (SUSPECT, TIMER, "", True, 0, [CLOSE], DOWN, True, 0, True),
    (SUSPECT, DOWN_EV, "", True, 0, [CLOSE], DOWN, True, 0, True),
    (DOWN, UP, "", False, 5, [SEND_DWR], REOPEN, True, 0, True),
    (DOWN, DWA, "", True, 0, [THROWAWAY], DOWN, False, 0, False),
    (DOWN, NON_DWA, "", False, 0, [THROWAWAY], DOWN, False, 0, False),
    (REOPEN, DWA, "NumDWA == 2", True, 2, [FAILBACK], OKAY, False, 3, False),
    (REOPEN, DWA, "NumDWA < 2", True, 1, [], REOPEN, False, 2, False),
    (REOPEN, NON_DWA, "", True, 1, [THROWAWAY], REOPEN, True, 1, False),
    (REOPEN, TIMER, "!Pending", False, 1, [SEND_DWR], REOPEN, True, 1, True),
    (REOPEN, TIMER, "Pending & NumDWA < 0", True, -1, [CLOSE], DOWN, True, -1, True),
    (REOPEN, TIMER, "Pending & NumDWA >= 0", True, 0, [], REOPEN, True, -1, True),
    (REOPEN, DOWN_EV, "", True, 1, [CLOSE], DOWN, True, 1, True),
]


def row_id(row):
    return f"{row[0].value}|{row[1].value}|{row[2]}"


def test_module_table_has_exactly_the_rfc_rows():
    assert {(s, e, g) for s, e, g, _, _ in RFC3539_TABLE} == {(r[0], r[1], r[2]) for r in ROWS}
    assert len(RFC3539_TABLE) == len(ROWS) == 22


@pytest.mark.parametrize("row", ROWS, ids=row_id)
def test_every_row(row):
    state, event, _, pending, num_dwa, actions, new_state, pending_after, num_after, timer = row
    watchdog = Watchdog(30.0, rng=no_jitter)
    watchdog.state, watchdog.pending, watchdog.num_dwa = state, pending, num_dwa
    watchdog._deadline = SENTINEL_DEADLINE
    assert watchdog.handle(event, 100.0) == actions
    assert watchdog.state is new_state
    assert (watchdog.pending, watchdog.num_dwa) == (pending_after, num_after)
    assert watchdog.next_deadline == (130.0 if timer else SENTINEL_DEADLINE)


@pytest.mark.parametrize("state", [INITIAL, DOWN])
def test_timer_in_initial_or_down_does_nothing(state):
    """AttemptOpen() is the peer state machine's Tc reconnect, not the watchdog's."""
    watchdog = Watchdog(rng=no_jitter)
    watchdog.state = state
    watchdog._deadline = 10.0
    assert watchdog.on_timer(10.0) == []
    assert watchdog.state is state and watchdog.next_deadline is None


@pytest.mark.parametrize("state", [INITIAL, DOWN])
def test_connection_down_while_down_is_harmless(state):
    watchdog = Watchdog()
    watchdog.state = state
    assert watchdog.on_connection_down(0.0) == []
    assert watchdog.state is state


@pytest.mark.parametrize("state", [OKAY, SUSPECT, REOPEN])
def test_second_connection_up_is_an_error(state):
    watchdog = Watchdog()
    watchdog.state = state
    with pytest.raises(WatchdogError, match="connection down first"):
        watchdog.on_connection_up(0.0)


def test_okay_sends_dwr_only_after_tw_without_traffic():
    clock = FakeClock()
    watchdog = Watchdog(30.0, rng=no_jitter)
    assert watchdog.on_connection_up(clock.now) == []
    assert watchdog.is_okay and watchdog.next_deadline == clock.now + 30.0
    # RFC 3539 §3.4.1: receipt of any message, not only a DWA, resets the timer.
    assert watchdog.on_message_received(clock.advance(20.0), is_dwa=False) == []
    assert watchdog.next_deadline == clock.now + 30.0
    assert watchdog.on_timer(clock.advance(10.0)) == []  # the old deadline: nothing due
    assert watchdog.on_timer(clock.advance(20.0)) == [SEND_DWR]
    assert watchdog.pending
    assert watchdog.on_message_received(clock.advance(0.05), is_dwa=True) == []
    assert not watchdog.pending and watchdog.state is OKAY
    assert watchdog.next_deadline == clock.now + 30.0


def test_one_missed_dwa_fails_over_and_the_late_dwa_fails_back():
    clock = FakeClock()
    watchdog = Watchdog(30.0, rng=no_jitter)
    watchdog.on_connection_up(clock.now)
    assert watchdog.on_timer(clock.advance(30.0)) == [SEND_DWR]
    assert watchdog.on_timer(clock.advance(30.0)) == [FAILOVER]
    assert watchdog.state is SUSPECT and not watchdog.is_okay
    assert watchdog.on_message_received(clock.advance(1.0), is_dwa=True) == [FAILBACK]
    assert watchdog.state is OKAY and not watchdog.pending


def test_two_missed_dwas_close_the_connection():
    clock = FakeClock()
    watchdog = Watchdog(30.0, rng=no_jitter)
    watchdog.on_connection_up(clock.now)
    assert watchdog.on_timer(clock.advance(30.0)) == [SEND_DWR]
    assert watchdog.on_timer(clock.advance(30.0)) == [FAILOVER]
    assert watchdog.on_timer(clock.advance(30.0)) == [CLOSE]
    assert watchdog.state is DOWN
    # The executor aborts the transport; the peer machine's Closed is reported back.
    assert watchdog.on_connection_down(clock.advance(0.01)) == []
    assert watchdog.on_timer(clock.advance(30.0)) == []
    assert watchdog.next_deadline is None


def test_connection_lost_while_okay_fails_over():
    watchdog = Watchdog(rng=no_jitter)
    watchdog.on_connection_up(0.0)
    assert watchdog.on_connection_down(5.0) == [CLOSE, FAILOVER]
    assert watchdog.state is DOWN


def reopen(clock):
    watchdog = Watchdog(30.0, rng=no_jitter)
    watchdog.on_connection_up(clock.now)
    watchdog.on_connection_down(clock.advance(1.0))
    assert watchdog.on_connection_up(clock.advance(1.0)) == [SEND_DWR]
    assert watchdog.state is REOPEN and watchdog.pending and watchdog.num_dwa == 0
    return watchdog


def test_reopen_needs_three_dwas_in_a_row():
    clock = FakeClock()
    watchdog = reopen(clock)
    assert watchdog.on_message_received(clock.advance(0.1), is_dwa=True) == []
    assert watchdog.on_timer(clock.advance(30.0)) == [SEND_DWR]
    assert watchdog.on_message_received(clock.advance(0.1), is_dwa=True) == []
    assert watchdog.state is REOPEN and not watchdog.is_okay  # two are not enough
    assert watchdog.on_timer(clock.advance(30.0)) == [SEND_DWR]
    assert watchdog.on_message_received(clock.advance(0.1), is_dwa=True) == [FAILBACK]
    assert watchdog.is_okay and watchdog.num_dwa == 3


def test_reopen_discards_other_traffic():
    clock = FakeClock()
    watchdog = reopen(clock)
    assert watchdog.on_message_received(clock.advance(0.1), is_dwa=False) == [THROWAWAY]
    assert watchdog.state is REOPEN


def test_reopen_tolerates_one_late_dwa_then_closes():
    clock = FakeClock()
    watchdog = reopen(clock)
    assert watchdog.on_timer(clock.advance(30.0)) == []  # first miss: NumDWA = -1
    assert watchdog.num_dwa == -1
    assert watchdog.on_timer(clock.advance(30.0)) == [CLOSE]
    assert watchdog.state is DOWN


def test_reopen_count_restarts_after_a_late_dwa():
    clock = FakeClock()
    watchdog = reopen(clock)
    watchdog.on_timer(clock.advance(30.0))  # NumDWA = -1
    assert watchdog.on_message_received(clock.advance(1.0), is_dwa=True) == []
    assert watchdog.num_dwa == 0


def test_reopen_connection_lost_closes_without_failover():
    clock = FakeClock()
    watchdog = reopen(clock)
    assert watchdog.on_connection_down(clock.advance(1.0)) == [CLOSE]


def test_jitter_stays_within_two_seconds_with_a_seeded_random():
    watchdog = Watchdog(30.0, rng=random.Random(3539).random)
    watchdog.on_connection_up(0.0)
    samples = []
    for now in range(2000):
        watchdog.on_message_received(float(now), is_dwa=False)
        samples.append(watchdog.next_deadline - now)
    assert all(28.0 <= tw <= 32.0 for tw in samples)
    assert min(samples) < 28.1 and max(samples) > 31.9  # the jitter really spreads


def test_jitter_is_reproducible_with_the_same_seed():
    first, second = (Watchdog(30.0, rng=random.Random(7).random) for _ in range(2))
    first.on_connection_up(0.0)
    second.on_connection_up(0.0)
    assert first.tw == second.tw == 28.0 + 4.0 * random.Random(7).random()


@pytest.mark.parametrize(("draw", "tw"), [(0.0, 28.0), (0.5, 30.0), (0.999999, 32.0)])
def test_jitter_extremes(draw, tw):
    watchdog = Watchdog(30.0, rng=lambda: draw)
    watchdog.on_connection_up(100.0)
    assert watchdog.tw == pytest.approx(tw, abs=1e-5)
    assert watchdog.next_deadline == pytest.approx(100.0 + tw, abs=1e-5)


def test_minimum_twinit_with_jitter():
    watchdog = Watchdog(6.0, rng=lambda: 0.0)
    watchdog.on_connection_up(0.0)
    assert watchdog.tw == 4.0


@pytest.mark.parametrize("twinit", [5.999, 0.0, -30.0])
def test_twinit_below_six_seconds_is_rejected(twinit):
    with pytest.raises(ValueError, match=r"below the RFC 3539 §3\.4\.1 minimum of 6 s"):
        Watchdog(twinit)


def test_defaults():
    watchdog = Watchdog()
    assert watchdog.twinit == 30.0
    assert watchdog.state is INITIAL and watchdog.next_deadline is None
    assert watchdog.on_timer(0.0) == []
