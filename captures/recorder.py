"""Recording the Diameter messages a node sends and receives, as pcap or pcapng files.

The node's connections (gateway.transport.connection) hand every read and every write to
a *tap*, this :class:`Recorder`, which only appends ``(kind, connection, bytes, time)``
to a bounded queue: the reactor never frames, encodes or touches the disk for a capture.
A writer thread (``start``/``stop``; tests call ``drain`` directly) takes the queue,
frames each connection's byte stream per direction into Diameter messages (RFC 6733 §3:
the 24-bit Message Length after the version byte), applies the filters, redacts key
material and writes each message with captures.pcap as one TCP stream per connection
with its real addresses and ports: a three-way handshake when the connection opened (or
when a new file starts), FIN when it closed.

- The writer takes at most a tenth of the interpreter, in slices of some 150 us
  (WRITER_BATCH, WRITER_PAUSE), so the reactor keeps its throughput and latency; what it
  cannot keep up with fills the queue.
- When the queue is full, the read or write is dropped and counted (``dropped``, the
  ``cxgw_capture_dropped_total`` metric). The stream of that direction has a hole: its
  buffered partial message is discarded and writing resumes at the next read or write
  that starts with a plausible Diameter header.
- TLS connections are recorded as the plaintext they carry (what the node reads and
  writes above TLS); in a pcapng file their handshake carries a comment saying so.
- Key material is redacted in the recorded copy (never in what is sent): the values of
  SIP-Authenticate (609), SIP-Authorization (610), Confidentiality-Key (625) and
  Integrity-Key (626), vendor 10415 (TS 29.229 §6.3), inside the SIP-Auth-Data-Item (612)
  groups at the top level of a MAR/MAA (303), are replaced by as many bytes of
  ``REDACTED`` repeated, so every length stays and the message still dissects.
- Rotation: with ``max_bytes`` or ``max_seconds``, files are named
  ``<stem>-<UTC start time>-<n><suffix>`` and a new one starts when the current one
  reaches either bound; connections still open start again with a handshake in it.
- Annotations (pcapng comments on chosen messages): an application that knows more than
  the bytes, such as the partner role translating a MAR, calls the function
  ``annotations()`` returns with the messages and a comment; the frame of each message,
  whenever it is written, carries the comment. A message is known by its bytes except
  the flags and the hop-by-hop id (a proxy gives a forwarded request its own id and may
  set the T flag). Once annotations are on, the writer thread holds each read and write
  ANNOTATION_HOLD seconds before writing it, so that a comment given after the request
  was read (after the store named the binding) still reaches the request's frame.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from captures.pcap import Endpoint, PcapngWriter, PcapWriter

RECEIVED, SENT, OPENED, CLOSED = 0, 1, 2, 3
GAP = 4  # or-ed into RECEIVED/SENT: reads or writes before this one were dropped

VENDOR_3GPP = 10415
SIP_AUTH_DATA_ITEM = 612
KEY_AVPS = frozenset({609, 610, 625, 626})  # SIP-Authenticate, -Authorization, CK, IK (TS 29.229 §6.3)
MULTIMEDIA_AUTH = 303  # MAR/MAA
ORIGIN_HOST = 264
MARKER = b"REDACTED"
WRITER_BATCH = 16  # queue items per batch of the writer thread (about 150 us of work: the reactor waits no longer;
# smaller batches cost more in thread switches than they save in waiting: bench/RESULTS.md)
WRITER_PAUSE = 9.0  # the writer pauses 9 times as long as a batch took: at most 10% of the GIL
ANNOTATION_HOLD = 0.25  # seconds a read or write waits for its comment once annotations are on
MAX_ANNOTATIONS = 1000  # comments waiting for their message; beyond, the oldest is forgotten

COMMAND_CODES = {
    "CER": 257, "CEA": 257, "DWR": 280, "DWA": 280, "DPR": 282, "DPA": 282,
    "UAR": 300, "UAA": 300, "SAR": 301, "SAA": 301, "LIR": 302, "LIA": 302,
    "MAR": 303, "MAA": 303, "RTR": 304, "RTA": 304, "PPR": 305, "PPA": 305,
}


def command_code(value: str | int) -> int | None:
    """A command filter entry ("MAR", "MAR/MAA", "303") as a Command-Code, or None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= 0xFFFFFF else None
    if not isinstance(value, str):
        return None
    text = value.strip().upper()
    if text.isdigit():
        return command_code(int(text))
    codes = {COMMAND_CODES.get(part) for part in text.split("/")}
    return codes.pop() if len(codes) == 1 else None


def redact(message: bytes) -> bytes:
    """``message`` with the key material of its top-level SIP-Auth-Data-Items replaced by
    same-length markers; the same bytes when there is none (or it does not parse)."""
    if not any(code in message for code in _KEY_CODES):
        return message  # most messages, MARs included: no AVP header of a key can be there
    out: bytearray | None = None
    for _start, end, code, vendor, data_at in _avps(message, 20, len(message)):
        if code != SIP_AUTH_DATA_ITEM or vendor != VENDOR_3GPP:
            continue
        for _, inner_end, inner, inner_vendor, inner_data in _avps(message, data_at, end):
            if inner in KEY_AVPS and inner_vendor == VENDOR_3GPP:
                if out is None:
                    out = bytearray(message)
                size = inner_end - inner_data
                out[inner_data:inner_end] = (MARKER * (size // len(MARKER) + 1))[:size]
    return message if out is None else bytes(out)


_KEY_CODES = tuple(code.to_bytes(4, "big") for code in sorted(KEY_AVPS))
_AVP_HEADER = struct.Struct(">II")


def _avps(data: bytes, offset: int, stop: int) -> list[tuple[int, int, int, int, int]]:
    """(start, end of data, code, vendor, data offset) of each AVP in data[offset:stop]
    (RFC 6733 §4.1: the length covers header and data, not the padding)."""
    found = []
    unpack = _AVP_HEADER.unpack_from
    while offset + 8 <= stop:
        code, word = unpack(data, offset)
        length = word & 0xFFFFFF
        if word & 0x80000000:
            if length < 12 or offset + length > stop:
                break
            found.append((offset, offset + length, code, unpack(data, offset + 4)[1], offset + 12))
        else:
            if length < 8 or offset + length > stop:
                break
            found.append((offset, offset + length, code, 0, offset + 8))
        offset += (length + 3) & ~3
    return found


def origin_host(message: bytes) -> str | None:
    for _, end, code, vendor, at in _avps(message, 20, len(message)):
        if code == ORIGIN_HOST and vendor == 0:
            return message[at:end].decode("utf-8", "replace")
    return None


def _plausible(data: bytes | memoryview) -> bool:
    """Whether data starts like a Diameter header (RFC 6733 §3): version 1, a length of at
    least 20 and a multiple of 4, reserved flag bits clear."""
    if len(data) < 20 or data[0] != 1 or data[4] & 0x0F:
        return False
    length = int.from_bytes(data[1:4], "big")
    return length >= 20 and not length & 3


@dataclass(slots=True)
class _Direction:
    buffer: bytearray = field(default_factory=bytearray)
    lost: bool = False  # framing lost (a dropped read or write, a bad header): wait for a header


@dataclass(slots=True)
class _Stream:
    local: Endpoint
    remote: Endpoint
    tls: bool
    initiator: bool  # this node opened the connection
    opened_at: float
    wanted: bool | None  # the peers filter: None until the peer is known
    directions: tuple[_Direction, _Direction] = field(default_factory=lambda: (_Direction(), _Direction()))
    held: list[tuple[int, bytes, float]] = field(default_factory=list)  # until ``wanted`` is known

    @property
    def client(self) -> Endpoint:
        return self.local if self.initiator else self.remote

    @property
    def server(self) -> Endpoint:
        return self.remote if self.initiator else self.local


class Recorder:
    """The tap of every connection of a node, and the writer of the capture files.

    ``path``: ``.pcapng`` writes pcapng (with comments), anything else classic pcap.
    ``commands``: Command-Codes to record (empty: all). ``peers``: peers to record, by
    Diameter identity (the Origin-Host of their CER or CEA) or IP address (empty: all).
    ``clock``: seconds since the epoch (tests pass a fake one).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 0,
        max_seconds: float = 0,
        commands: Iterable[int] = (),
        peers: Iterable[str] = (),
        keep_key_material: bool = False,
        buffer_messages: int = 10000,
        clock: Callable[[], float] = time.time,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.pcapng = self.path.suffix.lower() == ".pcapng"
        self.max_bytes = max_bytes
        self.max_seconds = max_seconds
        self.commands = frozenset(commands)
        self.peers = frozenset(peer.lower() for peer in peers)
        self.keep_key_material = keep_key_material
        self.limit = buffer_messages
        self.clock = clock
        self.on_error = on_error
        self.dropped = 0  # reads and writes not recorded: the queue was full (reactor thread)
        self.messages = 0  # messages written (writer thread)
        self.files: list[Path] = []
        self._queue: deque[tuple[int, int, Any, float]] = deque()
        self._gaps: set[tuple[int, int]] = set()  # (connection, direction) that lost a read or write
        self._streams: dict[int, _Stream] = {}
        self._writer: PcapWriter | None = None
        self._file_started = 0.0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._failed = False
        self._dirty = False  # written since the last flush
        self.hold = 0.0  # seconds the writer thread leaves a read or write queued (annotations)
        self._annotations: dict[bytes, list[Any]] = {}  # message key -> [comment, messages left]
        self._annotations_lock = threading.Lock()  # the reactor adds, the writer takes

    # -- the tap (reactor thread): appends only ----------------------------------------
    def attach(self, connection: Any) -> None:
        """Record this connection from now on (its transport is connected)."""
        transport = connection.transport
        local, remote = _endpoint(transport.getHost()), _endpoint(transport.getPeer())
        if local is None or remote is None:
            return  # not an IP connection (a UNIX socket in a test): nothing to record
        tls = getattr(transport, "getPeerCertificate", None) is not None
        info = (local, remote, tls, connection.role == "I")
        self._queue.append((OPENED, id(connection), info, self.clock()))  # never dropped: once per connection
        connection.tap = self

    def received(self, connection: Any, data: bytes) -> None:
        queue = self._queue
        if len(queue) < self.limit and not self._gaps:
            queue.append((RECEIVED, id(connection), data, self.clock()))
        else:
            self._crowded(RECEIVED, id(connection), data)

    def sent(self, connection: Any, data: bytes | memoryview) -> None:
        queue = self._queue
        if len(queue) < self.limit and not self._gaps:
            queue.append((SENT, id(connection), data, self.clock()))
        else:
            self._crowded(SENT, id(connection), data)

    def lost(self, connection: Any) -> None:
        self._queue.append((CLOSED, id(connection), None, self.clock()))
        connection.tap = None

    def annotations(self) -> Callable[[Iterable[bytes], str], None]:
        """Turn annotations on; the function to call with messages (bytes, not yet written)
        and the pcapng comment their frames get (docs/captures.md)."""
        self.hold = ANNOTATION_HOLD
        return self.annotate

    def annotate(self, messages: Iterable[bytes], comment: str) -> None:
        """Put ``comment`` on the frame of each of ``messages`` (reactor thread)."""
        with self._annotations_lock:
            found = self._annotations
            for message in messages:
                entry = found.setdefault(_annotation_key(message), [comment, 0])
                entry[0] = comment
                entry[1] += 1
            while len(found) > MAX_ANNOTATIONS:  # messages filtered out or dropped: never written
                del found[next(iter(found))]

    def _comment_for(self, message: bytes) -> str | None:
        """The comment given for ``message`` (writer thread); it is used up."""
        key = _annotation_key(message)
        with self._annotations_lock:
            entry = self._annotations.get(key)
            if entry is None:
                return None
            entry[1] -= 1
            if entry[1] <= 0:
                del self._annotations[key]
            return str(entry[0])

    def _crowded(self, kind: int, key: int, data: Any) -> None:
        if len(self._queue) >= self.limit:
            self.dropped += 1
            self._gaps.add((key, kind))
            return
        if (key, kind) in self._gaps:
            self._gaps.discard((key, kind))
            kind |= GAP
        self._queue.append((kind, key, data, self.clock()))

    # -- the writer ---------------------------------------------------------------------
    def open(self) -> None:
        """Open the first file (``start`` does; tests calling ``drain`` may too)."""
        if self._writer is None:
            self._new_file(self.clock())

    def start(self) -> None:
        """Open the first file and start the writer thread."""
        self.open()
        self._thread = threading.Thread(target=self._run, name="cxgw-capture", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, end the connections still open with a FIN, close the file."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.drain()
        self.close()

    def close(self) -> None:
        writer = self._writer
        if writer is None:
            return
        when = self.clock()
        try:
            for stream in self._streams.values():
                self._finish(stream, when)
            writer.close()
        except Exception as error:
            self._report(error)
        self._writer = None

    def _run(self) -> None:
        """Small batches, each followed by a pause WRITER_PAUSE times as long as the batch
        took: the writer holds the GIL for a fraction of a millisecond at a time and for at
        most 1 / (1 + WRITER_PAUSE) of the time, so the reactor keeps its speed; what the
        writer cannot keep up with fills the queue and is dropped (and counted)."""
        queue = self._queue
        while not self._stopping:
            if not queue:
                if self._writer is not None and self._dirty:
                    self._flush()
                self._wake.wait(0.05)  # the tap never signals: appending must stay cheap
                self._wake.clear()
                continue
            wait = queue[0][3] + self.hold - self.clock() if self.hold else 0.0
            if wait > 0:  # the oldest read or write may still get its comment (annotations)
                if self._dirty:
                    self._flush()
                self._wake.wait(min(wait, 0.05))
                self._wake.clear()
                continue
            started = time.perf_counter()
            self.drain(WRITER_BATCH, flush=False, before=self.clock() - self.hold if self.hold else None)
            time.sleep((time.perf_counter() - started) * WRITER_PAUSE)

    def drain(self, limit: int | None = None, *, flush: bool = True, before: float | None = None) -> int:
        """Write what is queued (at most ``limit`` reads, writes and events; with
        ``before``, only those queued at that time or earlier); returns how many it took."""
        queue = self._queue
        done = 0
        while queue and (limit is None or done < limit) and (before is None or queue[0][3] <= before):
            kind, key, data, when = queue.popleft()
            done += 1
            try:
                self._take(kind, key, data, when)
            except Exception as error:  # a full disk: say so once, keep the node running
                self._report(error)
        self._dirty = self._dirty or bool(done)
        if flush:
            self._flush()
        return done

    def _flush(self) -> None:
        self._dirty = False
        try:
            if self._writer is not None:
                self._writer.flush()
        except Exception as error:
            self._report(error)

    def _report(self, error: Exception) -> None:
        if not self._failed and self.on_error is not None:
            self.on_error(f"capture: cannot write {self.path}: {error}")
        self._failed = True

    def _take(self, kind: int, key: int, data: Any, when: float) -> None:
        if kind == OPENED:
            local, remote, tls, initiator = data
            wanted = None if self.peers else True
            if self.peers and remote[0].lower() in self.peers:
                wanted = True
            self._streams[key] = _Stream(local, remote, tls, initiator, when, wanted)
            return
        stream = self._streams.get(key)
        if stream is None:
            return
        if kind == CLOSED:
            del self._streams[key]
            self._finish(stream, when)
            return
        direction = stream.directions[kind & 1]
        if kind & GAP:
            direction.buffer.clear()
            direction.lost = True
        self._frame(stream, kind & 1, direction, data, when)

    def _frame(self, stream: _Stream, way: int, direction: _Direction, data: Any, when: float) -> None:
        if direction.lost:
            if not _plausible(data):
                return
            direction.lost = False
        buffer = direction.buffer
        buffer += data
        offset, end = 0, len(buffer)
        while end - offset >= 4:
            length = int.from_bytes(buffer[offset + 1 : offset + 4], "big")
            if buffer[offset] != 1 or length < 20 or length & 3:
                direction.lost = True  # not a Diameter stream any more: wait for a header
                offset = end
                break
            if end - offset < length:
                break
            self._message(stream, way, bytes(buffer[offset : offset + length]), when)
            offset += length
        del buffer[:offset]

    def _message(self, stream: _Stream, way: int, message: bytes, when: float) -> None:
        if stream.wanted is None:
            if way == SENT:
                stream.held.append((way, message, when))
                return
            host = origin_host(message)
            stream.wanted = host is not None and host.lower() in self.peers
            held, stream.held = stream.held, []
            if stream.wanted:
                for item in held:
                    self._write(stream, *item)
        if stream.wanted:
            self._write(stream, way, message, when)

    def _write(self, stream: _Stream, way: int, message: bytes, when: float) -> None:
        code = int.from_bytes(message[5:8], "big")
        if self.commands and code not in self.commands:
            return
        comment = self._comment_for(message) if self._annotations else None
        if code == MULTIMEDIA_AUTH and not self.keep_key_material:
            message = redact(message)
        writer = self._writer
        if writer is None or self._full(writer, when):
            writer = self._new_file(when)
        if not writer.is_open(stream.client, stream.server):
            writer.open_connection(stream.client, stream.server, timestamp=when, comment=_describe(stream))
        src, dst = (stream.remote, stream.local) if way == RECEIVED else (stream.local, stream.remote)
        writer.write_message(message, src=src, dst=dst, timestamp=when, comment=comment)
        self.messages += 1

    def _finish(self, stream: _Stream, when: float) -> None:
        writer = self._writer
        if writer is not None and writer.is_open(stream.local, stream.remote):
            writer.close_connection(stream.local, stream.remote, timestamp=when)

    def _full(self, writer: PcapWriter, when: float) -> bool:
        return bool(
            (self.max_bytes and writer.bytes_written >= self.max_bytes)
            or (self.max_seconds and when - self._file_started >= self.max_seconds)
        )

    def _new_file(self, when: float) -> PcapWriter:
        if self._writer is not None:
            self.close()
        if self.max_bytes or self.max_seconds:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(when))
            path = self.path.with_name(f"{self.path.stem}-{stamp}-{len(self.files) + 1}{self.path.suffix}")
        else:
            path = self.path
        self._writer = (PcapngWriter if self.pcapng else PcapWriter)(path)
        self._file_started = when
        self.files.append(path)
        return self._writer


def _endpoint(address: Any) -> Endpoint | None:
    host, port = getattr(address, "host", None), getattr(address, "port", None)
    if not isinstance(host, str) or not isinstance(port, int):
        return None
    return (host.split("%", 1)[0], port)  # an IPv6 scope (fe80::1%eth0) is not part of the address


def _annotation_key(message: bytes) -> bytes:
    """A message as annotations know it: its bytes but the flags (4) and the hop-by-hop
    id (12-15), which a proxy changes when it forwards it (RFC 6733 §6.1.3, §3: T flag)."""
    return bytes(message[:4]) + bytes(message[5:12]) + bytes(message[16:])


def _describe(stream: _Stream) -> str:
    who = "opened by this node" if stream.initiator else "accepted by this node"
    text = f"Diameter connection {who}, local {stream.local[0]}:{stream.local[1]}"
    if stream.tls:
        text += " (TLS: the decrypted Diameter plaintext is recorded, not the TLS records)"
    return text


__all__ = ["Recorder", "command_code", "origin_host", "redact"]
