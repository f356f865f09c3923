"""The Twisted protocol of one Diameter transport connection (TCP or TLS).

It hands each read to the node (which frames and processes it) and batches writes; every
decision is the node's. Writes are coalesced per reactor turn: while the node processes
the messages of one read, everything sent to any connection is queued and written once
at the end (a syscall per message costs more than the rest of the relay path: docs/performance.md).

A connection may have a ``tap`` (captures.recorder.Recorder, set by the node when
``[capture]`` is configured): every read is handed to it before the node processes it and
every write as it goes out, plaintext on TLS. Without one, each read and write costs one
attribute check.
"""

from __future__ import annotations

import typing
from typing import Any

from twisted.internet import tcp
from twisted.internet.error import ConnectionAborted
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gateway.transport.framing import Framer

log = Logger(namespace="cxgw.connection")


class WriteBatch:
    """The writes of one batch, coalesced: while a read is being processed (``open``),
    what is sent to any connection is queued, and each connection written to (``dirty``)
    is flushed once when the batch ends (a syscall per message costs more than relaying
    it: docs/performance.md)."""

    __slots__ = ("open", "dirty")

    def __init__(self) -> None:
        self.open = False
        self.dirty: list[DiameterConnection] = []

    def flush(self) -> None:
        """Write what is queued, unless a batch is still open (it flushes at its end)."""
        if self.open:
            return
        dirty = self.dirty
        if dirty:
            self.dirty = []
            for connection in dirty:
                connection.flush()


class ConnectionHandler(typing.Protocol):
    """What a connection tells its owner (the node) and reads from it."""

    batch: WriteBatch
    max_message_size: int

    def receive(self, connection: DiameterConnection, data: bytes) -> None: ...

    def connection_made(self, connection: DiameterConnection) -> None: ...

    def connection_lost(self, connection: DiameterConnection, reason: Failure | None) -> None: ...


@implementer(IHandshakeListener)
class DiameterConnection(Protocol):
    """``role`` is "I" for connections this node opened, "R" for accepted ones."""

    def __init__(self, node: ConnectionHandler, role: str, peer: Any = None) -> None:
        self.node = node
        self.role = role
        self.peer = peer  # the Peer once known (I: from the start; R: after its CER)
        self.framer = Framer(node.max_message_size)
        self.outbox: list[bytes | memoryview] = []
        self.connected = False
        self.closing = False
        self.label = "?"
        self._socket: Any = None
        # the relay's memory of this peer's requests: the AVPs after the first one up to
        # the Destination-Realm, and its value (gateway.routing.relay)
        self.relay_prefix: tuple[bytes | None, bytes | None] = (None, None)
        self.tap: Any = None  # a capture recorder: received(conn, data), sent(conn, data), lost(conn)

    # -- Twisted ---------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.connected = True
        address = self.transport.getPeer()
        self.label = f"{getattr(address, 'host', '?')}:{getattr(address, 'port', '?')}"
        _no_delay(self.transport)
        # plain TCP transports (twisted.internet.tcp) expose their socket and buffers;
        # TLS and others go through transport.write only
        self._socket = self.transport.getHandle() if _buffers_visible(self.transport) else None
        # Back-pressure: we are the producer of what this transport sends. When its
        # buffer fills (the other side does not read), Twisted pauses us: we stop
        # reading from this connection, so a peer that does not read its answers cannot
        # make us buffer more, and routing skips it as congested until it drains.
        if self._socket is not None:
            self.transport.registerProducer(self, True)
            self._read_directly_from_now()
        # (TLS: registered once the handshake is over, see handshakeCompleted)
        self.node.connection_made(self)

    def dataReceived(self, data: bytes) -> None:
        if self.tap is not None:
            self.tap.received(self, data)
        self.node.receive(self, data)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self.connected = False
        self.outbox.clear()
        if self.tap is not None:
            self.tap.lost(self)
        self.node.connection_lost(self, reason)

    def handshakeCompleted(self) -> None:
        """IHandshakeListener: a producer registered on a TLS transport before the
        handshake would hold back its first writes."""
        self.transport.registerProducer(self, True)

    # -- IPushProducer: our outgoing buffer is full / has drained -----------------------
    def pauseProducing(self) -> None:
        if self.peer is not None:
            self.peer.congested = True
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        if self.peer is not None:
            self.peer.congested = False
        if self.connected:
            self.transport.resumeProducing()
            self._read_directly_from_now()

    def stopProducing(self) -> None:
        """The transport is going away; connectionLost does the cleaning up."""

    # -- reading without Twisted's per-event wrapping -----------------------------------
    def _read_directly_from_now(self) -> None:
        """On the asyncio reactor, have the loop call ``_read_directly`` when the socket is
        readable, in place of the reactor's callback for the transport it registered (the
        selector entry is Twisted's; pausing or losing the connection removes it as
        before). Any other reactor, or a Twisted without these internals, keeps its own path."""
        reactor = self.transport.reactor
        loop = getattr(reactor, "_asyncioEventloop", None)
        reading = getattr(reactor, "_readers", {})
        if loop is not None and self.transport in reading and hasattr(reactor, "_disconnectSelectable"):
            loop.add_reader(reading[self.transport], self._read_directly)

    def _read_directly(self) -> None:
        """What the reactor does on a readable socket (doRead, and the end of the connection
        on EOF, an error or an exception), without the legacy logging context it sets up
        per event: that costs more than relaying a small read."""
        transport = self.transport
        try:
            why = transport.doRead()
        except Exception as error:
            log.failure("reading from {conn}", conn=self)
            why = error
        if why:
            transport.reactor._disconnectSelectable(transport, why, True)

    # -- used by the node ------------------------------------------------------------
    def queue(self, data: bytes) -> None:
        """Send bytes: queued while the node processes a batch (flushed once at its end),
        written at once otherwise (timers, Deferred callbacks)."""
        if not self.connected or self.closing:
            return
        batch = self.node.batch
        if batch.open:
            if not self.outbox:
                batch.dirty.append(self)
            self.outbox.append(data)
        else:
            self._write(data)

    def flush(self) -> None:
        outbox = self.outbox
        if outbox and self.connected:
            self._write(outbox[0] if len(outbox) == 1 else b"".join(outbox))
        outbox.clear()

    def _write(self, data: bytes | memoryview) -> None:
        """Send now when Twisted holds nothing for this socket (the usual case): one send()
        instead of registering for writability and sending on the next turn, which costs
        two epoll_ctl calls and a loop iteration per batch. Whatever the kernel does not
        take, and every other case, goes through Twisted's buffered write."""
        if self.tap is not None:
            self.tap.sent(self, data)
        transport = self.transport
        sock = self._socket
        if sock is not None and not transport._tempDataLen and transport.offset >= len(transport.dataBuffer):
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            except OSError:
                sent = 0  # let Twisted meet the error and close the connection its way
            if sent == len(data):
                return
            data = data[sent:]
        try:
            transport.write(data if isinstance(data, bytes) else bytes(data))  # (a slice of a read buffer)
        except (OSError, RuntimeError) as error:  # the socket is gone under Twisted (below)
            log.warn("writing to {conn} failed ({error}); aborting it", conn=self, error=error)
            self._write_failed()
        except Exception:  # noqa: BLE001 (a defect, but this connection's alone)
            log.failure("writing to {conn}; aborting it", conn=self)
            self._write_failed()

    def _write_failed(self) -> None:
        """A write raised: this connection is broken, and only it (seen: uvloop refusing a
        socket whose poll handle it closed after the peer reset it, while Twisted still
        held the connection open). It is aborted so that its peer goes down the usual way
        (connectionLost: its pending requests fail over, RFC 6733 §5.5.4); the read being
        processed, another connection's, and the batch's other writes go on."""
        self.outbox.clear()
        transport = self.transport
        try:
            transport.abortConnection()
        except Exception as error:  # noqa: BLE001 (its loop refuses that too: end it on the next turn)
            log.warn("aborting {conn} failed ({error}); ending it", conn=self, error=error)
            transport.reactor.callLater(0, transport.connectionLost, Failure(ConnectionAborted()))

    def close(self, abort: bool = False) -> None:
        """Flush what is queued and close (abort: drop it and reset)."""
        if not self.connected or self.transport is None:
            return
        if abort:
            self.outbox.clear()
            self.transport.abortConnection()
        else:
            self.flush()
            self.closing = True
            self.transport.loseConnection()

    def __repr__(self) -> str:
        peer = getattr(self.peer, "host", None)
        return f"<DiameterConnection {self.role} {peer or self.label}>"


def _buffers_visible(transport: Any) -> bool:
    return (
        isinstance(transport, tcp.Connection)
        and hasattr(transport, "_tempDataLen")
        and hasattr(transport, "dataBuffer")
        and hasattr(transport, "offset")
    )


def _no_delay(transport: Any) -> None:
    """TCP_NODELAY on every Diameter connection: Nagle adds ~1 ms per hop (docs/performance.md)."""
    for candidate in (transport, getattr(transport, "transport", None)):
        setter = getattr(candidate, "setTcpNoDelay", None)
        if setter is not None:
            try:
                setter(True)
                return
            except OSError:
                return
