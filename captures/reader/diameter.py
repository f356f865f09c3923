"""Framing one direction of a byte stream into Diameter messages (RFC 6733 §3).

A message is the 20-byte header (version 1, a 24-bit Message Length covering the whole
message, flags, Command-Code, Application-Id, Hop-by-Hop and End-to-End Identifiers)
followed by AVPs (§4.1: code, flags, 24-bit length, optional Vendor-Id, data padded to
32 bits). In sync, a header with version 1 and a length from 20 to ``max_message`` is
taken as is: a malformed message still gets framed and handed on, so its validator can
say what is wrong with it.

Out of sync (a gap in the capture, garbage, a capture that starts inside a connection)
the framer scans for a *plausible* header: version 1, a length that is a multiple of 4
within bounds, no reserved flag bits (§3: R, P, E, T only; E never on a request), and AVP
headers that chain within the message (§4.1: reserved AVP flag bits clear, lengths of at
least 8, or 12 with the V bit), ending exactly at the message's end once it is whole.
The buffer never holds more than one message and one segment: memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable

DEFAULT_MAX_MESSAGE = 1 << 20  # a Cx message is a few kB; a length beyond this is garbage
_RESERVED_FLAGS = 0x0F
_REQUEST, _ERROR = 0x80, 0x20


def plausible(view: bytes | bytearray, offset: int, end: int, max_message: int) -> bool:
    """Whether ``view[offset:end]`` starts with a plausible Diameter message (see above)."""
    if end - offset < 20 or view[offset] != 1:
        return False
    length = (view[offset + 1] << 16) | (view[offset + 2] << 8) | view[offset + 3]
    flags = view[offset + 4]
    if length < 20 or length & 3 or length > max_message or flags & _RESERVED_FLAGS:
        return False
    if flags & _REQUEST and flags & _ERROR:
        return False
    stop = offset + length
    at = offset + 20
    limit = min(stop, end)
    while at + 8 <= limit:
        avp_flags = view[at + 4]
        avp_length = (view[at + 5] << 16) | (view[at + 6] << 8) | view[at + 7]
        if avp_flags & 0x1F or avp_length < (12 if avp_flags & 0x80 else 8) or at + avp_length > stop:
            return False
        at += (avp_length + 3) & ~3
    if stop <= end:  # the whole message is here: its AVPs must fill it exactly
        return at == stop
    return True


class Framer:
    """Bytes of one direction in (``feed``, ``gap``), whole messages out.

    ``report(text)`` is called for what is wrong (garbage, a lost message, a resync);
    the caller knows the frame and stream to put on it.
    """

    __slots__ = ("buffer", "lost", "skip", "skipped", "max_message", "report", "quiet")

    def __init__(self, report: Callable[[str], None], max_message: int = DEFAULT_MAX_MESSAGE, *, lost: bool = False) -> None:
        self.buffer = bytearray()
        self.lost = lost  # out of sync: scanning for a plausible header
        self.quiet = lost  # a capture that starts inside a connection: skipping is expected
        self.skip = 0  # bytes still to drop: the rest of a message a gap cut
        self.skipped = 0  # bytes dropped while out of sync, reported when back in sync
        self.max_message = max_message
        self.report = report

    def feed(self, data: bytes) -> list[bytes]:
        """The messages that ``data`` completes, in order."""
        if self.skip:
            if len(data) <= self.skip:
                self.skip -= len(data)
                return []
            data = data[self.skip :]
            self.skip = 0
        buffer = self.buffer
        if buffer:
            buffer += data
            view: bytes | bytearray = buffer
        else:
            view = data
        messages: list[bytes] = []
        offset, end = 0, len(view)
        max_message = self.max_message
        while end - offset >= 4:
            if self.lost:
                offset = self._resync(view, offset, end)
                if self.lost:
                    break
            length = (view[offset + 1] << 16) | (view[offset + 2] << 8) | view[offset + 3]
            if view[offset] != 1 or length < 20 or length > max_message:
                self.report(
                    f"not a Diameter header (version {view[offset]}, length {length}; "
                    f"bytes {bytes(view[offset:offset + 8]).hex()}): skipping to the next plausible message"
                )
                self.lost, self.quiet = True, False
                continue
            if end - offset < length:
                break
            messages.append(bytes(view[offset : offset + length]))
            offset += length
        if view is buffer:
            del buffer[:offset]
        elif offset < end:
            buffer += data[offset:]
        return messages

    def _resync(self, view: bytes | bytearray, offset: int, end: int) -> int:
        """The offset of the first plausible header at or after ``offset``; when there is
        none yet, drops what cannot start one and stays lost."""
        find = view.find
        at = offset
        while True:
            at = find(b"\x01", at, end)
            if at < 0 or end - at < 20:
                keep = at if at >= 0 else end
                keep = max(offset, min(keep, end - 19))
                self.skipped += keep - offset
                return keep
            if plausible(view, at, end, self.max_message):
                self.skipped += at - offset
                length = (view[at + 1] << 16) | (view[at + 2] << 8) | view[at + 3]
                if at + length > end:
                    return at  # wait for the rest before trusting it (still lost)
                if self.skipped and not self.quiet:
                    self.report(f"{self.skipped} bytes that are not Diameter skipped; resynchronised on a message header")
                self.skipped = 0
                self.lost = self.quiet = False
                return at
            at += 1

    def gap(self, size: int) -> None:
        """``size`` bytes of the stream are missing from the capture here."""
        buffer = self.buffer
        if self.lost:
            buffer.clear()
            return
        if len(buffer) >= 4:
            length = (buffer[1] << 16) | (buffer[2] << 8) | buffer[3]
            remaining = length - len(buffer)
            self.report(f"{size} bytes missing from the capture: a message of {length} bytes lost")
            buffer.clear()
            if size < remaining:
                self.skip = remaining - size  # the next message starts right after this one
            elif size > remaining:
                self.lost = True
            return
        self.report(f"{size} bytes missing from the capture; resynchronising on the next message header")
        buffer.clear()
        self.lost = True

    def finish(self) -> str | None:
        """What is left unread at the end of the capture, said in words (or None)."""
        buffer = self.buffer
        if self.lost and self.skipped + len(buffer) and not self.quiet:
            return f"{self.skipped + len(buffer)} bytes that are not Diameter at the end of the stream"
        if self.lost and self.quiet and self.skipped + len(buffer):
            return f"no Diameter message found in {self.skipped + len(buffer)} bytes (not Diameter, or its start not captured)"
        if not buffer:
            return None
        if len(buffer) >= 4:
            length = (buffer[1] << 16) | (buffer[2] << 8) | buffer[3]
            return f"the capture ends inside a message ({len(buffer)} of {length} bytes)"
        return f"the capture ends inside a message header ({len(buffer)} bytes)"
