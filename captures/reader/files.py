"""The capture file formats: classic libpcap and pcapng, read record by record.

- libpcap (https://www.tcpdump.org/manual/pcap-savefile.html, draft-ietf-opsawg-pcap):
  a 24-byte file header whose magic says the byte order and the timestamp unit
  (0xa1b2c3d4 microseconds, 0xa1b23c4d nanoseconds), then 16-byte record headers
  (ts_sec, ts_frac, incl_len, orig_len) each followed by incl_len bytes.
- pcapng (draft-ietf-opsawg-pcapng): blocks of (type, total length, body, total length).
  A Section Header Block (§4.1) sets the byte order of its section and forgets the
  interfaces of the previous one; each Interface Description Block (§4.2) adds an
  interface with its link type, snaplen and timestamp resolution (if_tsresol, option 9;
  if_tsoffset, option 14); packets are Enhanced Packet Blocks (§4.3), Simple Packet Blocks
  (§4.4, interface 0, no timestamp) or the obsolete Packet Block (Appendix A). Every
  packet block is one frame, numbered from 1 as Wireshark numbers them.

The file is read through a buffered reader record by record: memory does not grow with
the file. A damaged file never raises: what is wrong is reported through ``problem``
(frame number, text). After a record or block header that cannot be right (a length
beyond any packet, pcapng lengths that disagree), the reader scans ahead, at most
RESYNC_WINDOW bytes at a time, for the next plausible one (a pcap record header whose
lengths and time fit and whose successor does too; a pcapng block of a known type whose
two lengths agree) and goes on from there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

PCAP_MAGICS: dict[bytes, tuple[str, int]] = {
    # first four bytes -> (struct byte order, timestamp units per second)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"  # Section Header Block type, the same in both byte orders
BYTE_ORDER_MAGIC = 0x1A2B3C4D

BLOCK_SHB, BLOCK_IDB, BLOCK_PB, BLOCK_SPB, BLOCK_EPB = 0x0A0D0D0A, 1, 2, 3, 6
OPT_END, OPT_COMMENT, IF_TSRESOL, IF_TSOFFSET = 0, 1, 9, 14

MAX_RECORD = 1 << 20  # a packet record beyond this is not a packet (snaplens are 262144 at most)
MAX_BLOCK = 16 << 20  # a pcapng block beyond this is taken as a corrupt length
RESYNC_WINDOW = 1 << 20  # bytes scanned at a time for the next plausible record after damage
KNOWN_BLOCKS = frozenset({0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x0A, 0x0BAD, 0x40000BAD})  # §4-§4.7, Appendix A
DAY = 86400

ProblemSink = Callable[[int | None, str], None]


@dataclass(slots=True)
class Frame:
    """One packet record: what the file holds of it and about it."""

    number: int  # 1-based
    time: float  # epoch seconds
    linktype: int
    data: bytes  # the captured bytes (possibly fewer than the packet had)
    original_length: int  # the packet's length on the wire
    comment: str | None = None
    interface: int = 0


class NotACapture(ValueError):
    """The file is neither pcap nor pcapng (the one error the reader raises)."""


def capture_format(prefix: bytes) -> str | None:
    """'pcap', 'pcapng' or None, from the first four bytes of a file."""
    if prefix[:4] in PCAP_MAGICS:
        return "pcap"
    if prefix[:4] == PCAPNG_MAGIC:
        return "pcapng"
    return None


def frames(file: BinaryIO, prefix: bytes, problem: ProblemSink) -> Iterator[Frame]:
    """The frames of the file, whose first bytes (already read) are ``prefix``."""
    kind = capture_format(prefix)
    if kind == "pcap":
        yield from _pcap_frames(file, prefix, problem)
    elif kind == "pcapng":
        yield from _pcapng_frames(file, prefix, problem)


def _read(file: BinaryIO, size: int) -> bytes:
    return file.read(size) if size > 0 else b""


class _Source:
    """The file, with bytes scanned ahead during a resync put back in front of it."""

    __slots__ = ("file", "pending")

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.pending = b""

    def read(self, size: int) -> bytes:
        if not self.pending:
            return self.file.read(size) if size > 0 else b""
        data, self.pending = self.pending[:size], self.pending[size:]
        if len(data) < size:
            data += self.file.read(size - len(data))
        return data

    def resync(self, bad: bytes, header: int, plausible: Callable[[bytes, int, bool], bool]) -> int | None:
        """Skip to the first offset after the start of ``bad`` (the damaged header and
        what was read with it) where ``plausible(window, offset, at_end)`` holds; the
        bytes skipped, or None when the file ends first."""
        window, first, skipped = bad, 1, 0
        while True:
            more = self.read(RESYNC_WINDOW)
            window += more
            for offset in range(first, len(window) - header + 1):
                if plausible(window, offset, not more):
                    self.pending = window[offset:] + self.pending
                    return skipped + offset
            if not more:
                return None
            keep = max(first, len(window) - header + 1)
            skipped += keep
            window, first = window[keep:], 0


# -- libpcap ------------------------------------------------------------------------------
def _pcap_frames(file: BinaryIO, prefix: bytes, problem: ProblemSink) -> Iterator[Frame]:
    order, units = PCAP_MAGICS[prefix[:4]]
    header = prefix + _read(file, 24 - len(prefix))
    if len(header) < 24:
        problem(None, f"the file ends inside its pcap file header ({len(header)} of 24 bytes): no frames")
        return
    _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(order + "HHiIII", header[4:24])
    linktype &= 0x0FFFFFFF  # the upper bits may carry the FCS length (pcap-savefile, LinkType field)
    record = struct.Struct(order + "IIII")
    source = _Source(file)
    read = source.read
    limit = snaplen if 0 < snaplen <= MAX_RECORD else MAX_RECORD
    last = [0]  # seconds of the last good record

    def fits(seconds: int, fraction: int, included: int, original: int) -> bool:
        return 0 < included <= limit and included <= original <= MAX_RECORD and fraction < units and (
            not last[0] or abs(seconds - last[0]) <= DAY
        )

    def plausible(window: bytes, offset: int, at_end: bool) -> bool:
        seconds, fraction, included, original = record.unpack_from(window, offset)
        if not fits(seconds, fraction, included, original):
            return False
        following = offset + 16 + included
        if following + 16 <= len(window):  # the next record header must fit too
            after = record.unpack_from(window, following)
            return fits(*after) and abs(after[0] - seconds) <= DAY
        return following == len(window) or not at_end

    number = 0
    while True:
        head = read(16)
        if not head:
            return
        number += 1
        if len(head) < 16:
            problem(number, f"frame {number}: the file ends inside its record header ({len(head)} of 16 bytes; truncated capture)")
            return
        seconds, fraction, included, original = record.unpack(head)
        if included > MAX_RECORD:
            what = f"frame {number}: record length {included} is not plausible (over {MAX_RECORD})"
            skipped = source.resync(head, 16, plausible)
            if skipped is None:
                problem(number, f"{what}; no plausible record follows: the rest of the file is not readable")
                return
            problem(number, f"{what}; {skipped} bytes skipped to the next plausible record")
            continue
        data = read(included)
        frame = Frame(number, seconds + fraction / units, linktype, data, max(original, len(data)))
        if len(data) < included:
            problem(number, f"frame {number}: the file ends inside it ({len(data)} of {included} bytes; truncated capture)")
            frame.original_length = max(original, included)
            yield frame
            return
        last[0] = seconds
        yield frame


# -- pcapng -------------------------------------------------------------------------------
@dataclass(slots=True)
class _Interface:
    linktype: int
    resolution: float  # seconds per timestamp unit
    offset: int  # seconds added to every timestamp (if_tsoffset)


def _options(body: bytes, start: int, order: str) -> Iterator[tuple[int, bytes]]:
    """The options of a block body from ``start`` (§3.5): code, length, padded value."""
    header = struct.Struct(order + "HH")
    offset = start
    while offset + 4 <= len(body):
        code, length = header.unpack_from(body, offset)
        if code == OPT_END:
            return
        value = body[offset + 4 : offset + 4 + length]
        if len(value) < length:
            return
        yield code, value
        offset += 4 + length + (-length & 3)


def _resolution(value: bytes) -> float:
    """if_tsresol (§4.2): the high bit says a power of 2, otherwise of 10."""
    exponent = value[0] & 0x7F
    return 2.0**-exponent if value[0] & 0x80 else 10.0**-exponent


def _pcapng_frames(file: BinaryIO, prefix: bytes, problem: ProblemSink) -> Iterator[Frame]:
    source = _Source(file)
    read = source.read
    pending = prefix
    order = "<"

    def plausible(window: bytes, offset: int, at_end: bool) -> bool:
        kind, length = struct.unpack_from(order + "II", window, offset)
        if kind not in KNOWN_BLOCKS or length < 12 or length & 3 or length > MAX_BLOCK:
            return False
        if offset + length <= len(window):
            return struct.unpack_from(order + "I", window, offset + length - 4)[0] == length
        return not at_end

    interfaces: list[_Interface] = []
    number = 0
    last_time = 0.0
    while True:
        head = pending + read(8 - len(pending))
        pending = b""
        if not head:
            return
        where = f"after frame {number}" if number else "before the first frame"
        if len(head) < 8:
            problem(number or None, f"the file ends inside a block header {where} ({len(head)} of 8 bytes; truncated capture)")
            return
        raw_type = head[:4]
        if raw_type == PCAPNG_MAGIC:
            magic = read(4)
            if magic == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif magic == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                problem(number or None, f"a Section Header Block {where} has no valid byte-order magic ({magic.hex() or 'none'}); the rest of the file is not readable")
                return
            interfaces = []
            (total,) = struct.unpack(order + "I", head[4:8])
            body_start = 4  # the byte-order magic is already read
        else:
            body_start, magic = 0, b""
            (total,) = struct.unpack(order + "I", head[4:8])
        (block_type,) = struct.unpack(order + "I", raw_type)
        packet_block = block_type in (BLOCK_EPB, BLOCK_SPB, BLOCK_PB)
        if packet_block:  # a damaged packet keeps its frame number, so the ones after keep theirs
            block = f"frame {number + 1}: its block (type 0x{block_type:08x})"
        else:
            block = f"a block {where} (type 0x{block_type:08x})"
        if total < 12 or total & 3 or total > MAX_BLOCK:
            what = f"{block} has an impossible length {total} (needs 12 or more, a multiple of 4)"
            number += packet_block
            skipped = source.resync(head + magic, 8, plausible)
            if skipped is None:
                problem(number or None, f"{what}; no plausible block follows: the rest of the file is not readable")
                return
            problem(number or None, f"{what}; {skipped} bytes skipped to the next plausible block")
            continue
        rest = read(total - 8 - body_start)
        if len(rest) < total - 8 - body_start:
            if packet_block:
                number += 1
                problem(number, f"frame {number}: the file ends inside its block ({len(rest) + 8 + body_start} of {total} bytes; truncated capture)")
            else:
                problem(number or None, f"the file ends inside a block {where} ({len(rest) + 8 + body_start} of {total} bytes; truncated capture)")
            return
        body = rest[:-4]  # of a Section Header Block: after its byte-order magic
        (trailer,) = struct.unpack(order + "I", rest[-4:])
        if trailer != total:
            number += packet_block
            skipped = source.resync(head + magic + rest, 8, plausible)
            what = f"{block} says length {total} at its start and {trailer} at its end (corrupt block)"
            if skipped is None:
                problem(number or None, f"{what}; no plausible block follows: the rest of the file is not readable")
                return
            problem(number or None, f"{what}; {skipped} bytes skipped to the next plausible block")
            continue
        if block_type == BLOCK_SHB:
            continue
        if block_type == BLOCK_IDB:
            if len(body) < 8:
                problem(number or None, f"an Interface Description Block {where} is too short ({len(body)} bytes)")
                interfaces.append(_Interface(-1, 1e-6, 0))
                continue
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            interface = _Interface(linktype, 1e-6, 0)
            for code, value in _options(body, 8, order):
                if code == IF_TSRESOL and value:
                    interface.resolution = _resolution(value)
                elif code == IF_TSOFFSET and len(value) == 8:
                    interface.offset = struct.unpack(order + "q", value)[0]
            interfaces.append(interface)
            continue
        if block_type not in (BLOCK_EPB, BLOCK_SPB, BLOCK_PB):
            continue  # name resolution, statistics, decryption secrets, custom blocks
        number += 1
        comment = None
        if block_type == BLOCK_SPB:
            index, when = 0, last_time
            if len(body) < 4:
                problem(number, f"frame {number}: Simple Packet Block too short ({len(body)} bytes)")
                continue
            (original,) = struct.unpack_from(order + "I", body, 0)
            if not interfaces:
                problem(number, f"frame {number}: a packet before any Interface Description Block; skipped")
                continue
            data, options_at = body[4 : 4 + original], None
        else:
            if block_type == BLOCK_EPB:
                if len(body) < 20:
                    problem(number, f"frame {number}: Enhanced Packet Block too short ({len(body)} bytes)")
                    continue
                index, high, low, captured, original = struct.unpack_from(order + "IIIII", body, 0)
            else:
                if len(body) < 20:
                    problem(number, f"frame {number}: Packet Block too short ({len(body)} bytes)")
                    continue
                index, _drops, high, low, captured, original = struct.unpack_from(order + "HHIIII", body, 0)
            if captured > len(body) - 20:
                problem(number, f"frame {number}: captured length {captured} exceeds its block ({len(body) - 20} bytes); read what is there")
                captured = len(body) - 20
            data = body[20 : 20 + captured]
            options_at = 20 + captured + (-captured & 3)
            if index >= len(interfaces):
                problem(number, f"frame {number}: interface {index} was not described (the section has {len(interfaces)}); skipped")
                continue
            interface = interfaces[index]
            when = ((high << 32) | low) * interface.resolution + interface.offset
        interface = interfaces[index]
        if interface.linktype < 0:
            continue
        if options_at is not None and options_at < len(body):
            for code, value in _options(body, options_at, order):
                if code == OPT_COMMENT:
                    comment = value.decode("utf-8", "replace")
                    break
        last_time = when
        yield Frame(number, when, interface.linktype, data, max(original, len(data)), comment, index)
