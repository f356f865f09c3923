"""The RFC 6733 §5.6 peer state machine, row by row and in scenarios, with a fake clock."""

from __future__ import annotations

import math

import pytest

from gateway.peer.election import wins_election
from gateway.peer.state import (
    LOCAL_TABLE,
    RFC6733_TABLE,
    Action,
    Conn,
    DisconnectCause,
    PeerEvent,
    PeerState,
    PeerStateError,
    PeerStateMachine,
    message_event,
)

LOSER = "aaa.partner.net"  # sorts before PEER: loses every election
WINNER = "zzz.partner.net"  # sorts after PEER: wins every election
PEER = "hss.primary.net"


class FakeClock:
    """Time that moves only when the test says so (like twisted.internet.task.Clock)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def seconds(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def labels(actions):
    return [a.label for a in actions]


def without_reconnect(actions):
    return [a.label for a in actions if a.action is not Action.SCHEDULE_RECONNECT]


# RFC 6733 §5.6, transcribed independently of the module: state, event, actions, next state.
RFC_6733_TABLE_TEXT = """
Closed               Start            I-Snd-Conn-Req                  Wait-Conn-Ack
Closed               R-Conn-CER       R-Accept,Process-CER,R-Snd-CEA  R-Open
Wait-Conn-Ack        I-Rcv-Conn-Ack   I-Snd-CER                       Wait-I-CEA
Wait-Conn-Ack        I-Rcv-Conn-Nack  Cleanup                         Closed
Wait-Conn-Ack        R-Conn-CER       R-Accept,Process-CER            Wait-Conn-Ack/Elect
Wait-Conn-Ack        Timeout          Error                           Closed
Wait-I-CEA           I-Rcv-CEA        Process-CEA                     I-Open
Wait-I-CEA           R-Conn-CER       R-Accept,Process-CER,Elect      Wait-Returns
Wait-I-CEA           I-Peer-Disc      I-Disc                          Closed
Wait-I-CEA           I-Rcv-Non-CEA    Error                           Closed
Wait-I-CEA           Timeout          Error                           Closed
Wait-Conn-Ack/Elect  I-Rcv-Conn-Ack   I-Snd-CER,Elect                 Wait-Returns
Wait-Conn-Ack/Elect  I-Rcv-Conn-Nack  R-Snd-CEA                       R-Open
Wait-Conn-Ack/Elect  R-Peer-Disc      R-Disc                          Wait-Conn-Ack
Wait-Conn-Ack/Elect  R-Conn-CER       R-Reject                        Wait-Conn-Ack/Elect
Wait-Conn-Ack/Elect  Timeout          Error                           Closed
Wait-Returns         Win-Election     I-Disc,R-Snd-CEA                R-Open
Wait-Returns         I-Peer-Disc      I-Disc,R-Snd-CEA                R-Open
Wait-Returns         I-Rcv-CEA        R-Disc                          I-Open
Wait-Returns         R-Peer-Disc      R-Disc                          Wait-I-CEA
Wait-Returns         R-Conn-CER       R-Reject                        Wait-Returns
Wait-Returns         Timeout          Error                           Closed
R-Open               Send-Message     R-Snd-Message                   R-Open
R-Open               R-Rcv-Message    Process                         R-Open
R-Open               R-Rcv-DWR        Process-DWR,R-Snd-DWA           R-Open
R-Open               R-Rcv-DWA        Process-DWA                     R-Open
R-Open               R-Conn-CER       R-Reject                        R-Open
R-Open               Stop             R-Snd-DPR                       Closing
R-Open               R-Rcv-DPR        R-Snd-DPA                       Closing
R-Open               R-Peer-Disc      R-Disc                          Closed
I-Open               Send-Message     I-Snd-Message                   I-Open
I-Open               I-Rcv-Message    Process                         I-Open
I-Open               I-Rcv-DWR        Process-DWR,I-Snd-DWA           I-Open
I-Open               I-Rcv-DWA        Process-DWA                     I-Open
I-Open               R-Conn-CER       R-Reject                        I-Open
I-Open               Stop             I-Snd-DPR                       Closing
I-Open               I-Rcv-DPR        I-Snd-DPA                       Closing
I-Open               I-Peer-Disc      I-Disc                          Closed
Closing              I-Rcv-DPA        I-Disc                          Closed
Closing              R-Rcv-DPA        R-Disc                          Closed
Closing              Timeout          Error                           Closed
Closing              I-Peer-Disc      I-Disc                          Closed
Closing              R-Peer-Disc      R-Disc                          Closed
"""

# Our additions where the RFC is silent (state, event, actions, next state).
LOCAL_TABLE_TEXT = """
Closed               Stop               -                     Closed
Wait-Conn-Ack        Stop               Cleanup               Closed
Wait-I-CEA           Stop               Cleanup               Closed
Wait-I-CEA           I-Rcv-CEA-Failure  Error                 Closed
Wait-Conn-Ack/Elect  Stop               Cleanup               Closed
Wait-Returns         Stop               Cleanup               Closed
Wait-Returns         I-Rcv-CEA-Failure  Error                 Closed
Closing              I-Rcv-Message      Process               Closing
Closing              R-Rcv-Message      Process               Closing
Closing              I-Rcv-DWR          Process-DWR,I-Snd-DWA Closing
Closing              R-Rcv-DWR          Process-DWR,R-Snd-DWA Closing
Closing              I-Rcv-DWA          Process-DWA           Closing
Closing              R-Rcv-DWA          Process-DWA           Closing
Closing              I-Rcv-DPR          I-Snd-DPA             Closing
Closing              R-Rcv-DPR          R-Snd-DPA             Closing
"""


def parse_rows(text):
    rows = []
    for line in text.strip().splitlines():
        state, event, actions, new_state = line.split()
        rows.append((state, event, [] if actions == "-" else actions.split(","), new_state))
    return rows


RFC_ROWS = parse_rows(RFC_6733_TABLE_TEXT)
LOCAL_ROWS = parse_rows(LOCAL_TABLE_TEXT)


def row_id(row):
    return f"{row[0]}|{row[1]}"


def test_module_table_has_exactly_the_rfc_rows():
    in_module = {(s.value, e.value) for s, rows in RFC6733_TABLE.items() for e in rows}
    assert in_module == {(r[0], r[1]) for r in RFC_ROWS}
    assert len(RFC_ROWS) == 43


def test_local_table_has_exactly_the_documented_rows():
    in_module = {(s.value, e.value) for s, rows in LOCAL_TABLE.items() for e in rows}
    assert in_module == {(r[0], r[1]) for r in LOCAL_ROWS}


@pytest.mark.parametrize("row", RFC_ROWS + LOCAL_ROWS, ids=row_id)
def test_every_row(row):
    state, event, expected_actions, new_state = row
    # The local node loses the election, so Elect rows show only the RFC's own actions.
    machine = PeerStateMachine(LOSER, PEER)
    machine.state = PeerState(state)
    actions = machine.handle(PeerEvent(event), 100.0)
    assert without_reconnect(actions) == expected_actions
    assert machine.state is PeerState(new_state)


@pytest.mark.parametrize("row", [r for r in RFC_ROWS if r[3] == "Closed"], ids=row_id)
def test_every_row_into_closed_schedules_reconnect_for_initiated_peers(row):
    state, event, _, _ = row
    machine = PeerStateMachine(LOSER, PEER, initiates=True)
    machine.state = PeerState(state)
    actions = machine.handle(PeerEvent(event), 100.0)
    assert actions[-1].action is Action.SCHEDULE_RECONNECT
    assert machine.next_deadline == 100.0 + actions[-1].delay
    responder_only = PeerStateMachine(LOSER, PEER, initiates=False)
    responder_only.state = PeerState(state)
    assert Action.SCHEDULE_RECONNECT not in [
        a.action for a in responder_only.handle(PeerEvent(event), 100.0)
    ]
    assert responder_only.next_deadline is None


def open_as_initiator(machine, clock):
    assert labels(machine.handle(PeerEvent.START, clock.now)) == ["I-Snd-Conn-Req"]
    assert labels(machine.handle(PeerEvent.I_RCV_CONN_ACK, clock.now)) == ["I-Snd-CER"]
    actions = machine.handle(PeerEvent.I_RCV_CEA, clock.now, result_code=2001)
    assert labels(actions) == ["Process-CEA"]
    assert machine.state is PeerState.I_OPEN


def test_initiator_happy_path_and_open_state_traffic():
    clock = FakeClock()
    machine = PeerStateMachine(LOSER, PEER)
    open_as_initiator(machine, clock)
    assert machine.is_open and machine.open_conn is Conn.INITIATOR
    assert machine.next_deadline is None
    assert labels(machine.handle(PeerEvent.SEND_MESSAGE, clock.now)) == ["I-Snd-Message"]
    dwr = message_event(Conn.INITIATOR, 280, True)
    actions = machine.handle(dwr, clock.now)
    assert labels(actions) == ["Process-DWR", "I-Snd-DWA"]
    dwa = message_event(Conn.INITIATOR, 280, False)
    assert labels(machine.handle(dwa, clock.now)) == ["Process-DWA"]
    mar = message_event(Conn.INITIATOR, 303, True)
    actions = machine.handle(mar, clock.now)
    assert labels(actions) == ["Process"] and actions[0].conn is Conn.INITIATOR


def test_responder_accepts_cer_in_closed():
    machine = PeerStateMachine(LOSER, PEER, initiates=False)
    actions = machine.handle(PeerEvent.R_CONN_CER, 5.0)
    assert labels(actions) == ["R-Accept", "Process-CER", "R-Snd-CEA"]
    assert actions[-1].result_code == 2001
    assert [a.conn for a in actions] == [Conn.RESPONDER] * 3
    assert machine.state is PeerState.R_OPEN and machine.open_conn is Conn.RESPONDER
    # A second connection from the same peer is rejected, the first one stays.
    assert labels(machine.handle(PeerEvent.R_CONN_CER, 6.0)) == ["R-Reject"]
    assert machine.state is PeerState.R_OPEN


def test_simultaneous_open_local_wins_in_wait_i_cea():
    machine = PeerStateMachine(WINNER, PEER)
    machine.handle(PeerEvent.START, 0.0)
    machine.handle(PeerEvent.I_RCV_CONN_ACK, 0.1)
    actions = machine.handle(PeerEvent.R_CONN_CER, 0.2)
    # RFC 6733 §5.6.4: the winner closes the connection it initiated and answers on R.
    assert labels(actions) == ["R-Accept", "Process-CER", "Elect", "I-Disc", "R-Snd-CEA"]
    assert actions[2].won is True
    assert machine.state is PeerState.R_OPEN
    assert machine.next_deadline is None


def test_simultaneous_open_local_loses_in_wait_i_cea():
    machine = PeerStateMachine(LOSER, PEER)
    machine.handle(PeerEvent.START, 0.0)
    machine.handle(PeerEvent.I_RCV_CONN_ACK, 0.1)
    actions = machine.handle(PeerEvent.R_CONN_CER, 0.2)
    assert labels(actions) == ["R-Accept", "Process-CER", "Elect"]
    assert actions[2].won is False
    assert machine.state is PeerState.WAIT_RETURNS
    # The winner answers our CER on I; we drop the responder connection.
    assert labels(machine.handle(PeerEvent.I_RCV_CEA, 0.3, result_code=2001)) == ["R-Disc"]
    assert machine.state is PeerState.I_OPEN


@pytest.mark.parametrize(
    ("local", "expected", "state"),
    [
        (WINNER, ["I-Snd-CER", "Elect", "I-Disc", "R-Snd-CEA"], PeerState.R_OPEN),
        (LOSER, ["I-Snd-CER", "Elect"], PeerState.WAIT_RETURNS),
    ],
)
def test_election_in_wait_conn_ack_elect(local, expected, state):
    machine = PeerStateMachine(local, PEER)
    machine.handle(PeerEvent.START, 0.0)
    assert labels(machine.handle(PeerEvent.R_CONN_CER, 0.1)) == ["R-Accept", "Process-CER"]
    assert machine.state is PeerState.WAIT_CONN_ACK_ELECT
    assert labels(machine.handle(PeerEvent.I_RCV_CONN_ACK, 0.2)) == expected
    assert machine.state is state


def test_both_nodes_agree_on_the_surviving_connection():
    """Two machines wired back to back: conn1 = A's I = B's R, conn2 = B's I = A's R."""
    a = PeerStateMachine("gw.partner.net", "hss.primary.net")
    b = PeerStateMachine("hss.primary.net", "gw.partner.net")
    for node in (a, b):
        node.handle(PeerEvent.START, 0.0)
        node.handle(PeerEvent.I_RCV_CONN_ACK, 0.1)
    a_actions = a.handle(PeerEvent.R_CONN_CER, 0.2)  # B's CER on conn2
    b_actions = b.handle(PeerEvent.R_CONN_CER, 0.2)  # A's CER on conn1
    assert [x.won for x in a_actions if x.action is Action.ELECT] == [False]
    assert [x.won for x in b_actions if x.action is Action.ELECT] == [True]
    # B's R-Snd-CEA travels on conn1, which is A's initiator connection.
    assert "R-Snd-CEA" in labels(b_actions)
    assert labels(a.handle(PeerEvent.I_RCV_CEA, 0.3, result_code=2001)) == ["R-Disc"]
    assert (a.state, b.state) == (PeerState.I_OPEN, PeerState.R_OPEN)


def test_election_compares_octets_case_insensitively():
    assert wins_election("HSS.B.NET", "hss.a.net") is True
    assert wins_election("hss.a.net", "HSS.B.NET") is False
    # Plain octets would say 'a' (0x61) > 'B' (0x42); RFC 6733 §5.6.4 folds case first.
    assert wins_election("a.net", "B.net") is False
    assert wins_election(b"z.net", "y.net") is True


def test_same_origin_host_is_refused():
    with pytest.raises(ValueError, match="same Origin-Host"):
        PeerStateMachine("HSS.primary.net", "hss.primary.net")


def test_wait_returns_initiator_lost_falls_back_to_responder():
    machine = PeerStateMachine(LOSER, PEER)
    machine.state = PeerState.WAIT_RETURNS
    assert labels(machine.handle(PeerEvent.I_PEER_DISC, 1.0)) == ["I-Disc", "R-Snd-CEA"]
    assert machine.state is PeerState.R_OPEN


def test_peer_closes_without_dpr_goes_to_closed_and_reconnects_quietly():
    """Kamailio closes without DPR: no Error, just Closed and a Tc reconnect."""
    clock = FakeClock()
    machine = PeerStateMachine(LOSER, PEER)
    open_as_initiator(machine, clock)
    actions = machine.handle(PeerEvent.I_PEER_DISC, clock.advance(100))
    assert labels(actions) == ["I-Disc", "Schedule-Reconnect"]
    assert actions[1].delay == 1.0 and actions[1].cause is None
    assert machine.state is PeerState.CLOSED
    assert machine.next_deadline == clock.now + 1.0
    assert machine.on_timer(clock.advance(0.5)) == []  # early timer: nothing due
    assert labels(machine.on_timer(clock.advance(0.5))) == ["I-Snd-Conn-Req"]
    assert machine.state is PeerState.WAIT_CONN_ACK


def test_peer_that_connected_to_us_closes_without_dpr_no_reconnect():
    machine = PeerStateMachine(LOSER, PEER, initiates=False)
    machine.handle(PeerEvent.R_CONN_CER, 0.0)
    assert labels(machine.handle(PeerEvent.R_PEER_DISC, 1.0)) == ["R-Disc"]
    assert machine.state is PeerState.CLOSED and machine.next_deadline is None


@pytest.mark.parametrize(
    ("cause", "delay"),
    [
        (DisconnectCause.REBOOTING, 1.0),  # reconnect normally (backoff from 1 s)
        (DisconnectCause.BUSY, 300.0),  # reconnect later
        (DisconnectCause.DO_NOT_WANT_TO_TALK_TO_YOU, 3600.0),  # hold
        (7, 1.0),  # unknown value: treated as REBOOTING
    ],
)
def test_dpr_disconnect_cause_decides_the_reconnect(cause, delay):
    clock = FakeClock()
    machine = PeerStateMachine(LOSER, PEER, busy_hold=300.0, do_not_talk_hold=3600.0)
    open_as_initiator(machine, clock)
    dpr = message_event(Conn.INITIATOR, 282, True)
    actions = machine.handle(dpr, clock.now, disconnect_cause=int(cause))
    assert labels(actions) == ["I-Snd-DPA"] and actions[0].result_code == 2001
    assert machine.state is PeerState.CLOSING
    # RFC 6733 §5.4: the DPR sender closes the transport after our DPA.
    actions = machine.handle(PeerEvent.I_PEER_DISC, clock.advance(0.2))
    assert labels(actions) == ["I-Disc", "Schedule-Reconnect"]
    assert actions[1].delay == delay
    assert machine.on_timer(clock.advance(delay - 0.5)) == []
    assert labels(machine.on_timer(clock.advance(0.5))) == ["I-Snd-Conn-Req"]


def test_do_not_want_to_talk_hold_is_overridden_by_explicit_start():
    machine = PeerStateMachine(LOSER, PEER, do_not_talk_hold=3600.0)
    machine.state = PeerState.I_OPEN
    machine.handle(PeerEvent.I_RCV_DPR, 0.0, disconnect_cause=2)
    machine.handle(PeerEvent.I_PEER_DISC, 0.1)
    assert machine.next_deadline == pytest.approx(3600.1)
    # RFC 6733 §5.4: reconnect only with a reason (a message to forward): the app says Start.
    assert labels(machine.handle(PeerEvent.START, 60.0)) == ["I-Snd-Conn-Req"]


def test_infinite_hold_never_reconnects_by_itself():
    machine = PeerStateMachine(LOSER, PEER, do_not_talk_hold=math.inf)
    machine.state = PeerState.R_OPEN
    machine.handle(PeerEvent.R_RCV_DPR, 0.0, disconnect_cause=2)
    assert labels(machine.handle(PeerEvent.R_PEER_DISC, 0.1)) == ["R-Disc"]
    assert machine.next_deadline is None


def test_peer_never_closes_after_our_dpa_times_out():
    machine = PeerStateMachine(LOSER, PEER, timeout=10.0, busy_hold=300.0)
    machine.state = PeerState.R_OPEN
    machine.handle(PeerEvent.R_RCV_DPR, 0.0, disconnect_cause=1)
    assert machine.next_deadline == 10.0
    actions = machine.on_timer(10.0)
    assert labels(actions) == ["Error", "Schedule-Reconnect"]
    assert actions[1].delay == 300.0 and actions[1].cause is DisconnectCause.BUSY


def test_stop_sends_dpr_and_does_not_reconnect():
    clock = FakeClock()
    machine = PeerStateMachine(LOSER, PEER)
    open_as_initiator(machine, clock)
    actions = machine.handle(PeerEvent.STOP, clock.now, disconnect_cause=DisconnectCause.BUSY)
    assert labels(actions) == ["I-Snd-DPR"] and actions[0].cause is DisconnectCause.BUSY
    assert machine.next_deadline == clock.now + 10.0
    # An answer still in flight is processed while Closing (RFC 6733 §2.1.1).
    assert labels(machine.handle(PeerEvent.I_RCV_MESSAGE, clock.now)) == ["Process"]
    assert labels(machine.handle(PeerEvent.I_RCV_DPA, clock.advance(0.1))) == ["I-Disc"]
    assert machine.state is PeerState.CLOSED and machine.next_deadline is None


def test_stop_default_cause_is_rebooting():
    machine = PeerStateMachine(LOSER, PEER)
    machine.state = PeerState.R_OPEN
    assert machine.handle(PeerEvent.STOP, 0.0)[0].cause is DisconnectCause.REBOOTING


def test_stop_while_closed_cancels_the_planned_reconnect():
    machine = PeerStateMachine(LOSER, PEER)
    machine.handle(PeerEvent.START, 0.0)
    machine.handle(PeerEvent.I_RCV_CONN_NACK, 0.1)
    assert machine.next_deadline == pytest.approx(1.1)
    assert machine.handle(PeerEvent.STOP, 0.2) == []
    assert machine.next_deadline is None
    assert machine.on_timer(2.0) == []


def test_reconnect_backs_off_to_tc_and_resets_when_open():
    clock = FakeClock()
    machine = PeerStateMachine(LOSER, PEER, tc=30.0, reconnect_initial=1.0)
    machine.handle(PeerEvent.START, clock.now)
    delays = []
    for _ in range(7):
        actions = machine.handle(PeerEvent.I_RCV_CONN_NACK, clock.now)
        assert labels(actions) == ["Cleanup", "Schedule-Reconnect"]
        delays.append(actions[1].delay)
        assert labels(machine.on_timer(clock.advance(actions[1].delay))) == ["I-Snd-Conn-Req"]
    assert delays == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    machine.handle(PeerEvent.I_RCV_CONN_ACK, clock.now)
    machine.handle(PeerEvent.I_RCV_CEA, clock.now, result_code=2001)
    actions = machine.handle(PeerEvent.I_PEER_DISC, clock.now)
    assert actions[-1].delay == 1.0


def test_plain_periodic_tc_when_reconnect_initial_is_tc():
    machine = PeerStateMachine(LOSER, PEER, tc=30.0, reconnect_initial=30.0)
    machine.handle(PeerEvent.START, 0.0)
    assert machine.handle(PeerEvent.I_RCV_CONN_NACK, 0.0)[-1].delay == 30.0


def test_timeout_only_when_due():
    clock = FakeClock()
    machine = PeerStateMachine(LOSER, PEER, timeout=10.0)
    machine.handle(PeerEvent.START, clock.now)
    assert machine.next_deadline == clock.now + 10.0
    assert machine.on_timer(clock.advance(5.0)) == []
    assert machine.state is PeerState.WAIT_CONN_ACK
    actions = machine.on_timer(clock.advance(5.0))
    assert labels(actions) == ["Error", "Schedule-Reconnect"]
    assert "Timeout in Wait-Conn-Ack" in actions[0].reason
    assert machine.state is PeerState.CLOSED


def test_wait_i_cea_any_other_message_is_an_error():
    machine = PeerStateMachine(LOSER, PEER)
    machine.state = PeerState.WAIT_I_CEA
    actions = machine.handle(message_event(Conn.INITIATOR, 303, False), 0.0)
    assert without_reconnect(actions) == ["Error"]
    assert "I-Rcv-Non-CEA" in actions[0].reason
    assert machine.state is PeerState.CLOSED


def test_cea_with_failure_result_code_closes():
    machine = PeerStateMachine(LOSER, PEER)
    machine.state = PeerState.WAIT_I_CEA
    actions = machine.handle(PeerEvent.I_RCV_CEA, 0.0, result_code=5010)
    assert without_reconnect(actions) == ["Error"]
    assert machine.state is PeerState.CLOSED


@pytest.mark.parametrize(
    "event",
    [PeerEvent.R_RCV_CEA, PeerEvent.I_RCV_CER, PeerEvent.I_RCV_DPA, PeerEvent.R_RCV_MESSAGE],
)
def test_unexpected_message_in_i_open_is_discarded_not_fatal(event):
    machine = PeerStateMachine(LOSER, PEER)
    machine.state = PeerState.I_OPEN
    actions = machine.handle(event, 0.0)
    assert [a.action for a in actions] == [Action.DISCARD]
    assert actions[0].conn is event.conn
    assert event.value in actions[0].reason and "I-Open" in actions[0].reason
    assert machine.state is PeerState.I_OPEN


@pytest.mark.parametrize(
    ("state", "event"),
    [
        (PeerState.I_OPEN, PeerEvent.R_PEER_DISC),  # the R we dropped after the election
        (PeerState.R_OPEN, PeerEvent.I_PEER_DISC),  # the I the winner closed
        (PeerState.I_OPEN, PeerEvent.TIMEOUT),  # a stale timer
        (PeerState.R_OPEN, PeerEvent.START),
        (PeerState.CLOSED, PeerEvent.I_PEER_DISC),
        (PeerState.CLOSING, PeerEvent.STOP),
    ],
)
def test_stale_events_are_ignored(state, event):
    machine = PeerStateMachine(LOSER, PEER)
    machine.state = state
    assert machine.handle(event, 0.0) == []
    assert machine.state is state


def test_send_message_outside_open_states_is_refused():
    machine = PeerStateMachine(LOSER, PEER)
    with pytest.raises(PeerStateError, match="Closed"):
        machine.handle(PeerEvent.SEND_MESSAGE, 0.0)


@pytest.mark.parametrize(
    ("conn", "code", "is_request", "expected"),
    [
        (Conn.INITIATOR, 257, False, PeerEvent.I_RCV_CEA),
        (Conn.RESPONDER, 257, True, PeerEvent.R_RCV_CER),
        (Conn.INITIATOR, 280, True, PeerEvent.I_RCV_DWR),
        (Conn.RESPONDER, 280, False, PeerEvent.R_RCV_DWA),
        (Conn.RESPONDER, 282, True, PeerEvent.R_RCV_DPR),
        (Conn.INITIATOR, 282, False, PeerEvent.I_RCV_DPA),
        (Conn.RESPONDER, 303, True, PeerEvent.R_RCV_MESSAGE),
        (Conn.INITIATOR, 303, False, PeerEvent.I_RCV_MESSAGE),
    ],
)
def test_message_event_classification(conn, code, is_request, expected):
    assert message_event(conn, code, is_request) is expected
