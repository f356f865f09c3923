"""SCTP: Diameter user messages out of the DATA chunks of an association (RFC 9260).

A packet is the 12-byte common header (ports, verification tag, checksum, §3.1) and
chunks (type, flags, length, value padded to 4 bytes, §3.2). A DATA chunk (type 0, §3.3.1)
carries TSN, Stream Identifier, Stream Sequence Number and Payload Protocol Identifier
before its user data; its flags say B (first fragment), E (last) and U (unordered). A user
message is the user data of consecutive TSNs from a B to an E fragment; a TSN seen again
is a retransmission and is dropped. Diameter over SCTP uses PPID 46 (RFC 6733 §2.1.1,
IANA), and many implementations send 0 (unspecified); PPID 47 is Diameter over DTLS
(unreadable without keys); other PPIDs are another protocol and are skipped. Each user
message holds whole Diameter messages (RFC 6733 §2.1.1 leaves no message split across
two), framed on their own (captures.reader.diameter): a rest that is not a whole message
is reported. Fragments waiting for the rest of their user message are bounded in count
(MAX_FRAGMENTS) and bytes (``max_message``): memory stays bounded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from captures.reader.diameter import DEFAULT_MAX_MESSAGE, Framer
from captures.reader.files import Frame

CHUNK_DATA, CHUNK_IDATA = 0, 64
FLAG_END, FLAG_BEGIN = 0x01, 0x02
PPID_UNSPECIFIED, PPID_DIAMETER, PPID_DIAMETER_DTLS = 0, 46, 47
MAX_FRAGMENTS = 1024  # fragments waiting for the rest of their user message, per direction
RECENT_TSNS = 4096  # TSNs remembered to recognise retransmissions

Deliver = Callable[[int, bytes, Frame], None]  # (direction, message, its frame)


class _Direction:
    __slots__ = ("fragments", "fragment_bytes", "recent", "recent_order")

    def __init__(self) -> None:
        self.fragments: dict[int, tuple[int, int, int, bytes]] = {}  # TSN -> (flags, stream, PPID, data)
        self.fragment_bytes = 0
        self.recent: set[int] = set()
        self.recent_order: deque[int] = deque()

    def seen(self, tsn: int) -> bool:
        if tsn in self.recent:
            return True
        self.recent.add(tsn)
        self.recent_order.append(tsn)
        if len(self.recent_order) > RECENT_TSNS:
            self.recent.discard(self.recent_order.popleft())
        return False


class Association:
    """Both directions of one SCTP association."""

    __slots__ = ("directions", "report", "max_message", "warned")

    def __init__(self, report: Callable[[int, str], None], max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.directions = (_Direction(), _Direction())
        self.report = report  # (direction, text)
        self.max_message = max_message
        self.warned: set[tuple[int, int]] = set()  # (direction, PPID or -chunk type) said once

    def packet(self, way: int, data: bytes, missing: int, frame: Frame, deliver: Deliver) -> None:
        offset = 12
        end = len(data)
        while offset + 4 <= end:
            kind, flags = data[offset], data[offset + 1]
            length = (data[offset + 2] << 8) | data[offset + 3]
            if length < 4:
                self.report(way, f"SCTP chunk of length {length} (type {kind}): the rest of the packet is unreadable")
                return
            if offset + length > end:
                if not missing:
                    self.report(way, f"SCTP chunk (type {kind}) longer than its packet ({length} bytes, {end - offset} left)")
                return  # cut by the snaplen: already reported with the frame
            if kind == CHUNK_DATA and length >= 16:
                self._data(way, flags, data[offset + 4 : offset + length], frame, deliver)
            elif kind == CHUNK_IDATA and (way, -kind) not in self.warned:
                self.warned.add((way, -kind))
                self.report(way, "SCTP I-DATA chunks (RFC 8260) are not read")
            offset += (length + 3) & ~3

    def _data(self, way: int, flags: int, chunk: bytes, frame: Frame, deliver: Deliver) -> None:
        tsn = int.from_bytes(chunk[0:4], "big")
        stream = (chunk[4] << 8) | chunk[5]
        ppid = int.from_bytes(chunk[8:12], "big")
        direction = self.directions[way]
        if direction.seen(tsn):
            return  # a retransmission (RFC 9260 §6.2: the receiver reports it as a duplicate TSN)
        user = chunk[12:]
        if flags & FLAG_BEGIN and flags & FLAG_END:
            self._message(way, stream, ppid, user, frame, deliver)
            return
        fragments = direction.fragments
        while fragments and (len(fragments) >= MAX_FRAGMENTS or direction.fragment_bytes + len(user) > self.max_message):
            oldest = next(iter(fragments))
            direction.fragment_bytes -= len(fragments.pop(oldest)[3])
            self.report(way, f"SCTP fragments waiting beyond {MAX_FRAGMENTS} or {self.max_message} bytes; TSN {oldest} dropped")
        fragments[tsn] = (flags, stream, ppid, user)
        direction.fragment_bytes += len(user)
        first = tsn
        while not fragments[first][0] & FLAG_BEGIN:
            previous = (first - 1) & 0xFFFFFFFF
            if previous not in fragments or fragments[previous][1] != stream:
                return
            first = previous
        last = tsn
        while not fragments[last][0] & FLAG_END:
            following = (last + 1) & 0xFFFFFFFF
            if following not in fragments or fragments[following][1] != stream:
                return
            last = following
        pieces = []
        at = first
        while True:
            pieces.append(fragments.pop(at)[3])
            direction.fragment_bytes -= len(pieces[-1])
            if at == last:
                break
            at = (at + 1) & 0xFFFFFFFF
        self._message(way, stream, ppid, b"".join(pieces), frame, deliver)  # every fragment carries the PPID (§3.3.1)

    def _message(self, way: int, stream: int, ppid: int, user: bytes, frame: Frame, deliver: Deliver) -> None:
        if ppid not in (PPID_DIAMETER, PPID_UNSPECIFIED):
            if (way, ppid) not in self.warned:
                self.warned.add((way, ppid))
                what = "DTLS, not readable without keys" if ppid == PPID_DIAMETER_DTLS else f"payload protocol {ppid}, not Diameter; skipped"
                self.report(way, what)
            return
        framer = Framer(lambda text: self.report(way, f"SCTP stream {stream}: {text}"), self.max_message)
        for message in framer.feed(user):
            deliver(way, message, frame)
        if framer.buffer and not framer.lost:
            self.report(way, f"SCTP stream {stream}: a user message ends inside a Diameter message ({len(framer.buffer)} bytes); dropped")

    def finish(self, deliver: Deliver) -> None:
        for way, direction in enumerate(self.directions):
            if direction.fragments:
                self.report(way, f"{len(direction.fragments)} SCTP fragments never completed a user message")
