"""The Diameter peer state machine of RFC 6733 §5.6, sans-IO.

Everything that affects the peer state machine lives in this module, as in h11's
``_state.py``: the states, the events, the actions and the transition table. The table
(:data:`RFC6733_TABLE`) is written in the RFC's own words so the two can be read side by
side; the few rows the RFC leaves open and this gateway needs are kept apart in
:data:`LOCAL_TABLE`, each with the reason. Nothing here does I/O, reads a clock, imports
Twisted or the codec: time comes in as ``now`` (seconds, e.g. ``reactor.seconds()``).

One machine per peer (located by Origin-Host, §5.6.1). A peer has up to two transport
connections: the one this node initiated (I, :attr:`Conn.INITIATOR`) and the one the peer
initiated (R, :attr:`Conn.RESPONDER`); events and actions carry the RFC's I-/R- prefixes.

How the executor drives this machine and the watchdog: see :mod:`gateway.peer`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from gateway.peer.election import identity_octets, wins_election

DIAMETER_SUCCESS = 2001  # RFC 6733 §7.1.2

# Command codes the executor needs to classify received messages (RFC 6733 §3.1).
CAPABILITIES_EXCHANGE = 257
DEVICE_WATCHDOG = 280
DISCONNECT_PEER = 282

_TIMER_SLACK = 1e-3  # a timer that fires a millisecond early still counts (float clocks)


class PeerStateError(Exception):
    """A local event the current state cannot take (e.g. Send-Message while Closed)."""


class PeerState(enum.Enum):
    """RFC 6733 §5.6 states. Closed, I-Open and R-Open are stable; the rest intermediate."""

    CLOSED = "Closed"
    WAIT_CONN_ACK = "Wait-Conn-Ack"
    WAIT_I_CEA = "Wait-I-CEA"
    WAIT_CONN_ACK_ELECT = "Wait-Conn-Ack/Elect"
    WAIT_RETURNS = "Wait-Returns"
    R_OPEN = "R-Open"
    I_OPEN = "I-Open"
    CLOSING = "Closing"


OPEN_STATES = frozenset({PeerState.I_OPEN, PeerState.R_OPEN})


class Conn(enum.Enum):
    """Which of the peer's two transport connections an event or action concerns."""

    INITIATOR = "I"  # the connection this node opened
    RESPONDER = "R"  # the connection the peer opened (accepted with its CER)


class PeerEvent(enum.Enum):
    """RFC 6733 §5.6.2 events with their I-/R- prefixes (§5.6).

    Local: Start, Stop, Send-Message, Timeout (prefer :meth:`PeerStateMachine.on_timer`).
    Transport: I-Rcv-Conn-Ack / I-Rcv-Conn-Nack (connect succeeded / failed),
    I-/R-Peer-Disc (connectionLost), R-Conn-CER (a new connection whose CER names this
    peer, passed on by the incoming-connection logic of §5.6.1 after it validated the CER).
    Messages: see :func:`message_event`. Win-Election is raised internally by Elect.
    """

    START = "Start"
    STOP = "Stop"
    TIMEOUT = "Timeout"
    SEND_MESSAGE = "Send-Message"
    WIN_ELECTION = "Win-Election"
    R_CONN_CER = "R-Conn-CER"
    I_RCV_CONN_ACK = "I-Rcv-Conn-Ack"
    I_RCV_CONN_NACK = "I-Rcv-Conn-Nack"
    I_RCV_CEA = "I-Rcv-CEA"
    I_RCV_CEA_FAILURE = "I-Rcv-CEA-Failure"  # local: a CEA whose Result-Code is not 2xxx
    I_RCV_NON_CEA = "I-Rcv-Non-CEA"
    I_RCV_CER = "I-Rcv-CER"
    R_RCV_CER = "R-Rcv-CER"
    R_RCV_CEA = "R-Rcv-CEA"
    I_RCV_MESSAGE = "I-Rcv-Message"
    R_RCV_MESSAGE = "R-Rcv-Message"
    I_RCV_DWR = "I-Rcv-DWR"
    R_RCV_DWR = "R-Rcv-DWR"
    I_RCV_DWA = "I-Rcv-DWA"
    R_RCV_DWA = "R-Rcv-DWA"
    I_RCV_DPR = "I-Rcv-DPR"
    R_RCV_DPR = "R-Rcv-DPR"
    I_RCV_DPA = "I-Rcv-DPA"
    R_RCV_DPA = "R-Rcv-DPA"
    I_PEER_DISC = "I-Peer-Disc"
    R_PEER_DISC = "R-Peer-Disc"

    @property
    def conn(self) -> Conn | None:
        """The connection named by the I-/R- prefix, or None for local events."""
        return _prefix(self.value)[0]

    @property
    def is_received_message(self) -> bool:
        """True for the events that stand for a Diameter message received from the peer."""
        return "-Rcv-" in self.value and "Conn" not in self.value


class Action(enum.Enum):
    """RFC 6733 §5.6.3 actions; :attr:`PeerAction.conn` carries the I-/R- prefix.

    The comment on each member says what the executor does. Process-CER/-CEA/-DWR/-DWA
    and Process act on the connection the event came in on; Cleanup, Error, Elect and
    Schedule-Reconnect have no connection.
    """

    SND_CONN_REQ = "Snd-Conn-Req"  # connect to the peer; report I-Rcv-Conn-Ack / -Nack
    ACCEPT = "Accept"  # adopt the connection that carried this R-Conn-CER as R
    REJECT = "Reject"  # close the connection that carried this R-Conn-CER (not the current R)
    PROCESS_CER = "Process-CER"  # record the peer's capabilities from that CER
    SND_CER = "Snd-CER"  # send our CER on I
    SND_CEA = "Snd-CEA"  # answer the R-Conn-CER's CER (keep it till then) with result_code
    CLEANUP = "Cleanup"  # close all of the peer's connections and connect attempts
    ERROR = "Error"  # the same, caused by an error: log a warning with reason
    PROCESS_CEA = "Process-CEA"  # record the peer's capabilities from the CEA
    SND_DPR = "Snd-DPR"  # send a DPR with Disconnect-Cause cause
    SND_DPA = "Snd-DPA"  # answer the DPR with a DPA carrying result_code
    DISC = "Disc"  # close that connection (loseConnection) and free its resources
    ELECT = "Elect"  # informational: the §5.6.4 election was held; won says who won
    SND_MESSAGE = "Snd-Message"  # send the message the application asked to send
    SND_DWA = "Snd-DWA"  # answer the DWR with a DWA (2001)
    PROCESS_DWR = "Process-DWR"  # nothing more than the Snd-DWA that follows
    PROCESS_DWA = "Process-DWA"  # nothing more than feeding the watchdog
    PROCESS = "Process"  # hand the message to routing / the applications
    # Not in RFC 6733 §5.6.3:
    SCHEDULE_RECONNECT = "Schedule-Reconnect"  # log it: on_timer will Start after delay
    DISCARD = "Discard"  # no row for this message here: drop it, log a warning with reason


class DisconnectCause(enum.IntEnum):
    """Disconnect-Cause AVP (273) values, RFC 6733 §5.4.3."""

    REBOOTING = 0  # the receiver MAY reconnect
    BUSY = 1  # SHOULD NOT reconnect (we do, after busy_hold)
    DO_NOT_WANT_TO_TALK_TO_YOU = 2  # SHOULD NOT reconnect (we do, after do_not_talk_hold)


@dataclass(frozen=True, slots=True)
class PeerAction:
    """One instruction for the executor: an :class:`Action` on a connection, with its data."""

    action: Action
    conn: Conn | None = None
    result_code: int | None = None  # SND_CEA, SND_DPA
    cause: DisconnectCause | None = None  # SND_DPR; SCHEDULE_RECONNECT (peer's cause)
    delay: float | None = None  # SCHEDULE_RECONNECT
    won: bool | None = None  # ELECT
    reason: str = ""  # DISCARD, ERROR: text for the log

    @property
    def label(self) -> str:
        """The action as the RFC's table writes it, e.g. ``R-Snd-CEA``, ``Process``."""
        if self.conn is None or self.action in _ON_EVENT_CONN:
            return self.action.value
        return f"{self.conn.value}-{self.action.value}"


def _prefix(text: str) -> tuple[Conn | None, str]:
    if text.startswith("I-"):
        return Conn.INITIATOR, text[2:]
    if text.startswith("R-"):
        return Conn.RESPONDER, text[2:]
    return None, text


_S = PeerState
_E = PeerEvent
Row = tuple[tuple[str, ...], PeerState]

# RFC 6733 §5.6, the table as printed (state -> event -> (actions, next state)).
RFC6733_TABLE: dict[PeerState, dict[PeerEvent, Row]] = {
    _S.CLOSED: {
        _E.START: (("I-Snd-Conn-Req",), _S.WAIT_CONN_ACK),
        _E.R_CONN_CER: (("R-Accept", "Process-CER", "R-Snd-CEA"), _S.R_OPEN),
    },
    _S.WAIT_CONN_ACK: {
        _E.I_RCV_CONN_ACK: (("I-Snd-CER",), _S.WAIT_I_CEA),
        _E.I_RCV_CONN_NACK: (("Cleanup",), _S.CLOSED),
        _E.R_CONN_CER: (("R-Accept", "Process-CER"), _S.WAIT_CONN_ACK_ELECT),
        _E.TIMEOUT: (("Error",), _S.CLOSED),
    },
    _S.WAIT_I_CEA: {
        _E.I_RCV_CEA: (("Process-CEA",), _S.I_OPEN),
        _E.R_CONN_CER: (("R-Accept", "Process-CER", "Elect"), _S.WAIT_RETURNS),
        _E.I_PEER_DISC: (("I-Disc",), _S.CLOSED),
        _E.I_RCV_NON_CEA: (("Error",), _S.CLOSED),
        _E.TIMEOUT: (("Error",), _S.CLOSED),
    },
    _S.WAIT_CONN_ACK_ELECT: {
        _E.I_RCV_CONN_ACK: (("I-Snd-CER", "Elect"), _S.WAIT_RETURNS),
        _E.I_RCV_CONN_NACK: (("R-Snd-CEA",), _S.R_OPEN),
        _E.R_PEER_DISC: (("R-Disc",), _S.WAIT_CONN_ACK),
        _E.R_CONN_CER: (("R-Reject",), _S.WAIT_CONN_ACK_ELECT),
        _E.TIMEOUT: (("Error",), _S.CLOSED),
    },
    _S.WAIT_RETURNS: {
        _E.WIN_ELECTION: (("I-Disc", "R-Snd-CEA"), _S.R_OPEN),
        _E.I_PEER_DISC: (("I-Disc", "R-Snd-CEA"), _S.R_OPEN),
        _E.I_RCV_CEA: (("R-Disc",), _S.I_OPEN),
        _E.R_PEER_DISC: (("R-Disc",), _S.WAIT_I_CEA),
        _E.R_CONN_CER: (("R-Reject",), _S.WAIT_RETURNS),
        _E.TIMEOUT: (("Error",), _S.CLOSED),
    },
    _S.R_OPEN: {
        _E.SEND_MESSAGE: (("R-Snd-Message",), _S.R_OPEN),
        _E.R_RCV_MESSAGE: (("Process",), _S.R_OPEN),
        _E.R_RCV_DWR: (("Process-DWR", "R-Snd-DWA"), _S.R_OPEN),
        _E.R_RCV_DWA: (("Process-DWA",), _S.R_OPEN),
        _E.R_CONN_CER: (("R-Reject",), _S.R_OPEN),
        _E.STOP: (("R-Snd-DPR",), _S.CLOSING),
        _E.R_RCV_DPR: (("R-Snd-DPA",), _S.CLOSING),
        _E.R_PEER_DISC: (("R-Disc",), _S.CLOSED),
    },
    _S.I_OPEN: {
        _E.SEND_MESSAGE: (("I-Snd-Message",), _S.I_OPEN),
        _E.I_RCV_MESSAGE: (("Process",), _S.I_OPEN),
        _E.I_RCV_DWR: (("Process-DWR", "I-Snd-DWA"), _S.I_OPEN),
        _E.I_RCV_DWA: (("Process-DWA",), _S.I_OPEN),
        _E.R_CONN_CER: (("R-Reject",), _S.I_OPEN),
        _E.STOP: (("I-Snd-DPR",), _S.CLOSING),
        _E.I_RCV_DPR: (("I-Snd-DPA",), _S.CLOSING),
        _E.I_PEER_DISC: (("I-Disc",), _S.CLOSED),
    },
    _S.CLOSING: {
        _E.I_RCV_DPA: (("I-Disc",), _S.CLOSED),
        _E.R_RCV_DPA: (("R-Disc",), _S.CLOSED),
        _E.TIMEOUT: (("Error",), _S.CLOSED),
        _E.I_PEER_DISC: (("I-Disc",), _S.CLOSED),
        _E.R_PEER_DISC: (("R-Disc",), _S.CLOSED),
    },
}

# Rows the RFC leaves open, added by this gateway. Anything in neither table is ignored
# (a stale timer or disconnect, a Start while already connecting) or, for a received
# message, answered with DISCARD.
LOCAL_TABLE: dict[PeerState, dict[PeerEvent, Row]] = {
    # Stop while Closed cancels the planned reconnect; while connecting it gives up.
    _S.CLOSED: {_E.STOP: ((), _S.CLOSED)},
    _S.WAIT_CONN_ACK: {_E.STOP: (("Cleanup",), _S.CLOSED)},
    _S.WAIT_I_CEA: {
        _E.STOP: (("Cleanup",), _S.CLOSED),
        # RFC 6733 §5.3: a CEA with a failure Result-Code (e.g. 5010) ends the exchange.
        _E.I_RCV_CEA_FAILURE: (("Error",), _S.CLOSED),
    },
    _S.WAIT_CONN_ACK_ELECT: {_E.STOP: (("Cleanup",), _S.CLOSED)},
    _S.WAIT_RETURNS: {
        _E.STOP: (("Cleanup",), _S.CLOSED),
        # We lost the election and the peer refused our CER: the winner closes R anyway.
        _E.I_RCV_CEA_FAILURE: (("Error",), _S.CLOSED),
    },
    # RFC 6733 §2.1.1: messages may still be in flight around a DPR/DPA exchange; answers
    # to our pending requests must still reach their requests. A DPR crossing ours is
    # answered.
    _S.CLOSING: {
        _E.I_RCV_MESSAGE: (("Process",), _S.CLOSING),
        _E.R_RCV_MESSAGE: (("Process",), _S.CLOSING),
        _E.I_RCV_DWR: (("Process-DWR", "I-Snd-DWA"), _S.CLOSING),
        _E.R_RCV_DWR: (("Process-DWR", "R-Snd-DWA"), _S.CLOSING),
        _E.I_RCV_DWA: (("Process-DWA",), _S.CLOSING),
        _E.R_RCV_DWA: (("Process-DWA",), _S.CLOSING),
        _E.I_RCV_DPR: (("I-Snd-DPA",), _S.CLOSING),
        _E.R_RCV_DPR: (("R-Snd-DPA",), _S.CLOSING),
    },
}


@dataclass(frozen=True, slots=True)
class Transition:
    """A parsed table row: (connection, action) pairs and the next state."""

    actions: tuple[tuple[Conn | None, Action], ...]
    new_state: PeerState


def _parse(
    table: dict[PeerState, dict[PeerEvent, Row]],
) -> dict[tuple[PeerState, PeerEvent], Transition]:
    parsed: dict[tuple[PeerState, PeerEvent], Transition] = {}
    for state, rows in table.items():
        for event, (labels, new_state) in rows.items():
            actions = []
            for label in labels:
                conn, name = _prefix(label)
                actions.append((conn, Action(name)))  # a typo fails at import time
            parsed[(state, event)] = Transition(tuple(actions), new_state)
    return parsed


_RFC = _parse(RFC6733_TABLE)
_LOCAL = _parse(LOCAL_TABLE)
assert not _RFC.keys() & _LOCAL.keys(), "LOCAL_TABLE must only add rows"
TRANSITIONS: dict[tuple[PeerState, PeerEvent], Transition] = {**_RFC, **_LOCAL}

# Actions without a prefix act on the connection of the event that caused them.
_ON_EVENT_CONN = frozenset(
    {Action.PROCESS, Action.PROCESS_DWR, Action.PROCESS_DWA, Action.PROCESS_CEA, Action.PROCESS_CER}
)


def message_event(conn: Conn, command_code: int, is_request: bool) -> PeerEvent:
    """The event for a message received on an established connection ``conn``.

    A CER on a *new* connection is not an event of this machine: the incoming-connection
    logic (RFC 6733 §5.6.1) validates it and feeds R-Conn-CER. In Wait-I-CEA the machine
    itself turns anything but a CEA into I-Rcv-Non-CEA.
    """
    kind = {
        (CAPABILITIES_EXCHANGE, True): "CER",
        (CAPABILITIES_EXCHANGE, False): "CEA",
        (DEVICE_WATCHDOG, True): "DWR",
        (DEVICE_WATCHDOG, False): "DWA",
        (DISCONNECT_PEER, True): "DPR",
        (DISCONNECT_PEER, False): "DPA",
    }.get((command_code, is_request), "Message")
    return PeerEvent(f"{conn.value}-Rcv-{kind}")


class PeerStateMachine:
    """RFC 6733 §5.6 peer state machine for one peer, with reconnect policy (§2.1, §5.4.3).

    ``local_host`` / ``peer_host``: the two Origin-Hosts (DiameterIdentity), for the
    election. ``initiates``: this node opens connections to the peer (it has an address);
    only then is a reconnect ever scheduled. ``tc``: the Tc timer (§2.1, 30 s): reconnect
    attempts back off from ``reconnect_initial`` doubling up to ``tc``; the backoff resets
    when the peer reaches I-Open/R-Open (``reconnect_initial=tc`` gives the plain periodic
    Tc of the RFC). ``timeout``: how long the intermediate states wait before Timeout.
    ``busy_hold`` / ``do_not_talk_hold``: how long a DPR with Disconnect-Cause BUSY /
    DO_NOT_WANT_TO_TALK_TO_YOU keeps us from reconnecting (``math.inf``: until Start).
    """

    def __init__(
        self,
        local_host: str | bytes,
        peer_host: str | bytes,
        *,
        initiates: bool = True,
        tc: float = 30.0,
        reconnect_initial: float = 1.0,
        timeout: float = 10.0,
        busy_hold: float = 300.0,
        do_not_talk_hold: float = 3600.0,
    ) -> None:
        if identity_octets(local_host) == identity_octets(peer_host):
            raise ValueError(
                f"peer {peer_host!r}: same Origin-Host as this node; give the peer its own "
                "DiameterIdentity (RFC 6733 §5.6.4 election needs them to differ)"
            )
        if not 0 < reconnect_initial <= tc:
            raise ValueError(f"reconnect_initial {reconnect_initial} s must be in (0, tc={tc}] s")
        self.local_host = local_host
        self.peer_host = peer_host
        self.initiates = initiates
        self.tc = tc
        self.reconnect_initial = reconnect_initial
        self.timeout = timeout
        self.busy_hold = busy_hold
        self.do_not_talk_hold = do_not_talk_hold
        self.state = PeerState.CLOSED
        self._deadline: float | None = None
        self._failures = 0  # reconnects scheduled since the peer was last open
        self._stopped = False  # Stop was the last local command: never reconnect
        self._stop_cause = DisconnectCause.REBOOTING
        self._peer_cause: DisconnectCause | None = None  # from the peer's DPR

    # -- what the executor reads -------------------------------------------------------

    @property
    def next_deadline(self) -> float | None:
        """When to call :meth:`on_timer` (absolute, same clock as ``now``), or None."""
        return self._deadline

    @property
    def is_open(self) -> bool:
        """True in I-Open / R-Open: requests may be routed to this peer."""
        return self.state in OPEN_STATES

    @property
    def open_conn(self) -> Conn | None:
        """The connection messages go out on: I in I-Open, R in R-Open, else None."""
        return {PeerState.I_OPEN: Conn.INITIATOR, PeerState.R_OPEN: Conn.RESPONDER}.get(self.state)

    # -- what the executor calls -------------------------------------------------------

    def handle(
        self,
        event: PeerEvent,
        now: float,
        *,
        result_code: int | None = None,
        disconnect_cause: int | None = None,
    ) -> list[PeerAction]:
        """Feed one event; return the actions to execute, in order.

        ``result_code``: with I-Rcv-CEA, the CEA's Result-Code (a non-2xxx value makes it
        I-Rcv-CEA-Failure). ``disconnect_cause``: with Stop, the cause our DPR carries
        (default REBOOTING); with I-/R-Rcv-DPR, the peer's cause (decides the reconnect).
        Raises :class:`PeerStateError` for Send-Message outside I-Open/R-Open.
        """
        if event is PeerEvent.SEND_MESSAGE and not self.is_open:
            raise PeerStateError(
                f"peer {self.peer_host!r}: cannot send in state {self.state.value}; "
                "route only to peers whose machine is_open"
            )
        if event is PeerEvent.START:
            self._stopped = False
        elif event is PeerEvent.STOP:
            self._stopped = True
            self._stop_cause = DisconnectCause(disconnect_cause or 0)
        elif event.value.endswith("-Rcv-DPR") and (self.state, event) in TRANSITIONS:
            self._peer_cause = _cause(disconnect_cause)
        if event is PeerEvent.I_RCV_CEA and result_code is not None and result_code // 1000 != 2:
            event = PeerEvent.I_RCV_CEA_FAILURE
        if (
            self.state is PeerState.WAIT_I_CEA
            and event.conn is Conn.INITIATOR
            and event.is_received_message
            and event not in (PeerEvent.I_RCV_CEA, PeerEvent.I_RCV_CEA_FAILURE)
        ):
            event = PeerEvent.I_RCV_NON_CEA
        return self._apply(event, now)

    def on_timer(self, now: float) -> list[PeerAction]:
        """The executor's timer fired: Timeout in an intermediate state, Start in Closed.

        Returns ``[]`` if nothing is due (an early or stale timer): re-arm and carry on.
        """
        if self._deadline is None or now < self._deadline - _TIMER_SLACK:
            return []
        self._deadline = None
        if self.state is PeerState.CLOSED:
            return self.handle(PeerEvent.START, now)  # the Tc reconnect, RFC 6733 §2.1
        return self.handle(PeerEvent.TIMEOUT, now)

    # -- the machine itself ------------------------------------------------------------

    def _apply(self, event: PeerEvent, now: float) -> list[PeerAction]:
        transition = TRANSITIONS.get((self.state, event))
        where = f"{event.value} in {self.state.value}"
        if transition is None:
            if event.is_received_message:
                return [PeerAction(Action.DISCARD, event.conn, reason=where)]
            return []  # stale timer or disconnect, Start while already started, ...
        actions: list[PeerAction] = []
        won = False
        for conn, action in transition.actions:
            if conn is None and action in _ON_EVENT_CONN:
                conn = event.conn
            if action is Action.ELECT:
                won = wins_election(self.local_host, self.peer_host)  # RFC 6733 §5.6.4
                actions.append(PeerAction(action, won=won))
            elif action in (Action.SND_CEA, Action.SND_DPA):
                actions.append(PeerAction(action, conn, result_code=DIAMETER_SUCCESS))
            elif action is Action.SND_DPR:
                actions.append(PeerAction(action, conn, cause=self._stop_cause))
            elif action in (Action.ERROR, Action.CLEANUP):
                actions.append(PeerAction(action, conn, reason=where))
            else:
                actions.append(PeerAction(action, conn))
        self._enter(transition.new_state, now, actions)
        if won:
            # Elect issues Win-Election locally (RFC 6733 §5.6.4); handle it in this turn.
            actions.extend(self._apply(PeerEvent.WIN_ELECTION, now))
        return actions

    def _enter(self, new_state: PeerState, now: float, actions: list[PeerAction]) -> None:
        old_state, self.state = self.state, new_state
        if new_state in OPEN_STATES:
            self._deadline = None
            self._failures = 0
            self._peer_cause = None
        elif new_state is PeerState.CLOSED:
            self._deadline = None
            if old_state is not PeerState.CLOSED:
                self._schedule_reconnect(now, actions)
        elif new_state is not old_state:
            self._deadline = now + self.timeout

    def _schedule_reconnect(self, now: float, actions: list[PeerAction]) -> None:
        cause, self._peer_cause = self._peer_cause, None
        if self._stopped or not self.initiates:
            return
        # RFC 6733 §2.1: retry periodically with Tc; back off up to it.
        delay = min(self.tc, self.reconnect_initial * 2 ** min(self._failures, 32))
        self._failures += 1
        # RFC 6733 §5.4.3: BUSY and DO_NOT_WANT_TO_TALK_TO_YOU say "do not reconnect".
        if cause is DisconnectCause.BUSY:
            delay = max(delay, self.busy_hold)
        elif cause is DisconnectCause.DO_NOT_WANT_TO_TALK_TO_YOU:
            delay = max(delay, self.do_not_talk_hold)
        if math.isinf(delay):
            return
        self._deadline = now + delay
        actions.append(PeerAction(Action.SCHEDULE_RECONNECT, delay=delay, cause=cause))


def _cause(value: int | None) -> DisconnectCause:
    """A received Disconnect-Cause; absent or unknown values count as REBOOTING."""
    try:
        return DisconnectCause(value if value is not None else 0)
    except ValueError:
        return DisconnectCause.REBOOTING
