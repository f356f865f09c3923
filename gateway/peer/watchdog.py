"""The transport failure watchdog of RFC 3539 §3.4 (Appendix A), sans-IO.

RFC 6733 §5.5.3 makes this algorithm mandatory for Diameter, with DWR/DWA as the watchdog
messages. Everything that affects the watchdog lives in this module; the transitions are
the table of RFC 3539 Appendix A (:data:`RFC3539_TABLE`), written with the RFC's state,
event, condition and action names so they can be read side by side. No I/O, no clock:
``now`` is passed in; the jitter's randomness is injectable.

One :class:`Watchdog` per peer, living as long as the peer is configured: DOWN remembers
that the connection failed, so the next connection goes through REOPEN (three DWAs in a
row, RFC 6733 §5.1) before requests are routed to it again.

Deliberate difference: the rows "INITIAL/DOWN, Timer expires -> AttemptOpen(),
SetWatchdog()" are not here. Reopening is the job of
:class:`~gateway.peer.state.PeerStateMachine` (Tc reconnect, RFC 6733 §2.1); a watchdog
timer that fires in INITIAL or DOWN does nothing.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

TWINIT_DEFAULT = 30.0  # RFC 3539 §3.4.1: Twinit SHOULD default to 30 s ...
TWINIT_MINIMUM = 6.0  # ... and MUST NOT be set lower than 6 s
JITTER = 2.0  # RFC 3539 §3.4.1: Tw = Twinit +/- up to 2 s, to avoid synchronisation
NUM_DWA = 3  # RFC 3539 Appendix A: REOPEN -> OKAY after three DWAs in a row

_TIMER_SLACK = 1e-3  # a timer that fires a millisecond early still counts (float clocks)


class WatchdogError(Exception):
    """An event the watchdog cannot take in its state (a second connection up)."""


class WatchdogState(enum.Enum):
    """RFC 3539 Appendix A states ("Status")."""

    INITIAL = "INITIAL"  # no connection was ever up
    OKAY = "OKAY"  # connection trusted: route requests to it
    SUSPECT = "SUSPECT"  # a DWA is overdue: failed over, not used for new requests
    DOWN = "DOWN"  # connection closed after a failure
    REOPEN = "REOPEN"  # new connection, proving itself with NUM_DWA DWAs


class WatchdogEvent(enum.Enum):
    """RFC 3539 Appendix A events."""

    CONNECTION_UP = "Connection up"
    CONNECTION_DOWN = "Connection down"
    RECEIVE_DWA = "Receive DWA"
    RECEIVE_NON_DWA = "Receive non-DWA"
    TIMER_EXPIRES = "Timer expires"


class WatchdogAction(enum.Enum):
    """What the executor must do; the comment on each member says how."""

    SEND_DWR = "SendWatchdog()"  # send a DWR on the open connection
    FAILOVER = "Failover()"  # re-send pending requests to alternates (T flag), stop routing here
    FAILBACK = "Failback()"  # the peer takes new requests again
    CLOSE_CONNECTION = "CloseConnection()"  # abort the transport if it is still open
    THROWAWAY = "Throwaway()"  # discard the message (still answer a DWR, RFC 6733 §5.6)


# Steps of the RFC's action column that only change the watchdog's own variables.
_SET_WATCHDOG = "SetWatchdog()"
_VARIABLE_STEPS = frozenset(
    {_SET_WATCHDOG, "Pending = TRUE", "Pending = FALSE", "NumDWA = 0", "NumDWA++", "NumDWA = -1"}
)

# Conditions of the RFC's event column ("Timer expires & Pending"), in its words.
_GUARDS: dict[str, Callable[[Watchdog], bool]] = {
    "": lambda w: True,
    "Pending": lambda w: w.pending,
    "!Pending": lambda w: not w.pending,
    "NumDWA == 2": lambda w: w.num_dwa == NUM_DWA - 1,
    "NumDWA < 2": lambda w: w.num_dwa < NUM_DWA - 1,
    "Pending & NumDWA < 0": lambda w: w.pending and w.num_dwa < 0,
    "Pending & NumDWA >= 0": lambda w: w.pending and w.num_dwa >= 0,
}

_I, _O, _S, _D, _R = (
    WatchdogState.INITIAL,
    WatchdogState.OKAY,
    WatchdogState.SUSPECT,
    WatchdogState.DOWN,
    WatchdogState.REOPEN,
)
_E = WatchdogEvent

# RFC 3539 Appendix A: (state, event, condition, actions, new state), in the RFC's order.
RFC3539_TABLE: tuple[tuple[WatchdogState, WatchdogEvent, str, str, WatchdogState], ...] = (
    # STATE  EVENT              CONDITION                ACTIONS                            NEW
    (_I, _E.CONNECTION_UP, "", "SetWatchdog()", _O),
    (_I, _E.RECEIVE_DWA, "", "Pending = FALSE, Throwaway()", _I),
    (_I, _E.RECEIVE_NON_DWA, "", "Throwaway()", _I),
    (_O, _E.RECEIVE_DWA, "", "Pending = FALSE, SetWatchdog()", _O),
    (_O, _E.RECEIVE_NON_DWA, "", "SetWatchdog()", _O),
    (_O, _E.TIMER_EXPIRES, "!Pending", "SendWatchdog(), SetWatchdog(), Pending = TRUE", _O),
    (_O, _E.TIMER_EXPIRES, "Pending", "Failover(), SetWatchdog()", _S),
    (_O, _E.CONNECTION_DOWN, "", "CloseConnection(), Failover(), SetWatchdog()", _D),
    (_S, _E.RECEIVE_DWA, "", "Pending = FALSE, Failback(), SetWatchdog()", _O),
    (_S, _E.RECEIVE_NON_DWA, "", "Failback(), SetWatchdog()", _O),
    (_S, _E.TIMER_EXPIRES, "", "CloseConnection(), SetWatchdog()", _D),
    (_S, _E.CONNECTION_DOWN, "", "CloseConnection(), SetWatchdog()", _D),
    (_D, _E.CONNECTION_UP, "", "NumDWA = 0, SendWatchdog(), SetWatchdog(), Pending = TRUE", _R),
    (_D, _E.RECEIVE_DWA, "", "Pending = FALSE, Throwaway()", _D),
    (_D, _E.RECEIVE_NON_DWA, "", "Throwaway()", _D),
    (_R, _E.RECEIVE_DWA, "NumDWA == 2", "Pending = FALSE, NumDWA++, Failback()", _O),
    (_R, _E.RECEIVE_DWA, "NumDWA < 2", "Pending = FALSE, NumDWA++", _R),
    (_R, _E.RECEIVE_NON_DWA, "", "Throwaway()", _R),
    (_R, _E.TIMER_EXPIRES, "!Pending", "SendWatchdog(), SetWatchdog(), Pending = TRUE", _R),
    (_R, _E.TIMER_EXPIRES, "Pending & NumDWA < 0", "CloseConnection(), SetWatchdog()", _D),
    (_R, _E.TIMER_EXPIRES, "Pending & NumDWA >= 0", "NumDWA = -1, SetWatchdog()", _R),
    (_R, _E.CONNECTION_DOWN, "", "CloseConnection(), SetWatchdog()", _D),
)


@dataclass(frozen=True, slots=True)
class _Row:
    guard: str
    steps: tuple[str, ...]
    new_state: WatchdogState


def _index() -> dict[tuple[WatchdogState, WatchdogEvent], list[_Row]]:
    rows: dict[tuple[WatchdogState, WatchdogEvent], list[_Row]] = {}
    for state, event, guard, actions, new_state in RFC3539_TABLE:
        steps = tuple(step.strip() for step in actions.split(","))
        for step in steps:  # a typo fails at import time
            if step not in _VARIABLE_STEPS:
                WatchdogAction(step)
        if guard not in _GUARDS:
            raise ValueError(f"unknown condition {guard!r}")
        rows.setdefault((state, event), []).append(_Row(guard, steps, new_state))
    return rows


_ROWS = _index()


class Watchdog:
    """RFC 3539 watchdog for one peer.

    ``twinit``: Twinit in seconds (default 30, at least 6). ``rng``: returns floats in
    [0, 1) for the jitter (default :func:`random.random`; pass ``random.Random(seed).random``
    in tests). Every ``on_*`` method returns the :class:`WatchdogAction` list to execute
    in order; afterwards re-arm the timer at :attr:`next_deadline`.
    """

    def __init__(
        self, twinit: float = TWINIT_DEFAULT, *, rng: Callable[[], float] | None = None
    ) -> None:
        if twinit < TWINIT_MINIMUM:
            raise ValueError(
                f"watchdog Twinit {twinit} s is below the RFC 3539 §3.4.1 minimum of "
                f"{TWINIT_MINIMUM:g} s; configure {TWINIT_MINIMUM:g} s or more "
                f"(default {TWINIT_DEFAULT:g} s)"
            )
        self.twinit = twinit
        self._rng = rng if rng is not None else random.random
        self.state = WatchdogState.INITIAL
        self.pending = False  # a DWR is outstanding
        self.num_dwa = 0  # DWAs received in REOPEN (-1: one was missed)
        self.tw: float | None = None  # the last Tw drawn
        self._deadline: float | None = None

    @property
    def next_deadline(self) -> float | None:
        """When to call :meth:`on_timer` (absolute, same clock as ``now``), or None."""
        return self._deadline

    @property
    def is_okay(self) -> bool:
        """True in OKAY: new requests may be routed to this peer."""
        return self.state is WatchdogState.OKAY

    def on_connection_up(self, now: float) -> list[WatchdogAction]:
        """The peer state machine entered I-Open or R-Open."""
        return self.handle(WatchdogEvent.CONNECTION_UP, now)

    def on_connection_down(self, now: float) -> list[WatchdogAction]:
        """The peer state machine left I-Open / R-Open (any reason, DPR included)."""
        return self.handle(WatchdogEvent.CONNECTION_DOWN, now)

    def on_message_received(self, now: float, is_dwa: bool) -> list[WatchdogAction]:
        """Any message received on the open connection (RFC 3539 §3.4.1: receipt of any
        message, not only a DWA, shows the connection is alive)."""
        event = WatchdogEvent.RECEIVE_DWA if is_dwa else WatchdogEvent.RECEIVE_NON_DWA
        return self.handle(event, now)

    def on_timer(self, now: float) -> list[WatchdogAction]:
        """The executor's timer fired; ``[]`` if nothing is due (early or stale timer)."""
        if self._deadline is None or now < self._deadline - _TIMER_SLACK:
            return []
        self._deadline = None
        return self.handle(WatchdogEvent.TIMER_EXPIRES, now)

    def handle(self, event: WatchdogEvent, now: float) -> list[WatchdogAction]:
        """Apply one RFC 3539 event (the ``on_*`` methods are the usual entry points)."""
        row = next((r for r in _ROWS.get((self.state, event), ()) if _GUARDS[r.guard](self)), None)
        if row is None:
            if event is WatchdogEvent.CONNECTION_UP:
                raise WatchdogError(
                    f"connection up in watchdog state {self.state.value}: report the previous "
                    "connection down first (one connection per peer, RFC 6733 §2.1)"
                )
            if event is WatchdogEvent.TIMER_EXPIRES:
                self._deadline = None  # INITIAL/DOWN: reopening is the peer machine's job
            return []  # connection down while already down
        actions: list[WatchdogAction] = []
        for step in row.steps:
            if step == _SET_WATCHDOG:
                self._set_watchdog(now)
            elif step == "Pending = TRUE":
                self.pending = True
            elif step == "Pending = FALSE":
                self.pending = False
            elif step == "NumDWA = 0":
                self.num_dwa = 0
            elif step == "NumDWA++":
                self.num_dwa += 1
            elif step == "NumDWA = -1":
                self.num_dwa = -1
            else:
                actions.append(WatchdogAction(step))
        self.state = row.new_state
        return actions

    def _set_watchdog(self, now: float) -> None:
        # RFC 3539 §3.4.1: Tw = Twinit with a jitter of up to +/- 2 s.
        self.tw = self.twinit - JITTER + 2 * JITTER * self._rng()
        self._deadline = now + self.tw
