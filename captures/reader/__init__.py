"""Reading Diameter messages out of real captures (pcap and pcapng from any source).

    for message in CaptureReader("cx.pcapng"):
        print(message.frame, message.source, "->", message.destination, len(message.data))

One module per layer: ``files`` (pcap and pcapng records), ``links`` (Ethernet, Linux
cooked SLL/SLL2, raw IP, NULL/loopback, VLAN tags), ``ip`` (IPv4/IPv6, fragments,
extension headers), ``tcp`` (stream reassembly), ``sctp`` (DATA chunks), ``diameter``
(framing a byte stream into messages and resynchronising after damage). This module ties
them together: frames in, :class:`CapturedMessage` out, in capture order, and every
damage found on the way as a :class:`Problem` with its frame number. Only a file that is
not a capture at all raises (:class:`NotACapture`).

Why hand-written parsing and not scapy: scapy's ``rdpcap`` builds a full layer object per
packet and reads some 7,000 messages/s here (one message per segment, taking each TCP
payload as it comes, with no reassembly); its ``TCPSession`` with a ``tcp_reassemble``
hook some 1,400/s, and it neither reorders segments nor reports gaps. Slicing headers by
hand reads the same file at some 150,000 messages/s: 22-24 times ``rdpcap``, 64-115 times
``TCPSession`` (``python bench/captures.py``, bench/RESULTS.md). Memory is bounded: the
file is read record by record, each direction's buffer holds at most one message
(``max_message``) and ``tcp.MAX_HELD`` out-of-order bytes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from captures.reader import tcp
from captures.reader.diameter import DEFAULT_MAX_MESSAGE
from captures.reader.files import Frame, NotACapture, capture_format, frames
from captures.reader.ip import (
    IPPROTO_SCTP,
    IPPROTO_TCP,
    Defragmenter,
    Packet,
    address_text,
    network,
)
from captures.reader.links import LINK_LAYERS
from captures.reader.sctp import Association
from captures.reader.tcp import ACK, SYN, Connection

MAX_PROBLEMS = 1000


@dataclass(frozen=True, slots=True)
class Endpoint:
    address: str  # "127.0.0.1" / "::1"
    port: int

    def __str__(self) -> str:
        return f"[{self.address}]:{self.port}" if ":" in self.address else f"{self.address}:{self.port}"


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    frame: int  # 1-based number of the frame that completed the message (as Wireshark numbers frames)
    time: float  # epoch seconds of that frame
    stream: int  # 0-based, in order of first appearance (a TCP connection or an SCTP association)
    transport: str  # "tcp" | "sctp"
    source: Endpoint
    destination: Endpoint
    data: bytes  # exactly one whole Diameter message (header + AVPs)
    comment: str | None = None  # the pcapng opt_comment of the frame that completed it


@dataclass(frozen=True, slots=True)
class Problem:
    frame: int | None
    stream: int | None
    text: str  # a whole sentence, frame and stream included: "frame 17: snaplen cut 1200 of 1514 bytes"

    def __str__(self) -> str:
        return self.text


class _Flow:
    """A TCP connection or SCTP association, as the reader knows it."""

    __slots__ = ("index", "transport", "endpoints", "connection", "association", "closed", "deliver", "report")

    def __init__(self, index: int, transport: str, client: Endpoint, server: Endpoint, reader: CaptureReader) -> None:
        self.index = index
        self.transport = transport
        self.endpoints = (client, server)  # direction 0 is client -> server
        self.deliver: Callable[[int, bytes, Frame], None] = lambda way, message, frame: reader._deliver(self, way, message, frame)
        self.report: Callable[[int, str], None] = lambda way, text: reader._report(self, way, text)
        self.connection: Connection | None = None  # TCP
        self.association: Association | None = None  # SCTP
        self.closed = False  # a TCP connection read to its end: its state is dropped


class CaptureReader:
    """The Diameter messages of a capture file, read as it is iterated.

    ``path_or_file``: a path, or a binary file object (read from where it stands).
    ``problems`` (the first ``max_problems``; ``problems_omitted`` counts the rest) and
    ``streams`` (index -> (transport, client, server)) fill while iterating.
    """

    def __init__(
        self,
        path_or_file: str | os.PathLike[str] | BinaryIO,
        *,
        max_message: int = DEFAULT_MAX_MESSAGE,
        max_problems: int = MAX_PROBLEMS,
    ) -> None:
        self.max_message = max_message
        self.max_problems = max_problems
        self.problems: list[Problem] = []
        self.problems_omitted = 0
        self.streams: dict[int, tuple[str, Endpoint, Endpoint]] = {}
        if isinstance(path_or_file, (str, os.PathLike)):
            self._path: str | os.PathLike[str] | None = path_or_file
            self._file: BinaryIO | None = None
            self.name = os.fspath(path_or_file)
            with open(path_or_file, "rb") as file:
                self._prefix = file.read(4)
        else:
            self._path = None
            self._file = path_or_file
            self.name = str(getattr(path_or_file, "name", "<file>"))
            self._start = path_or_file.tell() if path_or_file.seekable() else None
            self._prefix = path_or_file.read(4)
        if not self._prefix:
            raise NotACapture(f"{self.name} is empty: not a pcap or pcapng file")
        self.format = capture_format(self._prefix)
        if self.format is None:
            raise NotACapture(f"{self.name} is not a pcap or pcapng file (starts with {self._prefix.hex()})")
        self._iterated = False

    # -- problems ---------------------------------------------------------------------
    def _problem(self, frame: int | None, text: str, stream: int | None = None) -> None:
        if len(self.problems) < self.max_problems:
            self.problems.append(Problem(frame, stream, text))
        else:
            self.problems_omitted += 1

    # -- reading ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[CapturedMessage]:
        if self._path is not None:
            with open(self._path, "rb") as file:
                file.seek(len(self._prefix))
                yield from self._read(file)
            return
        assert self._file is not None
        if self._iterated:
            if self._start is None:
                raise io.UnsupportedOperation(f"{self.name}: a stream that cannot seek is read once")
            self._file.seek(self._start + len(self._prefix))
        self._iterated = True
        yield from self._read(self._file)

    def _read(self, file: BinaryIO) -> Iterator[CapturedMessage]:
        self.problems = []
        self.problems_omitted = 0
        self.streams = {}
        self._flows: dict[tuple[bytes, int, bytes, int, int], tuple[_Flow, int]] = {}
        self._all_flows: list[_Flow] = []
        self._out: list[CapturedMessage] = []
        self._frame: Frame | None = None
        self._holding: dict[Connection, int] = {}  # connections holding out-of-order bytes -> how many
        self._held_total = 0
        defragmenter = Defragmenter()
        unsupported: set[int] = set()
        problem = self._problem
        out = self._out
        for frame in frames(file, self._prefix, problem):
            self._frame = frame
            link = LINK_LAYERS.get(frame.linktype)
            if link is None:
                if frame.linktype not in unsupported:
                    unsupported.add(frame.linktype)
                    problem(frame.number, f"frame {frame.number}: link type {frame.linktype} is not supported; frames of this link type are skipped")
                continue
            data = frame.data
            if not data:
                problem(frame.number, f"frame {frame.number}: an empty record (0 bytes captured)")
                continue
            located = link(data)
            if located is None:
                continue
            packet = network(located[1], data, located[0], frame.number, defragmenter)
            if packet is None:
                continue
            if isinstance(packet, str):
                cut = f" (snaplen cut {len(data)} of {frame.original_length} bytes)" if len(data) < frame.original_length else ""
                problem(frame.number, f"frame {frame.number}: {packet}{cut}")
                continue
            if packet.missing:
                problem(frame.number, f"frame {frame.number}: snaplen cut {len(data)} of {frame.original_length} bytes")
            if packet.protocol == IPPROTO_TCP:
                self._tcp(frame, packet)
            elif packet.protocol == IPPROTO_SCTP:
                self._sctp(frame, packet)
            frame.data = b""  # held segments keep their frame for its number and time, not its bytes
            if out:
                yield from out
                out.clear()
        for first, text in defragmenter.leftovers():
            problem(first, text)
        for flow in self._all_flows:
            engine = flow.connection or flow.association
            if engine is not None:
                engine.finish(flow.deliver)
        yield from out
        out.clear()

    def _flow(self, transport: str, packet: Packet, sport: int, dport: int, client_is_source: bool) -> tuple[_Flow, int]:
        key = (packet.source, sport, packet.destination, dport, 0 if transport == "tcp" else 1)
        found = self._flows.get(key)
        if found is not None:
            return found
        source = Endpoint(address_text(packet.source), sport)
        destination = Endpoint(address_text(packet.destination), dport)
        client, server = (source, destination) if client_is_source else (destination, source)
        flow = _Flow(len(self._all_flows), transport, client, server, self)
        self._all_flows.append(flow)
        self.streams[flow.index] = (transport, client, server)
        way = 0 if client_is_source else 1
        self._flows[key] = (flow, way)
        self._flows[(packet.destination, dport, packet.source, sport, key[4])] = (flow, 1 - way)
        return flow, way

    def _forget(self, flow: _Flow) -> None:
        client, server = flow.endpoints
        kind = 0 if flow.transport == "tcp" else 1
        for a, b in ((client, server), (server, client)):
            key = (_packed(a.address), a.port, _packed(b.address), b.port, kind)
            if self._flows.get(key, (None,))[0] is flow:
                del self._flows[key]

    def _report(self, flow: _Flow, way: int, text: str) -> None:
        frame = self._frame.number if self._frame is not None else None
        source, destination = flow.endpoints if way == 0 else flow.endpoints[::-1]
        where = f"frame {frame}: " if frame is not None else ""
        self._problem(frame, f"{where}stream {flow.index} ({source} -> {destination}): {text}", flow.index)

    def _deliver(self, flow: _Flow, way: int, message: bytes, frame: Frame) -> None:
        source, destination = flow.endpoints if way == 0 else flow.endpoints[::-1]
        self._out.append(
            CapturedMessage(frame.number, frame.time, flow.index, flow.transport, source, destination, message, frame.comment)
        )

    def _tcp(self, frame: Frame, packet: Packet) -> None:
        payload = packet.payload
        if len(payload) < 20:
            self._problem(frame.number, f"frame {frame.number}: TCP header cut short ({len(payload)} of 20 bytes)")
            return
        sport = (payload[0] << 8) | payload[1]
        dport = (payload[2] << 8) | payload[3]
        seq = int.from_bytes(payload[4:8], "big")
        ack = int.from_bytes(payload[8:12], "big")
        header = (payload[12] >> 4) * 4
        flags = payload[13]
        if header < 20 or header > len(payload):
            why = "cut by the snaplen" if packet.missing and header >= 20 else "impossible"
            self._problem(frame.number, f"frame {frame.number}: TCP header length {header} {why} ({len(payload)} bytes of segment)")
            return
        flow, way = self._flow("tcp", packet, sport, dport, not (flags & SYN and flags & ACK))
        connection = flow.connection
        opening = flags & SYN and not flags & ACK
        if opening and (flow.closed or (connection is not None and connection.restarted(way, seq))):
            # a new connection on the same ports (RFC 9293 §3.4.1): a new stream
            if connection is not None:
                connection.finish(flow.deliver)
                self._account(connection)
            self._forget(flow)
            flow, way = self._flow("tcp", packet, sport, dport, True)
            connection = None
        elif flow.closed:
            return  # the last ACK, or a late retransmission, of a connection read to its end
        if connection is None:
            connection = flow.connection = Connection(flow.index, flow.report, self.max_message)
        connection.segment(way, seq, ack, flags, payload[header:], packet.missing, frame, flow.deliver)
        if connection in self._holding or not connection.idle():
            self._account(connection)
        if connection.closed and connection.idle():
            connection.finish(flow.deliver)
            flow.connection, flow.closed = None, True

    def _account(self, connection: Connection) -> None:
        """Keep the bytes all connections hold out of order under tcp.MAX_HELD_TOTAL: past
        it, the connection holding most gives up its holes (memory bounded however many
        streams a capture has)."""
        held = connection.held_bytes()
        self._held_total += held - self._holding.pop(connection, 0)
        if held:
            self._holding[connection] = held
        while self._held_total > tcp.MAX_HELD_TOTAL and self._holding:
            largest = max(self._holding, key=self._holding.__getitem__)
            self._held_total -= self._holding.pop(largest)
            largest.give_up_holes(self._all_flows[largest.index].deliver,
                                  f"out-of-order data of all streams beyond {tcp.MAX_HELD_TOTAL} bytes; "
                                  "this stream's holes taken as missing from the capture")

    def _sctp(self, frame: Frame, packet: Packet) -> None:
        payload = packet.payload
        if len(payload) < 12:
            self._problem(frame.number, f"frame {frame.number}: SCTP common header cut short ({len(payload)} of 12 bytes)")
            return
        sport = (payload[0] << 8) | payload[1]
        dport = (payload[2] << 8) | payload[3]
        initiator = len(payload) >= 13 and payload[12] == 1  # an INIT chunk (RFC 9260 §3.3.2)
        found = self._flows.get((packet.source, sport, packet.destination, dport, 1))
        flow, way = found if found is not None else self._flow("sctp", packet, sport, dport, initiator or payload[12:13] != b"\x02")
        association = flow.association
        if association is None:
            association = flow.association = Association(flow.report, self.max_message)
        association.packet(way, payload, packet.missing, frame, flow.deliver)


def _packed(address: str) -> bytes:
    import socket

    return socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)


def read_messages(path_or_file: str | os.PathLike[str] | BinaryIO) -> list[CapturedMessage]:
    """Every Diameter message of the capture (problems are not returned: use CaptureReader)."""
    return list(CaptureReader(path_or_file))


__all__ = ["CaptureReader", "CapturedMessage", "Endpoint", "NotACapture", "Problem", "read_messages"]
