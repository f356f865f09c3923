"""TCP: segments of each connection put back into two byte streams (RFC 9293 §3.4).

Each direction keeps the next sequence number it expects (32-bit arithmetic, RFC 9293
§3.4.1, so a wrap is harmless). A segment that starts there is framed at once, then any
held segment it makes contiguous; a segment from the future (out of order) is held; a
segment wholly in the past (a retransmission) is dropped and one that overlaps is cut to
its new bytes (the first copy captured wins, as in Wireshark). Data the capture never had
is a *gap*: when the peer acknowledges bytes beyond what was seen while later segments
are held, when held data passes MAX_HELD bytes or MAX_HELD_SEGMENTS segments (or all
connections together hold MAX_HELD_TOTAL bytes: the one holding most gives up its holes), when
a segment was cut by the snaplen, and at the end of the capture. The Diameter framer of that direction then drops the
message that the gap cut and resynchronises (captures.reader.diameter).

A direction first seen without its SYN (the capture started inside the connection)
starts at its first segment, out of sync: its first plausible Diameter header is where
reading begins. A direction whose first bytes are a TLS record header (RFC 8446 §5.1:
content type 20-23, legacy version 3.x) makes the whole connection unreadable.
A SYN on a connection whose both sides have closed (FIN or RST), or with another initial
sequence number than the one seen, starts a new stream (a new incarnation of the
connection, RFC 9293 §3.4.1); the reader then drops a finished connection's state.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from captures.reader.diameter import DEFAULT_MAX_MESSAGE, Framer
from captures.reader.files import Frame

FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
MAX_HELD = 4 << 20  # out-of-order bytes held per direction before the hole is given up as lost
MAX_HELD_TOTAL = 64 << 20  # and by all connections of a capture together (captures.reader gives up the largest)
MAX_HELD_SEGMENTS = 1024  # and segments (each drain scans them: bounded work per segment)
_MASK = 0xFFFFFFFF

Deliver = Callable[[int, bytes, Frame], None]  # (direction 0 client->server / 1 server->client, message, its frame)
Report = Callable[[str], None]


def _signed(difference: int) -> int:
    difference &= _MASK
    return difference - (1 << 32) if difference & 0x80000000 else difference


@dataclass(slots=True)
class Direction:
    framer: Framer
    next_seq: int | None = None  # the next sequence number expected (None: nothing seen yet)
    syn: int | None = None  # the sequence number of its SYN, when seen
    held: dict[int, tuple[bytes, Frame]] = field(default_factory=dict)  # sequence number -> (payload, its frame)
    held_bytes: int = 0
    fin: bool = False
    started: bool = False  # its first payload byte was framed
    ignored: bool = False  # not Diameter: its bytes are dropped


class Connection:
    """Both directions of one TCP connection (a stream of the capture)."""

    __slots__ = ("index", "directions", "tls", "closed", "report")

    def __init__(self, index: int, report: Callable[[int, str], None], max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.index = index
        self.report = report  # (direction, text)
        self.directions = (
            Direction(Framer(lambda text: report(0, text), max_message)),
            Direction(Framer(lambda text: report(1, text), max_message)),
        )
        self.tls = False
        self.closed = False  # both FINs, or an RST

    def segment(
        self, way: int, seq: int, ack: int, flags: int, payload: bytes, missing: int, frame: Frame, deliver: Deliver
    ) -> None:
        direction = self.directions[way]
        if flags & SYN:
            if direction.next_seq is None:
                direction.syn = seq
                direction.next_seq = (seq + 1) & _MASK
            seq = (seq + 1) & _MASK  # data on a SYN follows its sequence number
        if flags & ACK:
            self._acknowledged(1 - way, ack, deliver)
        if payload or missing:
            if direction.next_seq is None:
                direction.next_seq = seq  # no SYN seen: start here, and find a message header
                direction.framer.lost = direction.framer.quiet = True
            self._data(way, direction, seq, payload, missing, frame, deliver)
        if flags & FIN:
            direction.fin = True
        if flags & RST or (self.directions[0].fin and self.directions[1].fin):
            self.closed = True

    def restarted(self, way: int, seq: int) -> bool:
        """Whether a SYN from ``way`` with ``seq`` opens a new connection on these ports
        rather than repeating this one's SYN."""
        direction = self.directions[way]
        return self.closed or (direction.next_seq is not None and direction.syn != seq)

    def idle(self) -> bool:
        """Nothing held out of order in either direction."""
        return not (self.directions[0].held or self.directions[1].held)

    def held_bytes(self) -> int:
        return self.directions[0].held_bytes + self.directions[1].held_bytes

    def give_up_holes(self, deliver: Deliver, why: str) -> None:
        """Read what is held in both directions now, the holes before it taken as lost."""
        for way, direction in enumerate(self.directions):
            if direction.held:
                self.report(way, why)
            while direction.held:
                self._skip_hole(way, direction, deliver)

    def _data(
        self, way: int, direction: Direction, seq: int, payload: bytes, missing: int, frame: Frame, deliver: Deliver
    ) -> None:
        assert direction.next_seq is not None
        offset = _signed(seq - direction.next_seq)
        if offset > 0:  # from the future: hold it until the hole is filled
            before = direction.held.get(seq)
            if before is None or len(before[0]) < len(payload):
                direction.held_bytes += len(payload) - (len(before[0]) if before else 0)
                direction.held[seq] = (payload, frame)
            if direction.held_bytes > MAX_HELD or len(direction.held) > MAX_HELD_SEGMENTS:
                self._skip_hole(way, direction, deliver)
            return
        if offset < 0:
            if -offset >= len(payload) + missing:
                return  # a retransmission of what was already read
            if -offset >= len(payload):
                payload, missing = b"", missing + offset + len(payload)
            else:
                payload = payload[-offset:]
        self._take(way, direction, payload, frame, deliver)
        if missing:
            direction.framer.gap(missing)
            direction.next_seq = (direction.next_seq + missing) & _MASK
        if direction.held:
            self._drain(way, direction, deliver, frame)

    def _take(self, way: int, direction: Direction, payload: bytes, frame: Frame, deliver: Deliver) -> None:
        assert direction.next_seq is not None
        direction.next_seq = (direction.next_seq + len(payload)) & _MASK
        if self.tls or direction.ignored or not payload:
            return
        if not direction.started:
            direction.started = True
            if len(payload) >= 3 and 20 <= payload[0] <= 23 and payload[1] == 3 and payload[2] <= 4:
                self.tls = True
                self.report(way, "TLS, not readable without keys")
                return
            if not direction.framer.lost and payload[0] != 1:
                direction.ignored = True
                self.report(way, f"not Diameter (its first bytes are {payload[:8].hex()}); skipped")
                return
        for message in direction.framer.feed(payload):
            deliver(way, message, frame)

    def _drain(self, way: int, direction: Direction, deliver: Deliver, filler: Frame | None = None) -> None:
        """Frame the held segments that are now contiguous, in sequence order. Their
        messages are completed by ``filler``, the frame that filled the hole (as Wireshark
        has it), or, when the hole is given up, each by the frame that held its bytes."""
        held = direction.held
        assert direction.next_seq is not None
        start = direction.next_seq
        for seq in sorted(held, key=lambda value: _signed(value - start)):
            offset = _signed(seq - direction.next_seq)
            if offset > 0:
                return  # a hole before this one
            payload, frame = held.pop(seq)
            direction.held_bytes -= len(payload)
            if -offset < len(payload):
                self._take(way, direction, payload[-offset:] if offset else payload, filler or frame, deliver)

    def _skip_hole(self, way: int, direction: Direction, deliver: Deliver, until: int | None = None) -> None:
        """Give up the bytes before the first held segment (or before ``until``, if that
        comes first): they are not in the capture."""
        assert direction.next_seq is not None
        start = direction.next_seq
        first = min(direction.held, key=lambda value: _signed(value - start))
        if until is not None and _signed(until - first) < 0:
            first = until
        size = _signed(first - start)
        if size > 0:
            if not (self.tls or direction.ignored):
                direction.framer.gap(size)
            direction.next_seq = first
        self._drain(way, direction, deliver)

    def _acknowledged(self, way: int, ack: int, deliver: Deliver) -> None:
        """The peer acknowledged ``ack`` of direction ``way``: a hole before it will not be
        filled (RFC 9293 §3.10.7.4: only bytes received are acknowledged)."""
        direction = self.directions[way]
        if direction.held and direction.next_seq is not None and _signed(ack - direction.next_seq) > 0:
            self._skip_hole(way, direction, deliver, ack)

    def finish(self, deliver: Deliver) -> None:
        """The end of the capture: read what is held, report what is left unread."""
        for way, direction in enumerate(self.directions):
            while direction.held:
                self._skip_hole(way, direction, deliver)
            if not (self.tls or direction.ignored):
                text = direction.framer.finish()
                if text:
                    self.report(way, text)
