"""IPv4 and IPv6: the transport payload of a packet, its addresses and protocol.

- IPv4 (RFC 791 §3.1): the header length (IHL) and Total Length are honoured, so the
  padding of short Ethernet frames is not taken as payload. Fragments (MF set or a
  fragment offset) are reassembled (RFC 791 §3.2, RFC 815) when every piece is in the
  capture; a datagram still incomplete at the end is reported.
- IPv6 (RFC 8200 §4): Hop-by-Hop (0), Routing (43), Destination Options (60) and
  Authentication (51, RFC 4302 §2.2: length in 4-octet units) headers are skipped; the
  Fragment header (44, RFC 8200 §4.5) is reassembled like IPv4 fragments; ESP (50) and
  No Next Header (59) end the packet.

Addresses are kept as packed bytes (cheap to hash) and turned into text once each.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from captures.reader.links import ETHERTYPE_IPV4

IPPROTO_TCP, IPPROTO_SCTP = 6, 132
_EXTENSIONS = frozenset({0, 43, 60, 51})
IPV6_FRAGMENT, IPV6_NO_NEXT, IPV6_ESP = 44, 59, 50
MAX_DATAGRAMS = 64  # fragmented datagrams waiting for their pieces; beyond, the oldest is dropped
MAX_PIECES = 256  # fragments of one datagram; beyond, it is dropped (a datagram is at most 64 KiB)
MAX_DATAGRAM = 65535 + 8  # the end of the last fragment (RFC 791 §3.1: Total Length is 16 bits)


@dataclass(slots=True)
class Packet:
    source: bytes  # packed address
    destination: bytes
    protocol: int
    payload: bytes
    missing: int = 0  # bytes of the payload the capture did not keep (snaplen)


@dataclass(slots=True)
class _Datagram:
    first_frame: int
    pieces: dict[int, bytes] = field(default_factory=dict)  # offset -> bytes
    total: int | None = None  # known once the last piece (MF clear) is seen
    protocol: int = 0


_names: dict[bytes, str] = {}


def address_text(packed: bytes) -> str:
    """"192.0.2.1" or "2001:db8::1" (RFC 5952 form, as inet_ntop gives it)."""
    text = _names.get(packed)
    if text is None:
        family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
        text = _names[packed] = socket.inet_ntop(family, packed)
    return text


class Defragmenter:
    """The fragments of datagrams, by (source, destination, identification, protocol)."""

    def __init__(self) -> None:
        self.datagrams: dict[tuple[bytes, bytes, int, int], _Datagram] = {}
        self.dropped: list[tuple[int, tuple[bytes, bytes, int, int]]] = []  # (first frame, key): impossible

    def add(
        self, key: tuple[bytes, bytes, int, int], frame: int, offset: int, more: bool, data: bytes, protocol: int
    ) -> bytes | None:
        datagram = self.datagrams.get(key)
        if datagram is None:
            if len(self.datagrams) >= MAX_DATAGRAMS:
                self.datagrams.pop(next(iter(self.datagrams)))
            datagram = self.datagrams[key] = _Datagram(frame, protocol=protocol)
        if offset + len(data) > MAX_DATAGRAM or len(datagram.pieces) >= MAX_PIECES:
            del self.datagrams[key]
            if len(self.dropped) < 100:
                self.dropped.append((datagram.first_frame, key))
            return None
        datagram.pieces.setdefault(offset, data)  # the first copy of a piece is kept
        if offset == 0:
            datagram.protocol = protocol
        if not more:
            datagram.total = offset + len(data)
        if datagram.total is None:
            return None
        covered = 0
        for start in sorted(datagram.pieces):
            if start > covered:
                return None
            covered = max(covered, start + len(datagram.pieces[start]))
        if covered < datagram.total:
            return None
        del self.datagrams[key]
        whole = bytearray(datagram.total)
        for start in sorted(datagram.pieces, reverse=True):  # on overlap, the piece with the lower offset wins
            if start >= datagram.total:
                continue
            piece = datagram.pieces[start][: datagram.total - start]
            whole[start : start + len(piece)] = piece
        return bytes(whole)

    def leftovers(self) -> list[tuple[int, str]]:
        """(first frame, text) for every datagram still missing pieces, or dropped."""
        impossible = [
            (frame, f"frame {frame}: IP fragments of datagram {key[2]} ({address_text(key[0])} -> "
             f"{address_text(key[1])}) beyond 64 KiB or {MAX_PIECES} pieces; not read")
            for frame, key in self.dropped
        ]
        return impossible + [
            (datagram.first_frame, f"frame {datagram.first_frame}: IP fragments of datagram {key[2]} "
             f"({address_text(key[0])} -> {address_text(key[1])}) never completed; not read")
            for key, datagram in self.datagrams.items()
        ]


def network(ethertype: int, data: bytes, offset: int, frame: int, defragmenter: Defragmenter) -> Packet | str | None:
    """The packet at ``data[offset:]``; a text saying what is wrong, or None for a fragment
    that waits for the others (or a packet without a transport payload)."""
    if ethertype == ETHERTYPE_IPV4:
        return _ipv4(data, offset, frame, defragmenter)
    return _ipv6(data, offset, frame, defragmenter)


def _ipv4(data: bytes, offset: int, frame: int, defragmenter: Defragmenter) -> Packet | str | None:
    if len(data) < offset + 20:
        return f"IPv4 header cut short ({len(data) - offset} of 20 bytes)"
    first = data[offset]
    if first >> 4 != 4:
        return f"IPv4 packet with IP version {first >> 4}"
    header = (first & 0x0F) * 4
    total = (data[offset + 2] << 8) | data[offset + 3]
    if header < 20 or total < header:
        return f"IPv4 header length {header} / total length {total} impossible"
    end = offset + total
    missing = max(0, end - len(data))
    payload = data[offset + header : end]
    protocol = data[offset + 9]
    source, destination = data[offset + 12 : offset + 16], data[offset + 16 : offset + 20]
    fragment = (data[offset + 6] << 8) | data[offset + 7]
    if fragment & 0x3FFF:  # MF or a fragment offset (RFC 791 §3.1)
        if missing:
            return f"IPv4 fragment cut short by the capture ({missing} bytes missing); its datagram cannot be read"
        identification = (data[offset + 4] << 8) | data[offset + 5]
        whole = defragmenter.add(
            (source, destination, identification, protocol), frame, (fragment & 0x1FFF) * 8, bool(fragment & 0x2000), payload, protocol
        )
        if whole is None:
            return None
        payload = whole
    return Packet(source, destination, protocol, payload, missing)


def _ipv6(data: bytes, offset: int, frame: int, defragmenter: Defragmenter) -> Packet | str | None:
    if len(data) < offset + 40:
        return f"IPv6 header cut short ({len(data) - offset} of 40 bytes)"
    if data[offset] >> 4 != 6:
        return f"IPv6 packet with IP version {data[offset] >> 4}"
    length = (data[offset + 4] << 8) | data[offset + 5]
    next_header = data[offset + 6]
    source, destination = data[offset + 8 : offset + 24], data[offset + 24 : offset + 40]
    end = offset + 40 + length  # a jumbogram (length 0, RFC 2675) is not expected on Diameter links
    missing = max(0, end - len(data))
    at = offset + 40
    fragment: tuple[int, bool, int] | None = None
    while next_header in _EXTENSIONS or next_header == IPV6_FRAGMENT:
        if at + 8 > len(data):
            return "IPv6 extension header cut short"
        if next_header == IPV6_FRAGMENT:
            word = (data[at + 2] << 8) | data[at + 3]
            fragment = (word & 0xFFF8, bool(word & 1), int.from_bytes(data[at + 4 : at + 8], "big"))
            next_header, at = data[at], at + 8
            continue
        size = (data[at + 1] + 2) * 4 if next_header == 51 else (data[at + 1] + 1) * 8
        next_header, at = data[at], at + size
    if next_header in (IPV6_NO_NEXT, IPV6_ESP):
        return None
    payload = data[at:end]
    if fragment is not None:
        if missing:
            return f"IPv6 fragment cut short by the capture ({missing} bytes missing); its datagram cannot be read"
        whole = defragmenter.add((source, destination, fragment[2], next_header), frame, fragment[0], fragment[1], payload, next_header)
        if whole is None:
            return None
        payload = whole
    return Packet(source, destination, next_header, payload, missing)
