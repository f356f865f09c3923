"""A small, fast writer of classic libpcap files carrying Diameter over synthetic TCP.

    with PcapWriter("cx.pcap") as pcap:
        pcap.write_message(mar_bytes, src=("192.0.2.10", 40000), dst=("192.0.2.20", 3868))
        pcap.write_message(maa_bytes, src=("192.0.2.20", 3868), dst=("192.0.2.10", 40000))

Each (address, port) pair is one TCP connection: the first message on it is preceded by
a three-way handshake (SYN, SYN-ACK, ACK), every message then travels as PSH/ACK segments
of at most ``mss`` bytes with per-direction sequence numbers and the peer's next
sequence number as acknowledgement, so Wireshark sees a clean stream with no "previous
segment not captured" or "ACKed unseen segment". IPv4 and TCP checksums are computed
(RFC 791, RFC 793 with the RFC 1071 one's-complement sum; for IPv6 the RFC 8200 §8.1
pseudo-header). IPv4 and IPv6 (both ends of one connection of the same family).

File formats: libpcap 2.4, microsecond timestamps, magic 0xa1b2c3d4 in native byte order
(https://www.tcpdump.org/manual/pcap-savefile.html), or pcapng (``PcapngWriter``,
draft-ietf-opsawg-pcapng: one Section Header Block, one Interface Description Block, an
Enhanced Packet Block per packet, which may carry an opt_comment); link type Ethernet (1)
with locally administered MAC addresses derived from the IP addresses, or raw IP (101).
Ports are taken as given: tshark dissects Diameter on 3868 only unless told
``-d tcp.port==PORT,diameter``.
"""

from __future__ import annotations

import array
import ipaddress
import os
import struct
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import BinaryIO

LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101  # raw IPv4/IPv6, no link header

PCAP_MAGIC = 0xA1B2C3D4  # microsecond timestamps
_GLOBAL_HEADER = struct.Struct("=IHHiIII")
_RECORD_HEADER = struct.Struct("=IIII")
_IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
_TCP_HEADER = struct.Struct("!HHIIBBHHH")
_IPV6_HEADER = struct.Struct("!IHBB16s16s")

ETHERTYPE_IPV4 = b"\x08\x00"
ETHERTYPE_IPV6 = b"\x86\xdd"
IPPROTO_TCP = 6
TCP_FIN, TCP_SYN, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x08, 0x10
DEFAULT_MSS = 1460  # Ethernet MTU 1500 - 20 (IPv4) - 20 (TCP)

Endpoint = tuple[str, int]
Timestamp = float | datetime | None


def internet_checksum(data: bytes) -> bytes:
    """RFC 1071 checksum, as the 2 bytes to put in the header.

    The one's-complement sum does not depend on byte order (RFC 1071 §2.B), so summing
    native-order 16-bit words and writing the result back in native order is correct
    on any host, and ``array`` does the sum in C.
    """
    if len(data) & 1:
        data += b"\0"
    words = array.array("H")
    words.frombytes(data)
    total = sum(words)
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return struct.pack("=H", ~total & 0xFFFF)


def _mac(address: bytes) -> bytes:
    # locally administered unicast (02:...), unique per IPv4 address (the low 40 bits of IPv6)
    return b"\x02\x00" + address if len(address) == 4 else b"\x02" + address[-5:]


@dataclass(slots=True)
class _Direction:
    """One direction of a TCP connection: its next sequence number."""

    next_seq: int


@dataclass(slots=True)
class _Connection:
    directions: dict[tuple[Endpoint, Endpoint], _Direction]
    established: bool = False


class PcapWriter:
    """Writes Diameter messages as TCP segments into a classic pcap file.

    ``file`` is a path (opened, and closed by ``close()``) or a binary file object (left
    open). ``linktype`` is ``LINKTYPE_ETHERNET`` (default) or ``LINKTYPE_RAW``.
    """

    def __init__(
        self,
        file: str | os.PathLike[str] | BinaryIO,
        *,
        linktype: int = LINKTYPE_ETHERNET,
        mss: int = DEFAULT_MSS,
        snaplen: int = 262144,
        handshake: bool = True,
    ) -> None:
        if linktype not in (LINKTYPE_ETHERNET, LINKTYPE_RAW):
            raise ValueError(f"linktype {linktype}: use LINKTYPE_ETHERNET (1) or LINKTYPE_RAW (101)")
        if not 1 <= mss <= 65495:
            raise ValueError(f"mss {mss}: must be 1..65495 so a segment fits one IPv4 packet")
        if isinstance(file, (str, os.PathLike)):
            self._file: BinaryIO = open(file, "wb")  # noqa: SIM115 - closed by close()
            self._owned = True
        else:
            self._file = file
            self._owned = False
        self.linktype = linktype
        self.mss = mss
        self.snaplen = snaplen
        self.handshake = handshake
        self.packets = 0
        self._ip_id = 0
        self._last_time = 0.0
        self._connections: dict[frozenset[Endpoint], _Connection] = {}
        self._packed: dict[str, bytes] = {}
        self._sums: dict[bytes, int] = {}
        self._comment: str | None = None  # for the next packet (pcapng only)
        self.bytes_written = 0
        self._header()

    def _header(self) -> None:
        self._emit(_GLOBAL_HEADER.pack(PCAP_MAGIC, 2, 4, 0, 0, self.snaplen, self.linktype))

    def _emit(self, data: bytes) -> None:
        self._file.write(data)
        self.bytes_written += len(data)

    def _record(self, when: float, frame: bytes) -> None:
        """One packet record (pcap-savefile: ts_sec, ts_usec, incl_len, orig_len, data)."""
        seconds = int(when)
        micros = int(round((when - seconds) * 1_000_000))
        if micros >= 1_000_000:
            seconds, micros = seconds + 1, micros - 1_000_000
        captured = frame[: self.snaplen]
        self._emit(_RECORD_HEADER.pack(seconds, micros, len(captured), len(frame)) + captured)

    # -- public API -------------------------------------------------------------------
    def write_message(
        self,
        data: bytes,
        *,
        src: Endpoint,
        dst: Endpoint,
        timestamp: Timestamp = None,
        comment: str | None = None,
    ) -> int:
        """Write one message (any bytes: one Diameter message, or several back to back)
        from ``src`` to ``dst``; returns the number of packets written.

        ``timestamp``: seconds since the epoch, an aware or naive-UTC datetime, or None
        for the current time (never earlier than the previous packet). ``comment``: put on
        the first packet written (pcapng only; classic pcap has no comments).
        """
        when = self._time(timestamp)
        self._comment = comment
        connection = self._connection(src, dst)
        written = 0
        if not connection.established:
            if self.handshake:
                written += self._handshake(connection, src, dst, when)
            connection.established = True
        forward = connection.directions[(src, dst)]
        backward = connection.directions[(dst, src)]
        view = memoryview(bytes(data))
        for start in range(0, len(view), self.mss):
            chunk = view[start : start + self.mss]
            self._segment(src, dst, forward.next_seq, backward.next_seq, TCP_PSH | TCP_ACK, chunk, when)
            forward.next_seq = (forward.next_seq + len(chunk)) & 0xFFFFFFFF
            written += 1
        return written

    def write_messages(
        self, messages: Iterable[tuple[bytes, Endpoint, Endpoint]], *, timestamp: Timestamp = None
    ) -> int:
        """Write ``(data, src, dst)`` tuples in order; returns the packets written."""
        return sum(self.write_message(data, src=src, dst=dst, timestamp=timestamp) for data, src, dst in messages)

    def open_connection(
        self, client: Endpoint, server: Endpoint, *, timestamp: Timestamp = None, comment: str | None = None
    ) -> int:
        """The three-way handshake of ``client`` connecting to ``server`` now (rather than
        before the first message, whose sender would be taken as the client); returns the
        packets written (0 when the connection is already open)."""
        when = self._time(timestamp)
        connection = self._connection(client, server)
        if connection.established:
            return 0
        self._comment = comment
        connection.established = True
        return self._handshake(connection, client, server, when) if self.handshake else 0

    def is_open(self, src: Endpoint, dst: Endpoint) -> bool:
        """Whether a connection between the two endpoints has been written and not closed."""
        return frozenset((src, dst)) in self._connections

    def close_connection(self, src: Endpoint, dst: Endpoint, *, timestamp: Timestamp = None) -> int:
        """FIN from ``src``, FIN/ACK back, final ACK (RFC 793 §3.5); forgets the connection."""
        when = self._time(timestamp)
        connection = self._connection(src, dst)
        forward = connection.directions[(src, dst)]
        backward = connection.directions[(dst, src)]
        self._segment(src, dst, forward.next_seq, backward.next_seq, TCP_FIN | TCP_ACK, b"", when)
        forward.next_seq = (forward.next_seq + 1) & 0xFFFFFFFF
        self._segment(dst, src, backward.next_seq, forward.next_seq, TCP_FIN | TCP_ACK, b"", when)
        backward.next_seq = (backward.next_seq + 1) & 0xFFFFFFFF
        self._segment(src, dst, forward.next_seq, backward.next_seq, TCP_ACK, b"", when)
        del self._connections[frozenset((src, dst))]
        return 3

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        if self._owned:
            self._file.close()
        else:
            self._file.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------
    def _time(self, timestamp: Timestamp) -> float:
        if timestamp is None:
            when = max(time.time(), self._last_time)
        elif isinstance(timestamp, datetime):
            when = timestamp.timestamp()
        else:
            when = float(timestamp)
        self._last_time = when
        return when

    def _connection(self, src: Endpoint, dst: Endpoint) -> _Connection:
        key = frozenset((src, dst))
        connection = self._connections.get(key)
        if connection is None:
            for address, port in (src, dst):
                if not 0 <= port <= 0xFFFF:
                    raise ValueError(f"port {port} of {address}: must be 0..65535")
                try:
                    packed = self._packed[address] = ipaddress.ip_address(address).packed
                except ValueError:
                    raise ValueError(f"address {address!r}: not an IPv4 or IPv6 address") from None
                self._sums[packed] = _words_sum(packed)
            if len(self._packed[src[0]]) != len(self._packed[dst[0]]):
                raise ValueError(f"{src[0]} and {dst[0]}: one connection's addresses must be of one family")

            # Deterministic initial sequence numbers: the same input gives the same file.
            def isn(a: Endpoint, b: Endpoint) -> int:
                return zlib.crc32(f"{a[0]}:{a[1]}>{b[0]}:{b[1]}".encode())

            connection = _Connection({(src, dst): _Direction(isn(src, dst)), (dst, src): _Direction(isn(dst, src))})
            self._connections[key] = connection
        return connection

    def _handshake(self, connection: _Connection, client: Endpoint, server: Endpoint, when: float) -> int:
        # RFC 793 §3.4: SYN, SYN-ACK, ACK; each SYN consumes one sequence number
        forward = connection.directions[(client, server)]
        backward = connection.directions[(server, client)]
        self._segment(client, server, forward.next_seq, 0, TCP_SYN, b"", when)
        forward.next_seq = (forward.next_seq + 1) & 0xFFFFFFFF
        self._segment(server, client, backward.next_seq, forward.next_seq, TCP_SYN | TCP_ACK, b"", when)
        backward.next_seq = (backward.next_seq + 1) & 0xFFFFFFFF
        self._segment(client, server, forward.next_seq, backward.next_seq, TCP_ACK, b"", when)
        return 3

    def _segment(
        self,
        src: Endpoint,
        dst: Endpoint,
        seq: int,
        ack: int,
        flags: int,
        payload: bytes | memoryview,
        when: float,
    ) -> None:
        src_ip = self._packed[src[0]]
        dst_ip = self._packed[dst[0]]
        addresses = self._sums[src_ip] + self._sums[dst_ip]
        tcp_length = 20 + len(payload)
        # TCP checksum over pseudo-header, header and payload (RFC 793 §3.1; the IPv6
        # pseudo-header of RFC 8200 §8.1 sums to the same words), summed as integers for
        # the headers and in C for the payload, without concatenating them.
        total = (
            addresses
            + IPPROTO_TCP
            + tcp_length
            + src[1]
            + dst[1]
            + (seq >> 16)
            + (seq & 0xFFFF)
            + (ack >> 16)
            + (ack & 0xFFFF)
            + ((5 << 12) | flags)
            + 65535
            + _payload_sum(payload)
        )
        tcp = _TCP_HEADER.pack(src[1], dst[1], seq, ack, 5 << 4, flags, 65535, _fold(total), 0)
        if len(src_ip) == 4:
            self._ip_id = (self._ip_id + 1) & 0xFFFF
            # version 4, IHL 5; DF set (0x4000); TTL 64 (RFC 791 §3.1)
            ip_total = 0x4500 + 20 + tcp_length + self._ip_id + 0x4000 + (64 << 8 | IPPROTO_TCP) + addresses
            ip = _IPV4_HEADER.pack(
                0x45, 0, 20 + tcp_length, self._ip_id, 0x4000, 64, IPPROTO_TCP, _fold(ip_total), src_ip, dst_ip
            )
            ethertype = ETHERTYPE_IPV4
        else:
            # version 6, no traffic class or flow label; next header TCP, hop limit 64 (RFC 8200 §3)
            ip = _IPV6_HEADER.pack(6 << 28, tcp_length, IPPROTO_TCP, 64, src_ip, dst_ip)
            ethertype = ETHERTYPE_IPV6
        if self.linktype == LINKTYPE_ETHERNET:
            frame = b"".join((_mac(dst_ip), _mac(src_ip), ethertype, ip, tcp, payload))
        else:
            frame = b"".join((ip, tcp, payload))
        self._record(when, frame)
        self.packets += 1


def _fold(total: int) -> int:
    """One's-complement of the 16-bit one's-complement sum (RFC 1071 §4.1)."""
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _words_sum(address: bytes) -> int:
    """Sum of an address's 16-bit network-order words (4 or 16 bytes)."""
    return sum(struct.unpack(f"!{len(address) // 2}H", address))


def _payload_sum(payload: bytes | memoryview) -> int:
    """16-bit one's-complement sum of the payload as network-order words.

    2**16 is 1 modulo 0xFFFF, so the big-endian integer of the data modulo 0xFFFF is the
    end-around-carry sum of its 16-bit words (RFC 1071 §2), computed in C. (It gives 0
    where the folded sum gives 0xFFFF; both are zero in one's-complement arithmetic.)
    """
    if len(payload) & 1:
        payload = bytes(payload) + b"\0"
    return int.from_bytes(payload, "big") % 0xFFFF


# -- pcapng (draft-ietf-opsawg-pcapng, https://ietf-opsawg-wg.github.io/draft-ietf-opsawg-pcap/)
_SHB, _IDB, _EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
_BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPT_COMMENT, SHB_USERAPPL = 1, 4


def _option(code: int, value: bytes) -> bytes:
    """An option: code, length, value padded to 32 bits (§3.5)."""
    return struct.pack("=HH", code, len(value)) + value + b"\0" * (-len(value) & 3)


def _block(kind: int, body: bytes) -> bytes:
    """A block: type, total length, body (padded to 32 bits), total length again (§3.1)."""
    body += b"\0" * (-len(body) & 3)
    length = 12 + len(body)
    return struct.pack("=II", kind, length) + body + struct.pack("=I", length)


class PcapngWriter(PcapWriter):
    """The same packets in a pcapng file: one section, one interface with microsecond
    timestamps (if_tsresol absent means 10^-6, §4.2), an Enhanced Packet Block per packet
    (§4.3) carrying the comment given with ``write_message`` / ``open_connection``."""

    def _header(self) -> None:
        options = _option(SHB_USERAPPL, b"cxgw") + _option(0, b"")
        # Section Header Block (§4.1): byte-order magic, version 1.0, section length unknown (-1)
        self._emit(_block(_SHB, struct.pack("=IHHq", _BYTE_ORDER_MAGIC, 1, 0, -1) + options))
        # Interface Description Block (§4.2): link type, reserved, snaplen
        self._emit(_block(_IDB, struct.pack("=HHI", self.linktype, 0, self.snaplen)))

    def _record(self, when: float, frame: bytes) -> None:
        micros = int(round(when * 1_000_000))
        captured = frame[: self.snaplen]
        body = struct.pack("=IIIII", 0, micros >> 32, micros & 0xFFFFFFFF, len(captured), len(frame))
        body += captured + b"\0" * (-len(captured) & 3)
        comment = self._comment
        if comment is not None:
            self._comment = None
            body += _option(OPT_COMMENT, comment.encode()) + _option(0, b"")
        self._emit(_block(_EPB, body))


__all__ = [
    "DEFAULT_MSS",
    "LINKTYPE_ETHERNET",
    "LINKTYPE_RAW",
    "PcapWriter",
    "PcapngWriter",
    "internet_checksum",
]
