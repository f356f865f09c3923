"""Sans-IO state machines of a Diameter peer: RFC 6733 §5.6 and the RFC 3539 watchdog.

:mod:`gateway.peer.state` (:class:`PeerStateMachine`) decides which transport connection
to a peer is used and when to exchange CER/CEA, DWR/DWA and DPR/DPA;
:mod:`gateway.peer.watchdog` (:class:`Watchdog`) decides whether an open connection can
be trusted with requests. Neither does I/O, reads a clock, imports Twisted or the codec;
``now`` is passed in (e.g. ``reactor.seconds()``), randomness is injectable.

How the executor (the Twisted protocol, one per peer) drives them:

* Feed every event to :meth:`PeerStateMachine.handle` and execute the returned
  :class:`PeerAction` list in order (each :class:`Action` member says what to do).
  Classify a message received on an established connection with :func:`message_event`;
  a CER on a new connection is validated by the incoming-connection logic (RFC 6733
  §5.6.1) and then fed as ``R_CONN_CER`` to the machine of the peer it names.
* After every call to either machine, re-arm one timer per machine at its
  ``next_deadline`` (cancel it when None); when it fires, call its ``on_timer(now)``.
  Early or stale calls return ``[]``. For the peer machine that timer is both the RFC's
  Timeout in intermediate states and the Tc reconnect (RFC 6733 §2.1) in Closed.
* Once you execute Disc/Error/Cleanup/Reject for a connection, forget it: do not feed
  its later ``connectionLost`` (stale Peer-Disc events are ignored anyway).
* On entering I-Open/R-Open call :meth:`Watchdog.on_connection_up`; on leaving them
  :meth:`Watchdog.on_connection_down`. Feed every message received while open to
  :meth:`Watchdog.on_message_received` and execute its :class:`WatchdogAction` list:
  SEND_DWR on :attr:`PeerStateMachine.open_conn`; CLOSE_CONNECTION by aborting the
  transport (the resulting Peer-Disc takes the peer machine to Closed).
* Route requests only to peers with ``PeerStateMachine.is_open and Watchdog.is_okay``.
"""

from gateway.peer.election import wins_election
from gateway.peer.state import (
    RFC6733_TABLE,
    TRANSITIONS,
    Action,
    Conn,
    DisconnectCause,
    PeerAction,
    PeerEvent,
    PeerState,
    PeerStateError,
    PeerStateMachine,
    message_event,
)
from gateway.peer.watchdog import (
    RFC3539_TABLE,
    Watchdog,
    WatchdogAction,
    WatchdogError,
    WatchdogEvent,
    WatchdogState,
)

__all__ = [
    "RFC3539_TABLE",
    "RFC6733_TABLE",
    "TRANSITIONS",
    "Action",
    "Conn",
    "DisconnectCause",
    "PeerAction",
    "PeerEvent",
    "PeerState",
    "PeerStateError",
    "PeerStateMachine",
    "Watchdog",
    "WatchdogAction",
    "WatchdogError",
    "WatchdogEvent",
    "WatchdogState",
    "message_event",
    "wins_election",
]
