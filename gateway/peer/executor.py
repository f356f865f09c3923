"""The executor of a peer's state machine and watchdog (gateway.peer), one per peer.

It carries out the actions the sans-IO machines return: connect, send CER/CEA/DWR/DWA/
DPR/DPA, close connections, arm timers, and tells the node when the peer opens, goes
down (failover) or comes back. The machines decide; this only acts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from twisted.logger import Logger

from cx_codec import DecodeError, Message
from cx_codec.errors import RESULT_CODE_NAMES
from gateway.peer import (
    Action,
    Conn,
    PeerAction,
    PeerEvent,
    PeerState,
    PeerStateMachine,
    Watchdog,
    WatchdogAction,
    WatchdogState,
    message_event,
)
from gateway.peer.capabilities import (
    Capabilities,
    LocalIdentity,
    build_cea,
    build_cer,
    build_dpa,
    build_dpr,
    build_dwa,
    build_dwr,
    decode_capabilities,
)
from gateway.settings import PeerSettings, Timers
from gateway.transport.connection import DiameterConnection

log = Logger(namespace="cxgw.peer")


class PeerHost(Protocol):
    """What a peer's executor needs of the node it belongs to."""

    local: LocalIdentity
    timers: Timers
    clock: Any  # a reactor or task.Clock: seconds(), callLater()

    def new_hop_by_hop(self) -> int: ...

    def new_end_to_end(self) -> int: ...

    def flush_soon(self) -> None: ...

    def connect_to(self, peer: Peer) -> None: ...

    def peer_opened(self, peer: Peer) -> None: ...

    def peer_down(self, peer: Peer) -> None: ...

    def failover(self, peer: Peer) -> None: ...

    def reject_malformed(self, connection: DiameterConnection, data: bytes, error: DecodeError) -> None: ...

CER, DWR, DPR = 257, 280, 282
_OKAY = WatchdogState.OKAY
_SUSPECT = WatchdogState.SUSPECT
_ROLE = {"I": Conn.INITIATOR, "R": Conn.RESPONDER}


class Peer:
    """A configured (or accepted unknown) Diameter peer and its connections."""

    def __init__(self, node: PeerHost, settings: PeerSettings) -> None:
        self.node = node
        self.settings = settings
        self.host = settings.host
        self.realm = settings.realm
        timers = node.timers
        self.machine = PeerStateMachine(
            node.local.origin_host,
            settings.host,
            initiates=settings.connect,
            tc=timers.tc,
            reconnect_initial=min(1.0, timers.tc),
            timeout=timers.cea_timeout,
            busy_hold=timers.busy_hold,
            do_not_talk_hold=timers.do_not_want_to_talk_hold,
        )
        self.watchdog = Watchdog(timers.twinit)
        self.connections: dict[Conn, DiameterConnection | None] = {Conn.INITIATOR: None, Conn.RESPONDER: None}
        self.capabilities: Capabilities | None = None
        self._offered: DiameterConnection | None = None  # the connection of the current R-Conn-CER
        self._offered_cer: Message | None = None
        self._responder_cer: Message | None = None
        self._pending_capabilities: Capabilities | None = None
        self._last_message: Message | None = None
        self._dpr_cause: int | None = None
        self._machine_timer: Any = None
        self._watchdog_timer: Any = None
        self._connector: Any = None
        self.disconnect_waiters: list[Callable[[], None]] = []
        self.congested = False
        # the connection messages go out on (I in I-Open, R in R-Open), kept in step with
        # the machine by _after(): the hot path reads an attribute, not the machine
        self.connection: DiameterConnection | None = None
        self._traffic_at: float | None = None
        self._connect_failure: str | None = None  # the reason last logged, until the peer opens

    # -- what the node reads ---------------------------------------------------------
    @property
    def available(self) -> bool:
        """Requests may be routed here: open, watchdog OKAY, not back-pressured."""
        return self.connection is not None and self.watchdog.state is _OKAY and not self.congested

    @property
    def state(self) -> str:
        return self.machine.state.value

    def send(self, data: bytes) -> None:
        connection = self.connection
        if connection is not None:
            connection.queue(data)

    # -- commands --------------------------------------------------------------------
    def start(self) -> None:
        self._feed(PeerEvent.START)

    def stop(self, cause: int = 0) -> None:
        """Disconnect with DPR (RFC 6733 §5.4) carrying ``cause``; no reconnect."""
        self._feed(PeerEvent.STOP, disconnect_cause=cause)

    # -- connection events -----------------------------------------------------------
    def connected(self, connection: DiameterConnection) -> None:
        self.connections[Conn.INITIATOR] = connection
        self._feed(PeerEvent.I_RCV_CONN_ACK)

    def connect_failed(self, reason: str) -> None:
        settings = self.settings
        self._report_failure(f"cannot connect to {settings.address}:{settings.port}: {connect_reason(reason)}")
        self._feed(PeerEvent.I_RCV_CONN_NACK)

    def _report_failure(self, what: str) -> None:
        """A failure said once per series (again if it changes), not at every Tc retry;
        the peer's "open" line ends the series."""
        if what == self._connect_failure:
            log.debug("peer {peer}: {what} (again)", peer=self.host, what=what)
        elif self.settings.connect:
            log.warn("peer {peer}: {what}; retrying every {tc:g} s at most (timers.tc)", peer=self.host,
                     what=what, tc=self.node.timers.tc)
        else:
            log.warn("peer {peer}: {what}", peer=self.host, what=what)
        self._connect_failure = what

    def _error_text(self, reason: str | None) -> str:
        """What went wrong, in the peer's words when its CEA refused us (RFC 6733 §5.3.2:
        Result-Code and Error-Message), else the state machine's event."""
        message = self._last_message
        if message is not None and message.command_code == CER and not message.is_request:
            code = message.get("Result-Code")
            if isinstance(code, int) and not 2000 <= code < 3000:
                detail = message.get("Error-Message")
                return f"CEA {code} {RESULT_CODE_NAMES.get(code, '')}".rstrip() + (f": {detail}" if detail else "")
        return f"error ({reason}), closing its connections"

    def offered(self, connection: DiameterConnection, cer: Message, capabilities: Capabilities) -> None:
        """An accepted connection whose CER names this peer (R-Conn-CER, §5.6.1)."""
        self._offered, self._offered_cer = connection, cer
        self._pending_capabilities = capabilities
        self._feed(PeerEvent.R_CONN_CER)
        if self._offered is connection:  # neither accepted nor rejected: do not leak it
            connection.close()
        self._offered = self._offered_cer = None

    def lost(self, connection: DiameterConnection) -> None:
        for conn, current in self.connections.items():
            if current is connection:
                self.connections[conn] = None
                self._feed(PeerEvent.I_PEER_DISC if conn is Conn.INITIATOR else PeerEvent.R_PEER_DISC)
                return

    def received(self, connection: DiameterConnection, data: bytes) -> None:
        """A base-protocol message (CER/CEA, DWR/DWA, DPR/DPA) on an adopted connection."""
        conn = self._conn_of(connection)
        if conn is None:
            return
        code = int.from_bytes(data[5:8], "big")
        is_request = bool(data[4] & 0x80)
        try:
            if code == CER:
                message, capabilities = decode_capabilities(data)
            else:
                message, capabilities = _decode(data), None
        except DecodeError as error:
            log.warn(
                "peer {peer}: malformed {code} ({error}); closing", peer=self.host, code=code, error=error
            )
            self.node.reject_malformed(connection, data, error)
            return
        self._last_message = message
        if capabilities is not None and not is_request:
            self.capabilities = capabilities
        if self.machine.is_open:
            self._watchdog_actions(self.watchdog.on_message_received(self.node.clock.seconds(), code == DWR and not is_request))
        event = message_event(conn, code, is_request)
        result_code = message.get("Result-Code") if code == CER and not is_request else None
        cause = message.get("Disconnect-Cause") if code == DPR and is_request else None
        self._feed(event, result_code=result_code, disconnect_cause=cause)  # type: ignore[arg-type]

    def application_message(self, now: float) -> None:
        """Any other message while open: the watchdog counts it as a sign of life
        (RFC 3539 §3.4.1). In OKAY that only moves its timer, so the time is noted and
        given to the watchdog when its timer fires, not on every message."""
        state = self.watchdog.state
        if state is _OKAY:
            self._traffic_at = now
        elif state is _SUSPECT:  # traffic fails back to OKAY at once (RFC 3539 §3.4.1)
            self._watchdog_actions(self.watchdog.on_message_received(now, False))
        # REOPEN: a non-DWA message changes nothing there (its action is Throwaway;
        # requests are still served, they come from the peer itself); only DWAs count.

    # -- the machines ----------------------------------------------------------------
    def _conn_of(self, connection: DiameterConnection) -> Conn | None:
        for conn, current in self.connections.items():
            if current is connection:
                return conn
        return None

    def _feed(self, event: PeerEvent, **kwargs: Any) -> None:
        was_open = self.machine.is_open
        now = self.node.clock.seconds()
        actions = self.machine.handle(event, now, **kwargs)
        self._run(actions)
        self._after(was_open, now)

    def _on_machine_timer(self) -> None:
        self._machine_timer = None
        was_open = self.machine.is_open
        now = self.node.clock.seconds()
        self._run(self.machine.on_timer(now))
        self._after(was_open, now)

    def _after(self, was_open: bool, now: float) -> None:
        conn = self.machine.open_conn
        self.connection = self.connections[conn] if conn is not None else None
        is_open = self.machine.is_open
        if is_open and not was_open:
            self._connect_failure = None
            self._watchdog_actions(self.watchdog.on_connection_up(now))
            log.info(
                "peer {peer}: open ({state}) {product}", peer=self.host, state=self.state,
                product=self.capabilities.product_name if self.capabilities else "",
            )
            self.node.peer_opened(self)
        elif was_open and not is_open:
            self._watchdog_actions(self.watchdog.on_connection_down(now))
            log.info("peer {peer}: down ({state})", peer=self.host, state=self.state)
            self.node.peer_down(self)
        if self.disconnect_waiters and self.machine.state is PeerState.CLOSED:
            # RFC 6733 §5.4: a disconnect is over when the DPA came (or Closing timed out)
            # and the connection is gone, not when the DPR was sent
            waiters, self.disconnect_waiters = self.disconnect_waiters, []
            for waiter in waiters:
                waiter()
        self._arm(self.machine.next_deadline, "_machine_timer", self._on_machine_timer)

    def _arm(self, deadline: float | None, attribute: str, callback: Callable[[], None]) -> None:
        timer = getattr(self, attribute)
        if deadline is None:
            if timer is not None and timer.active():
                timer.cancel()
            setattr(self, attribute, None)
            return
        delay = max(0.0, deadline - self.node.clock.seconds())
        if timer is not None and timer.active():
            if abs(timer.getTime() - deadline) > 0.001:
                timer.reset(delay)
            return
        setattr(self, attribute, self.node.clock.callLater(delay, callback))

    def _on_watchdog_timer(self) -> None:
        self._watchdog_timer = None
        actions = []
        if self._traffic_at is not None:
            if self.watchdog.state is _OKAY:
                actions = self.watchdog.on_message_received(self._traffic_at, False)
            self._traffic_at = None
        actions += self.watchdog.on_timer(self.node.clock.seconds())
        self._watchdog_actions(actions)

    def _watchdog_actions(self, actions: list[WatchdogAction]) -> None:
        for action in actions:
            if action is WatchdogAction.SEND_DWR:
                self.send(build_dwr(self.node.local, self.node.new_hop_by_hop(), self.node.new_end_to_end()))
                self.node.flush_soon()
            elif action is WatchdogAction.FAILOVER:
                if self.machine.is_open:  # on a connection going down, peer_down fails over
                    log.warn("peer {peer}: watchdog suspect, failing over pending requests", peer=self.host)
                    self.node.failover(self)
            elif action is WatchdogAction.CLOSE_CONNECTION:
                connection = self.connection
                if connection is not None and self.machine.is_open:
                    log.warn("peer {peer}: no DWA twice, closing (RFC 3539)", peer=self.host)
                    connection.close(abort=True)
            elif action is WatchdogAction.FAILBACK:
                log.info("peer {peer}: watchdog okay again", peer=self.host)
                self.node.peer_opened(self)
        # the watchdog timer is re-armed lazily: an early fire returns [] and re-arms
        deadline = self.watchdog.next_deadline
        if self._watchdog_timer is None or not self._watchdog_timer.active():
            if deadline is not None:
                self._watchdog_timer = self.node.clock.callLater(
                    max(0.0, deadline - self.node.clock.seconds()), self._on_watchdog_timer
                )
        elif deadline is None:
            self._watchdog_timer.cancel()
            self._watchdog_timer = None
        elif self._watchdog_timer.getTime() > deadline + 0.001:
            self._watchdog_timer.reset(max(0.0, deadline - self.node.clock.seconds()))

    def _run(self, actions: list[PeerAction]) -> None:
        for action in actions:
            handler = _HANDLERS.get(action.action)
            if handler is not None:
                handler(self, action)

    # -- one method per Action (RFC 6733 §5.6 action names) ---------------------------
    def _snd_conn_req(self, action: PeerAction) -> None:
        self.node.connect_to(self)

    def _accept(self, action: PeerAction) -> None:
        connection = self._offered
        if connection is not None:
            connection.peer = self
            self.connections[Conn.RESPONDER] = connection
            self._responder_cer = self._offered_cer  # answered by R-Snd-CEA, maybe later (election)
            self._offered = None

    def _reject(self, action: PeerAction) -> None:
        if self._offered is not None:
            self._offered.close()
            self._offered = None

    def _process_cer(self, action: PeerAction) -> None:
        self.capabilities = self._pending_capabilities
        for warning in self.capabilities.warnings:
            log.warn("peer {peer}: {warning}", peer=self.host, warning=warning)

    def _snd_cer(self, action: PeerAction) -> None:
        connection = self.connections[Conn.INITIATOR]
        if connection is not None:
            connection.queue(build_cer(self.node.local, self.node.new_hop_by_hop(), self.node.new_end_to_end()))
            self.node.flush_soon()

    def _snd_cea(self, action: PeerAction) -> None:
        connection = self.connections.get(action.conn) if action.conn else None
        cer = self._responder_cer
        if connection is not None and cer is not None:
            connection.queue(build_cea(self.node.local, cer, action.result_code or 2001))
            self.node.flush_soon()

    def _process_cea(self, action: PeerAction) -> None:
        capabilities = self.capabilities
        if capabilities is not None:
            for warning in capabilities.warnings:
                log.warn("peer {peer}: {warning}", peer=self.host, warning=warning)

    def _snd_dpr(self, action: PeerAction) -> None:
        connection = self.connections.get(action.conn) if action.conn else self.connection
        if connection is not None:
            connection.queue(
                build_dpr(self.node.local, int(action.cause or 0), self.node.new_hop_by_hop(), self.node.new_end_to_end())
            )
            self.node.flush_soon()

    def _snd_dpa(self, action: PeerAction) -> None:
        connection = self.connections.get(action.conn) if action.conn else None
        if connection is not None:
            connection.queue(build_dpa(self.node.local, self._last_message, action.result_code or 2001))
            connection.flush()

    def _disc(self, action: PeerAction) -> None:
        connection = self.connections.get(action.conn) if action.conn else None
        if connection is not None:
            self.connections[action.conn] = None  # type: ignore[index]
            connection.close()

    def _cleanup(self, action: PeerAction) -> None:
        if action.action is Action.ERROR:
            self._report_failure(self._error_text(action.reason))
        for conn, connection in list(self.connections.items()):
            self.connections[conn] = None
            if connection is not None:
                connection.close()
        if self._connector is not None:
            self._connector.cancel()
            self._connector = None

    def _snd_dwa(self, action: PeerAction) -> None:
        connection = self.connections.get(action.conn) if action.conn else self.connection
        if connection is not None:
            connection.queue(build_dwa(self.node.local, self._last_message))
            self.node.flush_soon()

    def _schedule_reconnect(self, action: PeerAction) -> None:
        # after a failed connect the warning said it all; after a disconnect this is news
        (log.debug if self._connect_failure is not None else log.info)(
            "peer {peer}: reconnect in {delay:.1f} s{cause}", peer=self.host, delay=action.delay or 0.0,
            cause=f" (it said {action.cause.name})" if action.cause else "",
        )

    def _discard(self, action: PeerAction) -> None:
        log.warn("peer {peer}: discarded a message: {reason}", peer=self.host, reason=action.reason)


_HANDLERS: dict[Action, Callable[[Peer, PeerAction], None]] = {
    Action.SND_CONN_REQ: Peer._snd_conn_req,
    Action.ACCEPT: Peer._accept,
    Action.REJECT: Peer._reject,
    Action.PROCESS_CER: Peer._process_cer,
    Action.SND_CER: Peer._snd_cer,
    Action.SND_CEA: Peer._snd_cea,
    Action.CLEANUP: Peer._cleanup,
    Action.ERROR: Peer._cleanup,
    Action.PROCESS_CEA: Peer._process_cea,
    Action.SND_DPR: Peer._snd_dpr,
    Action.SND_DPA: Peer._snd_dpa,
    Action.DISC: Peer._disc,
    Action.SND_DWA: Peer._snd_dwa,
    Action.SCHEDULE_RECONNECT: Peer._schedule_reconnect,
    Action.DISCARD: Peer._discard,
    # ELECT, PROCESS, PROCESS_DWR, PROCESS_DWA, SND_MESSAGE: nothing to do here;
    # application messages never go through the machine (the node routes them).
}


# what Twisted says of a failed connect (ConnectError subclasses) -> what an operator reads
_CONNECT_REASONS: tuple[tuple[str, str], ...] = (
    ("refused", "connection refused"),
    ("timed out", "no answer (timed out)"),
    ("No route to host", "no route to host"),
    ("Network is unreachable", "network unreachable"),
    ("DNS lookup failed", "unknown host"),
    ("address not found", "unknown host"),
)


def connect_reason(text: str) -> str:
    """A short reason for a failed connect: "connection refused" rather than "Connection
    was refused by other side: 111: Connection refused."."""
    for fragment, reason in _CONNECT_REASONS:
        if fragment.lower() in text.lower():
            return reason
    return text.rstrip(".") or "unknown reason"


def _decode(data: bytes) -> Message:
    from cx_codec import decode

    return decode(data)
