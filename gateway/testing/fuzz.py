"""Adversarial (mutation) fuzzing of a live DiameterNode over loopback, and the invariants
it must keep whatever it is sent.

``Mutator`` (seeded) turns valid Cx requests (MAR, SAR, UAR, LIR) into hostile ones and
describes what it did: byte flips; a message that ends inside an AVP header (a truncated
Destination-Realm header above all); AVP length fields of 0, 7, 8, huge or odd (RFC 6733
§4.1: at least 8, 12 with the V bit); the V bit on an 8-byte AVP; AVPs duplicated,
removed, reordered; a Destination-Host (§6.5) or a Route-Record (§6.7.1, our own identity:
a loop, §6.1.3 -> 3005) inserted; command flags with the E bit or reserved bits (§3 ->
3008); unknown commands and applications; deeply nested grouped AVPs; thousands of AVPs.
Those keep the framing (length field right, a multiple of 4, within max_message_size).
Broken framing (§3: a length below 20, not a multiple of 4, above the maximum; a version
other than 1) is a rarer case of its own: the node answers from the header as best it can
and closes the connection (§7). Every stream is cut into TCP writes at random points.

``NodeUnderFuzz`` starts the node under test (listening on 127.0.0.1 port 0, in the
caller's reactor), two upstream servers it relays to (raw peers that answer correctly,
late, twice, never, mutated, with hop-by-hop ids nobody asked for, or break their own
framing) and raw clients that did their CER/CEA, runs batches and returns ``Finding``s
instead of raising, so a long run goes on and reports everything. The invariants checked
after each batch (waits are by polling with deadlines, never a sleep then an assert):

1. every well-framed request gets exactly one answer with its hop-by-hop and end-to-end
   ids (§6.2: relayed with the client's hop-by-hop restored, or the node's own);
2. every answer the node generates decodes strictly, has the E bit iff its Result-Code is
   a protocol error, 3xxx (§7.1, §7.2), and echoes the request's Session-Id when that
   was readable (§6.2, §8.8);
3. when everything was answered or Tx passed, nothing is pending and every per-peer
   count is back to zero;
4. no server ever holds more unanswered requests than limits.max_pending_per_peer (nor
   all servers together more than limits.max_pending); a valid request the node did not
   forward was answered 3004 DIAMETER_TOO_BUSY;
5. the node survives: a second client still gets its requests relayed and answered, the
   connections to the servers are still open;
6. nothing was logged at level error or above (diamtest.Errors);
7. broken framing: a best-effort answer when the header was a request's, then the close.

Also a mutated CER on a fresh connection (§5.3): one CEA that decodes strictly, then the
connection is open (2001) or closed.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.protocol import Factory
from twisted.logger import formatEvent

from cx_codec import DecodeError, answer_for, decode, new_request
from cx_codec.build import avp_bytes
from cx_codec.commands import (
    LocationInfoRequest,
    ServerAssignmentRequest,
    UserAuthorizationRequest,
    new_session_id,
)
from gateway.node import DiameterNode, Limits, PeerSettings, Timers
from gateway.observe.counts import NodeMetrics
from gateway.peer.capabilities import LocalIdentity
from gateway.routing.table import Route, RouteAction, RouteTarget
from gateway.testing.diamtest import (
    APPS,
    CER,
    CLIENT,
    CLIENT2,
    CX,
    DPR,
    DWR,
    PARTNER,
    PRIMARY,
    PROXY,
    SERVER_A,
    SERVER_B,
    Errors,
    Net,
    RawPeer,
    mar,
    sleep,
    wait_for,
)

OTHER = "other.example"  # the realm of the second server
FUZZ_PEER = "fuzz.partner.example"  # the identity of the mutated CERs
REALMS = {SERVER_A: PRIMARY, SERVER_B: OTHER}
SERVER_OF = {PRIMARY: SERVER_A, OTHER: SERVER_B}
BASE_COMMANDS = frozenset({257, 280, 282})  # CER, DWR, DPR (RFC 6733 §5): not mutated into
SESSION_ID, ORIGIN_HOST, RESULT_CODE, DESTINATION_REALM = 263, 264, 268, 283
FLAG_R, FLAG_P, FLAG_E, FLAG_T = 0x80, 0x40, 0x20, 0x10

FUZZ_TIMERS = Timers(tc=0.3, twinit=6.0, tx=0.6, dpa_timeout=0.3, cea_timeout=2.0)
FUZZ_LIMITS = Limits(max_pending_per_peer=20, max_pending=30, max_message_size=65536)

_HEADER = struct.Struct(">IIIII")
_AVP = struct.Struct(">II")


# -- findings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One invariant violated: what, where (seed, batch, path) and the input that did it."""

    invariant: str  # "1 exactly one answer", "2 generated answer", ...
    kind: str  # a short category: findings of one kind are one defect, usually
    detail: str
    seed: int
    batch: int
    path: str
    input_hex: str = ""

    def __str__(self) -> str:
        text = f"[{self.path} seed={self.seed} batch={self.batch}] invariant {self.invariant}: {self.kind}: {self.detail}"
        if self.input_hex:
            text += f"\n    input: {self.input_hex[:1200]}{'...' if len(self.input_hex) > 1200 else ''}"
        return text


def describe(findings: list[Finding]) -> str:
    """Readable report: one line per kind with its count, then the first example of each."""
    kinds: dict[tuple[str, str], list[Finding]] = {}
    for finding in findings:
        kinds.setdefault((finding.invariant, finding.kind), []).append(finding)
    lines = [f"{len(findings)} finding(s) of {len(kinds)} kind(s):"]
    for (invariant, kind), found in kinds.items():
        lines.append(f"- invariant {invariant}: {kind} (x{len(found)})")
    for found in kinds.values():
        lines.append(str(found[0]))
    return "\n".join(lines)


# -- bytes ----------------------------------------------------------------------------------


def walk_avps(data: bytes, start: int = 20, end: int | None = None) -> tuple[list[tuple[int, int]], bool]:
    """(offset, padded length) of the AVPs in ``data[start:end]``, and whether the walk
    reached the end without meeting a broken AVP header (RFC 6733 §4.1)."""
    end = len(data) if end is None else end
    found = []
    offset = start
    while offset < end:
        if end - offset < 8:
            return found, False
        _, word = _AVP.unpack_from(data, offset)
        length = word & 0xFFFFFF
        if length < (12 if word & 0x80000000 else 8) or offset + length > end:
            return found, False
        padded = (length + 3) & -4
        found.append((offset, min(padded, end - offset)))
        offset += padded
    return found, True


def base_avp_value(data: bytes, code: int) -> bytes | None:
    """The value of the first top-level AVP ``code`` (no Vendor-Id) that the walk reaches
    before any broken AVP, else None: what a receiver can read of it."""
    avps, _ = walk_avps(data)
    for offset, _ in avps:
        avp_code, word = _AVP.unpack_from(data, offset)
        if avp_code == code and not word & 0x80000000:
            return data[offset + 8 : offset + (word & 0xFFFFFF)]
    return None


def result_code_of(data: bytes) -> int | None:
    value = base_avp_value(data, RESULT_CODE)
    return int.from_bytes(value, "big") if value is not None and len(value) == 4 else None


def ids_of(data: bytes) -> tuple[int, int]:
    return int.from_bytes(data[12:16], "big"), int.from_bytes(data[16:20], "big")


def well_framed(data: bytes, max_size: int) -> bool:
    """RFC 6733 §3: version 1, length field = size, a multiple of 4, at least 20."""
    return (
        len(data) >= 20 and data[0] == 1 and int.from_bytes(data[1:4], "big") == len(data)
        and not len(data) & 3 and len(data) <= max_size
    )


def _with_length(header: bytes | bytearray, body: bytes) -> bytes:
    return bytes((header[0],)) + (20 + len(body)).to_bytes(3, "big") + bytes(header[4:20]) + body


def _raw_avp(code: int, value: bytes, flags: int = 0x40, vendor: int | None = None) -> bytes:
    head = 12 if vendor is not None else 8
    data = _AVP.pack(code, (flags | (0x80 if vendor is not None else 0)) << 24 | (len(value) + head))
    if vendor is not None:
        data += vendor.to_bytes(4, "big")
    return data + value + b"\0" * (-len(value) % 4)


def truncated_inside(data: bytes, code: int = DESTINATION_REALM, keep: int = 4) -> bytes:
    """``data`` cut ``keep`` bytes into the header of its first top-level AVP ``code``
    (4: its code field only), the message length fixed: the message ends inside an AVP
    header (RFC 6733 §4.1: 8 bytes at least), and stays well framed when ``keep`` is 4 or 8."""
    for offset, _ in walk_avps(data)[0]:
        if int.from_bytes(data[offset : offset + 4], "big") == code:
            return _with_length(data[:20], data[20 : offset + keep])
    raise ValueError(f"no AVP {code} in the message")


def raw_answer(request: bytes, host: str, realm: str, result_code: int = 2001, error: bool = False) -> bytes:
    """An answer to whatever ``request`` is, built from bytes (a server must answer mutated
    requests too): §6.2 ids and P bit, the Session-Id if readable, Origin-*, Result-Code."""
    session = base_avp_value(request, SESSION_ID)
    body = b"".join((
        _raw_avp(SESSION_ID, session) if session is not None else b"",
        avp_bytes("Origin-Host", host),
        avp_bytes("Origin-Realm", realm),
        avp_bytes("Result-Code", result_code),
    ))
    flags = (request[4] & FLAG_P) | (FLAG_E if error else 0)
    command = int.from_bytes(request[5:8], "big")
    return _HEADER.pack((1 << 24) | (20 + len(body)), flags << 24 | command, *_HEADER.unpack_from(request)[2:]) + body


# -- the mutation engine -------------------------------------------------------------------


@dataclass
class Mutated:
    data: bytes
    mutations: list[str]
    expect_result: int | None = None  # when one mutation alone fixes the answer (3005, 3008)
    ends_in_header: bool = False  # the message ends inside an AVP header: a read should end there too


class Mutator:
    """Seeded generator of valid Cx requests, their mutations and stream cuts."""

    OPERATIONS: tuple[tuple[str, int], ...] = (
        ("flip", 14), ("truncate", 12), ("avp_length", 12), ("v_bit_8", 5), ("duplicate", 6), ("remove", 6),
        ("reorder", 5), ("destination_host", 6), ("route_record", 6), ("flags", 6), ("command", 4),
        ("application", 3), ("nested", 3), ("many", 2), ("realm_value", 5), ("session_value", 4), ("padding", 3),
    )

    def __init__(self, seed: int | random.Random, identity: str = PROXY, max_message_size: int = 65536) -> None:
        self.rng = seed if isinstance(seed, random.Random) else random.Random(seed)
        self.identity = identity
        self.max_message_size = max_message_size
        self._names, self._weights = zip(*self.OPERATIONS, strict=True)

    # valid requests (TS 29.229 §6.1) with the AVPs every Cx client repeats
    def request(self, hop_by_hop: int, end_to_end: int, realm: str = PRIMARY, origin_host: str = CLIENT) -> tuple[bytes, str]:
        rng = self.rng
        user = f"mig-{rng.randrange(10000):04d}"
        kind = rng.choice(("MAR", "MAR", "MAR", "SAR", "UAR", "LIR"))
        common: dict[str, Any] = {
            "hop_by_hop": hop_by_hop, "end_to_end": end_to_end, "session_id": new_session_id(origin_host),
            "origin_host": origin_host, "origin_realm": PARTNER, "destination_realm": realm,
        }
        if kind == "MAR":
            message = mar(end_to_end, hop_by_hop, realm, origin_host, user)
        elif kind == "SAR":
            message = ServerAssignmentRequest(
                **common, user_name=f"{user}@{PARTNER}", public_identity=[f"sip:{user}@{PARTNER}"],
                server_name="sip:scscf.partner.example:6060", server_assignment_type="REGISTRATION",
                user_data_already_available="USER_DATA_NOT_AVAILABLE",
            )
        elif kind == "UAR":
            message = UserAuthorizationRequest(
                **common, user_name=f"{user}@{PARTNER}", public_identity=f"sip:{user}@{PARTNER}",
                visited_network_identifier=PARTNER.encode(),
            )
        else:
            message = LocationInfoRequest(**common, public_identity=f"sip:{user}@{PARTNER}")
        return message.encode(), kind

    def cer(self, hop_by_hop: int, end_to_end: int, host: str = FUZZ_PEER) -> bytes:
        return new_request(
            "Capabilities-Exchange-Request", hop_by_hop=hop_by_hop, end_to_end=end_to_end, origin_host=host,
            origin_realm=PARTNER, host_ip_address=["127.0.0.1"], vendor_id=0, product_name="fuzz",
            auth_application_id=[CX],
        ).encode()

    # mutations that keep the framing
    def mutate(self, data: bytes, count: int | None = None, header: bool = True) -> Mutated:
        """1-3 mutations (``header``: the command flags, code and application may change);
        the result is well framed, no base command, within max_message_size."""
        rng = self.rng
        for _ in range(20):
            n = count if count is not None else rng.choice((1, 1, 1, 2, 2, 3))
            names = rng.choices(self._names, self._weights, k=n)
            if not header:
                names = [name for name in names if name not in ("flags", "command", "application")] or ["flip"]
            result = self._apply(data, names)
            if result is not None and well_framed(result.data, self.max_message_size):
                command = int.from_bytes(result.data[5:8], "big")
                if command not in BASE_COMMANDS or command == int.from_bytes(data[5:8], "big"):
                    return result  # (a CER stays a CER; nothing becomes one)
        return Mutated(data, [])

    def _apply(self, data: bytes, names: list[str]) -> Mutated | None:
        rng = self.rng
        header = bytearray(data[:20])
        avps_at, _ = walk_avps(data)
        avps = [data[offset : offset + length] for offset, length in avps_at]
        done: list[str] = []
        expect: int | None = None
        ends_in_header = False
        # structure first, then the header, then the end cut, then bytes in place
        order = {"truncate": 2, "flip": 3, "avp_length": 3, "padding": 3, "flags": 1, "command": 1, "application": 1}
        names = sorted(names, key=lambda name: order.get(name, 0))
        body = b""
        for name in names:
            phase = order.get(name, 0)
            if phase == 3 and not body:
                body = b"".join(avps)
            if name == "duplicate" and avps:
                i = rng.randrange(len(avps))
                avps.insert(rng.randrange(len(avps) + 1), avps[i])
                done.append(f"duplicate {_avp_name(avps[i])}")
            elif name == "remove" and avps:
                removed = avps.pop(rng.randrange(len(avps)))
                done.append(f"remove {_avp_name(removed)}")
            elif name == "reorder" and len(avps) > 1:
                if rng.random() < 0.5:
                    rng.shuffle(avps)
                    done.append("shuffle all AVPs")
                else:
                    moved = avps.pop(rng.randrange(len(avps)))
                    avps.insert(rng.randrange(len(avps) + 1), moved)
                    done.append(f"move {_avp_name(moved)}")
            elif name == "destination_host":
                host = rng.choice((SERVER_A, SERVER_B, "nobody.primary.example", self.identity))
                avps.insert(rng.randrange(1, len(avps) + 1), avp_bytes("Destination-Host", host))
                done.append(f"insert Destination-Host {host}")
            elif name == "route_record":
                host = rng.choice((self.identity, self.identity.upper(), "earlier-hop.partner.example"))
                avps.insert(rng.randrange(1, len(avps) + 1), avp_bytes("Route-Record", host))
                done.append(f"insert Route-Record {host}")
                if host.lower() == self.identity and len(names) == 1:
                    expect = 3005  # RFC 6733 §6.1.3
            elif name == "v_bit_8":
                code = rng.choice((1, 263, 283, 293, 9999))
                avps.insert(rng.randrange(len(avps) + 1), _AVP.pack(code, (0x80 | rng.choice((0, 0x40))) << 24 | 8))
                done.append(f"insert an 8-byte AVP {code} with the V bit")
            elif name == "nested":
                depth = rng.choice((8, 40, 200, 1000))
                nested = self._nested(depth)
                avps.insert(rng.randrange(1, len(avps) + 1), nested[0])
                done.append(f"insert {nested[1]} nested {depth} deep")
            elif name == "many":
                n = rng.choice((100, 1000, 3000))
                filler = [_raw_avp(rng.choice((1, 9000, 9001)), rng.randbytes(rng.randrange(4)), flags=0) for _ in range(n)]
                at = rng.randrange(1, len(avps) + 1)
                avps[at:at] = filler
                done.append(f"insert {n} small AVPs")
            elif name == "realm_value":
                realm = rng.choice(("unknown.example", "", PARTNER, OTHER, PRIMARY.upper(), "x" * 300))
                replaced = False
                for i, avp in enumerate(avps):
                    if int.from_bytes(avp[:4], "big") == DESTINATION_REALM:
                        avps[i] = _raw_avp(DESTINATION_REALM, realm.encode())
                        replaced = True
                        break
                if replaced:
                    done.append(f"Destination-Realm {realm[:20]!r}")
            elif name == "session_value":
                value = rng.choice((b"", b"\x1a\x25\x1b;\x00", b"\xff\xfe", rng.randbytes(rng.randrange(1, 64)), b"s" * 2000))
                if avps and int.from_bytes(avps[0][:4], "big") == SESSION_ID:
                    avps[0] = _raw_avp(SESSION_ID, value)
                    done.append(f"Session-Id value {value[:16]!r}")
            elif name == "flags":
                choice = rng.choice(("E", "reserved", "T", "no P", "no R"))
                bit = {"E": FLAG_E, "reserved": rng.choice((0x08, 0x04, 0x02, 0x01)), "T": FLAG_T}.get(choice)
                if bit is not None:
                    header[4] |= bit
                    if choice != "T" and len(names) == 1:
                        expect = 3008  # RFC 6733 §3, §7.1.3 DIAMETER_INVALID_HDR_BITS
                else:
                    header[4] &= ~(FLAG_P if choice == "no P" else FLAG_R) & 0xFF
                done.append(f"command flags: {choice}")
            elif name == "command":
                code = rng.choice((999, 272, 316, 8388620, 0xFFFFFF, 0))
                header[5:8] = code.to_bytes(3, "big")
                done.append(f"command code {code}")
            elif name == "application":
                application = rng.choice((0, 4, 16777217, 0xFFFFFFFF))
                header[8:12] = application.to_bytes(4, "big")
                done.append(f"application id {application}")
            elif name == "truncate" and avps:
                realm_at = [i for i, avp in enumerate(avps) if int.from_bytes(avp[:4], "big") == DESTINATION_REALM]
                i = realm_at[0] if realm_at and rng.random() < 0.6 else rng.randrange(len(avps))
                keep = rng.choice((4, 4, 8, 5, 6, 7))
                cut = avps[i][:keep]
                cut += b"\0" * (-len(cut) % 4)
                del avps[i:]
                avps.append(cut)
                ends_in_header = True
                done.append(f"message ends inside the {_avp_name(cut)} AVP header ({keep} of 8 bytes)")
            elif phase == 3:
                body = self._in_place(name, body, done)
        if not done:
            return None
        if not body:
            body = b"".join(avps)
        return Mutated(_with_length(header, body), done, expect, ends_in_header)

    def _in_place(self, name: str, body: bytes, done: list[str]) -> bytes:
        rng = self.rng
        if not body:
            return body
        buffer = bytearray(body)
        if name == "flip":
            for _ in range(rng.choice((1, 1, 2, 3))):
                at = rng.randrange(len(buffer))
                buffer[at] ^= rng.randrange(1, 256)
                done.append(f"flip byte {20 + at}")
            return bytes(buffer)
        found, _ = walk_avps(body, 0)
        if not found:
            return body
        offset, length = rng.choice(found)
        if name == "avp_length":
            word = int.from_bytes(body[offset + 4 : offset + 8], "big")
            old = word & 0xFFFFFF
            new = rng.choice((0, 7, 8, 0xFFFFFF, old + 1, max(0, old - 1), old + 3, old + 4, old + 0x100))
            buffer[offset + 5 : offset + 8] = (new & 0xFFFFFF).to_bytes(3, "big")
            done.append(f"{_avp_name(body[offset:offset + 4])} AVP length {old} -> {new & 0xFFFFFF}")
        elif name == "padding":
            real = int.from_bytes(body[offset + 5 : offset + 8], "big")
            if real < length:
                buffer[offset + length - 1] = rng.randrange(1, 256)
                done.append(f"non-zero padding in {_avp_name(body[offset:offset + 4])}")
        return bytes(buffer)

    def _nested(self, depth: int) -> tuple[bytes, str]:
        rng = self.rng
        code, vendor, name = rng.choice((
            (284, None, "Proxy-Info"), (260, None, "Vendor-Specific-Application-Id"),
            (612, 10415, "SIP-Auth-Data-Item"), (9999, None, "an unknown AVP"),
        ))
        inner = avp_bytes("Proxy-State", b"x") if code == 284 else avp_bytes("Vendor-Id", 10415)
        flags = 0x40 if code != 9999 else 0
        for _ in range(depth):
            inner = _raw_avp(code, inner, flags=flags, vendor=vendor)
        return inner, name

    # broken framing (RFC 6733 §3)
    def broken_framing(self, template: bytes, hop_by_hop: int, end_to_end: int) -> tuple[bytes, str, bool]:
        """A header whose framing cannot be trusted, then what follows it on the wire;
        (bytes, description, whether the header says request)."""
        rng = self.rng
        version, length, what = 1, len(template), ""
        case = rng.choice(("short", "odd", "huge", "version"))
        if case == "short":
            length = rng.choice((0, 4, 12, 16))
            what = f"message length {length} below 20"
        elif case == "odd":
            length = rng.choice((21, len(template) + 1, len(template) + 2, len(template) - 1))
            what = f"message length {length}, not a multiple of 4"
        elif case == "huge":
            length = rng.choice((self.max_message_size + 4, 0xFFFFFC))
            what = f"message length {length} above max_message_size"
        else:
            version = rng.choice((0, 2, 255))
            what = f"version {version}"
        flags = template[4] if rng.random() < 0.8 else template[4] & ~FLAG_R & 0xFF
        header = bytes((version,)) + length.to_bytes(3, "big") + bytes((flags,)) + template[5:12]
        header += hop_by_hop.to_bytes(4, "big") + end_to_end.to_bytes(4, "big")
        return header + template[20:] + rng.randbytes(rng.randrange(0, 64)), what, bool(flags & FLAG_R)

    # the cuts of a stream into TCP writes
    def split(self, stream: bytes, boundaries: list[int], must: tuple[int, ...] = ()) -> list[bytes]:
        """``stream`` cut at random points, some at message ``boundaries``, all at ``must``."""
        rng = self.rng
        if not stream:
            return []
        cuts = set(must)
        for _ in range(rng.randrange(0, 2 + len(stream) // 300)):
            if boundaries and rng.random() < 0.4:
                cuts.add(rng.choice(boundaries))
            else:
                cuts.add(rng.randrange(1, len(stream)))
        if rng.random() < 0.1:  # a run of one-byte writes somewhere
            at = rng.randrange(len(stream))
            cuts.update(range(at, min(len(stream), at + 24)))
        points = sorted({0, len(stream), *(cut for cut in cuts if 0 < cut < len(stream))})
        return [stream[a:b] for a, b in zip(points, points[1:], strict=False)]

    def mutate_answer(self, answer: bytes) -> tuple[bytes, str]:
        """A well-framed answer with its body damaged (the node relays answers as they are)."""
        rng = self.rng
        buffer = bytearray(answer)
        for _ in range(rng.choice((1, 2, 3))):
            buffer[rng.randrange(20, len(buffer))] ^= rng.randrange(1, 256)
        if rng.random() < 0.3:
            found, _ = walk_avps(answer)
            if found:
                offset, _ = rng.choice(found)
                buffer[offset + 5 : offset + 8] = rng.choice((0, 7, 0xFFFFFF)).to_bytes(3, "big")
        return bytes(buffer), "answer body mutated"


_AVP_NAMES = {
    263: "Session-Id", 260: "Vendor-Specific-Application-Id", 277: "Auth-Session-State", 264: "Origin-Host",
    296: "Origin-Realm", 283: "Destination-Realm", 293: "Destination-Host", 282: "Route-Record", 1: "User-Name",
    601: "Public-Identity", 612: "SIP-Auth-Data-Item", 607: "SIP-Number-Auth-Items", 602: "Server-Name",
    284: "Proxy-Info", 614: "Server-Assignment-Type", 624: "User-Data-Already-Available",
    600: "Visited-Network-Identifier",
}


def _avp_name(avp: bytes) -> str:
    code = int.from_bytes(avp[:4].ljust(4, b"\0"), "big")
    return _AVP_NAMES.get(code, f"AVP {code}")


# -- the loopback network ----------------------------------------------------------------------


class FuzzClient(RawPeer):
    """A raw client with Nagle off (each write goes out as written)."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.transport.setTcpNoDelay(True)

    def send_now(self, data: bytes) -> None:
        """One send() when Twisted holds nothing for the socket: the node's reads then end
        where this write ends (most of the time)."""
        transport = self.transport
        if not transport.dataBuffer and not getattr(transport, "_tempDataLen", 0):
            try:
                sent = transport.getHandle().send(data)
            except OSError:
                sent = 0
            data = data[sent:]
        if data:
            transport.write(data)


class ServerPeer(FuzzClient):
    """An upstream server the node connects to: CEA 2001, DWA, DPA; the application
    requests go to the harness, which decides how (and whether) they are answered."""

    def __init__(self, fuzz: NodeUnderFuzz, host: str) -> None:
        super().__init__()
        self.fuzz, self.host, self.realm = fuzz, host, REALMS[host]
        self.open: dict[int, float] = {}  # node's hop-by-hop -> the Tx deadline at the latest
        self.max_held = 0

    def dataReceived(self, data: bytes) -> None:
        before = len(self.messages)
        super().dataReceived(data)
        for message in self.messages[before:]:
            flags, code = message[4], int.from_bytes(message[5:8], "big")
            if flags & FLAG_R and code == CER:
                cea = answer_for(decode(message), origin_host=self.host, origin_realm=self.realm, result_code=2001,
                                 host_ip_address=["127.0.0.1"], vendor_id=0, product_name="fuzz-server",
                                 auth_application_id=[CX])
                self.send(cea.encode())
            elif flags & FLAG_R and code not in (DWR, DPR):
                self.fuzz.server_request(self, message)
        del self.messages[:]  # kept by the harness as it needs them


class _ServerFactory(Factory):
    def __init__(self, fuzz: NodeUnderFuzz, host: str) -> None:
        self.fuzz, self.host = fuzz, host

    def buildProtocol(self, addr: Any) -> ServerPeer:
        protocol = ServerPeer(self.fuzz, self.host)
        self.fuzz.servers[self.host] = protocol
        return protocol


@dataclass
class Sent:
    """A message the client sent in a batch."""

    data: bytes
    mutations: list[str]
    framed: bool
    expect: str  # "one": exactly one answer; "at most one"; "none"
    pristine: bool = False
    expect_result: int | None = None
    sent_at: float = 0.0
    best_effort: bool = False  # the broken-framing header itself
    ends_in_header: bool = False

    @property
    def ids(self) -> tuple[int, int]:
        return ids_of(self.data)


@dataclass
class BatchPlan:
    kind: str
    sent: list[Sent] = field(default_factory=list)
    server_broken: set[str] = field(default_factory=set)


class NodeUnderFuzz:
    """The node under test (``path``: "fast", the relay's hot loop; "general": every read
    through ``receive_general``; metrics on for both), its servers and clients, and the batches."""

    def __init__(
        self, path: str = "fast", seed: int = 0, timers: Timers = FUZZ_TIMERS, limits: Limits = FUZZ_LIMITS,
        kinds: dict[str, int] | None = None, requests_per_batch: tuple[int, int] = (20, 60),
    ) -> None:
        if path not in ("fast", "general"):
            raise ValueError(f"path is 'fast' or 'general', not {path!r}")
        self.path, self.seed, self.timers, self.limits = path, seed, timers, limits
        self.kinds = kinds or {"mixed": 10, "flood": 3, "framing": 2, "cer": 1, "server_framing": 1}
        self.requests_per_batch = requests_per_batch
        self.net: Net | None = None
        self.node: DiameterNode | None = None
        self.servers: dict[str, ServerPeer] = {}
        self.client: FuzzClient | None = None
        self.client2: FuzzClient | None = None
        self.inputs = 0  # messages sent, all batches
        self._ids = (seed & 0xFFF) << 20
        self._calls: list[Any] = []
        self._policies: dict[int, tuple[str, float]] = {}
        self._sent_at: dict[int, float] = {}
        self._received: dict[int, list[str]] = {}  # end-to-end -> servers that got it
        self._server_sent: set[bytes] = set()  # answers the servers sent, hop-by-hop zeroed
        self._rng = random.Random(seed)

    # -- lifecycle ------------------------------------------------------------------------
    @defer.inlineCallbacks
    def start(self) -> Any:
        self.net = net = Net()
        ports = {host: net.listen(_ServerFactory(self, host)) for host in REALMS}
        peers = [PeerSettings(host, realm, "127.0.0.1", ports[host]) for host, realm in REALMS.items()]
        peers += [PeerSettings(host, PARTNER, connect=False) for host in (CLIENT, CLIENT2, FUZZ_PEER)]
        routes = [Route(realm, CX, RouteAction.PROXY, [RouteTarget(host)]) for realm, host in SERVER_OF.items()]
        # metrics on for both: the hot loop counts too; the general path gets every read
        self.node = node = DiameterNode(
            LocalIdentity(PROXY, PARTNER, applications=APPS), reactor=reactor, peers=peers, routes=routes,
            timers=self.timers, limits=self.limits, metrics=NodeMetrics(),
        )
        if self.path == "general":
            node.relay.stream = lambda connection, peer, data: node.receive_general(connection, data)  # type: ignore[method-assign]
        net.nodes.append(node)
        net.ports[PROXY] = node.listen(0).getHost().port
        node.start()
        yield wait_for(lambda: all(node.peers[host].available for host in REALMS), what="the servers open")
        self.client = yield self._connect(CLIENT)
        self.client2 = yield self._connect(CLIENT2)

    @defer.inlineCallbacks
    def stop(self) -> Any:
        for call in self._calls:
            if call.active():
                call.cancel()
        self._calls.clear()
        if self.net is not None:
            net, self.net = self.net, None
            for server in list(self.servers.values()):
                server.answer_dpr = True
            try:
                yield net.stop()
            except AssertionError:
                pass  # a connection the node still holds: reported by the batch that left it
        self.servers.clear()

    @defer.inlineCallbacks
    def restart(self) -> Any:
        yield self.stop()
        yield self.start()

    @defer.inlineCallbacks
    def _connect(self, host: str | None) -> Any:
        assert self.net is not None
        peer = yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.net.ports[PROXY]), FuzzClient())
        self.net.raw.append(peer)
        peer.host, peer.realm = host or FUZZ_PEER, PARTNER  # (it answers DWR and DPR as these)
        if host is not None:
            node = self.node
            assert node is not None
            yield wait_for(lambda: node.peers[host].state == "Closed", what=f"{host} closed before its new CER")
            cea = yield peer.exchange_cer(host, PARTNER)
            if cea.result_code != 2001:
                raise AssertionError(f"CER of {host} answered {cea.result_code}")
            # open is enough: after a failure its watchdog proves it again in REOPEN (RFC 3539
            # §3.4.1, three DWAs) while the node serves its requests already
            yield wait_for(lambda: node.peers[host].machine.is_open, what=f"{host} open")
        return peer

    def answer_with(self, end_to_end: int, policy: str, delay: float = 0.0) -> None:
        """How the servers answer the request with ``end_to_end``: "now" (the default),
        "never", "duplicate", "stray", "error", "mutated", "wrong_hop_by_hop", "break";
        after ``delay`` seconds."""
        self._policies[end_to_end] = (policy, delay)

    def held(self, host: str) -> int:
        """Requests server ``host`` got and has not answered (whatever their Tx)."""
        server = self.servers.get(host)
        return len(server.open) if server is not None else 0

    def reached(self, end_to_end: int) -> list[str]:
        """The servers that got the request with ``end_to_end`` (this batch)."""
        return self._received.get(end_to_end, [])

    @defer.inlineCallbacks
    def ensure_client(self) -> Any:
        """The fuzzing client, reconnected (CER/CEA) if the node closed it."""
        if self.client is None or not self.client.connected:
            self.client = yield self._connect(CLIENT)
        return self.client

    def next_ids(self) -> tuple[int, int]:
        self._ids = (self._ids + 1) & 0xFFFFFFFF
        return self._ids ^ 0x5A5A0000, self._ids

    # -- the servers ----------------------------------------------------------------------
    def server_request(self, server: ServerPeer, request: bytes) -> None:
        node_hop_by_hop, end_to_end = ids_of(request)
        now = reactor.seconds()
        self._received.setdefault(end_to_end, []).append(server.host)
        # RFC 6733 §6.1.9 / limits: a request is surely pending at the node until its Tx
        # ran out counted from the client's write (the node read it after that)
        sent_at = self._sent_at.get(end_to_end, now)
        server.open[node_hop_by_hop] = sent_at + self.timers.tx
        held = sum(1 for deadline in server.open.values() if deadline > now)
        server.max_held = max(server.max_held, held)
        total = sum(1 for s in self.servers.values() for deadline in s.open.values() if deadline > now)
        self._max_total = max(getattr(self, "_max_total", 0), total)
        policy, delay = self._policies.get(end_to_end, ("now", 0.0))
        answer = raw_answer(request, server.host, server.realm)
        if policy == "never":
            return
        if policy == "break":
            # RFC 6733 §3: a length that is no multiple of 4 -- framing lost
            broken = bytearray(answer)
            broken[1:4] = (len(answer) + 1).to_bytes(3, "big")
            self._send(server, bytes(broken) + b"\0", node_hop_by_hop, record=False)
            return
        if policy == "error":
            answer = raw_answer(request, server.host, server.realm, result_code=self._rng.choice((3002, 3004)), error=True)
        elif policy == "mutated":
            answer, _ = Mutator(self._rng).mutate_answer(answer)
        elif policy == "wrong_hop_by_hop":
            answer = answer[:12] + (node_hop_by_hop ^ 0x00FF0000).to_bytes(4, "big") + answer[16:]
        elif policy == "stray":
            stray = answer[:12] + self._rng.getrandbits(32).to_bytes(4, "big") + answer[16:]
            self._send(server, stray, None)
        if delay:
            self._calls.append(reactor.callLater(delay, self._send, server, answer, node_hop_by_hop, policy == "duplicate"))
        else:
            self._send(server, answer, node_hop_by_hop, policy == "duplicate")

    def _send(self, server: ServerPeer, answer: bytes, node_hop_by_hop: int | None, twice: bool = False,
              record: bool = True) -> None:
        if node_hop_by_hop is not None:
            server.open.pop(node_hop_by_hop, None)
        if record:
            self._server_sent.add(answer[:12] + answer[16:])
        if server.connected:
            server.send_now(answer + answer if twice else answer)

    def _scheduled(self) -> int:
        self._calls = [call for call in self._calls if call.active()]
        return len(self._calls)

    # -- batches ----------------------------------------------------------------------------
    @defer.inlineCallbacks
    def run(self, batches: int, first: int = 0) -> Any:
        findings: list[Finding] = []
        for number in range(first, first + batches):
            found = yield self.run_batch(number)
            findings += found
        return findings

    @defer.inlineCallbacks
    def run_batch(self, number: int) -> Any:
        """One batch; returns its findings (never raises for a violated invariant)."""
        rng = random.Random(self.seed * 1_000_003 + number)
        self._rng = rng
        names, weights = zip(*self.kinds.items(), strict=True)
        kind = rng.choices(names, weights)[0]
        findings: list[Finding] = []

        def found(invariant: str, what: str, detail: str, data: bytes = b"") -> None:
            findings.append(Finding(invariant, what, detail, self.seed, number, self.path, data.hex()))

        restart = False
        self.last_kind = kind
        with Errors() as errors:
            try:
                yield self._ensure_clients()
                for server in self.servers.values():
                    server.max_held = 0
                self._max_total = 0
                if kind == "cer":
                    yield self._cer_batch(rng, found)
                else:
                    plan = yield self._stream_batch(rng, kind, found)
                    restart = bool(plan.server_broken)
                    yield self._survival(found, plan.server_broken)
            except Exception as error:  # the harness itself failed: report it as a finding
                found("5 node survives", "harness step failed", f"{type(error).__name__}: {error}")
                restart = True
        for event in errors.events:
            text = formatEvent(event)
            failure = event.get("log_failure")
            if failure is not None:
                text += " | " + failure.getErrorMessage() + " | " + " / ".join(
                    line.strip() for line in failure.getTraceback().splitlines()[-4:]
                )
            found("6 nothing logged at error level", text.split(" | ")[0][:120], text[:2000])
        if restart or findings:
            yield self.restart()  # the next batch starts from a node in a known state
        return findings

    @defer.inlineCallbacks
    def _ensure_clients(self) -> Any:
        if self.client is None or not self.client.connected:
            self.client = yield self._connect(CLIENT)
        if self.client2 is None or not self.client2.connected:
            self.client2 = yield self._connect(CLIENT2)
        for host in REALMS:
            if host not in self.servers or not self.servers[host].connected:
                raise AssertionError(f"the node has no connection to {host}")

    def _plan(self, rng: random.Random, kind: str, mutator: Mutator) -> BatchPlan:
        plan = BatchPlan(kind)
        low, high = self.requests_per_batch
        count = rng.randrange(low, high + 1) * (3 if kind == "flood" else 1)
        mutate_rate = 0.1 if kind == "flood" else rng.choice((0.2, 0.4, 0.6))
        broken_at = rng.randrange(count) if kind == "framing" else -1
        if kind == "server_framing":
            plan.server_broken.add(SERVER_A)
            broken_request = rng.randrange(count)
        for i in range(count):
            hop_by_hop, end_to_end = self.next_ids()
            realm = PRIMARY if rng.random() < 0.75 else OTHER
            data, _ = mutator.request(hop_by_hop, end_to_end, realm)
            if i == broken_at:
                broken, what, request = mutator.broken_framing(data, hop_by_hop, end_to_end)
                plan.sent.append(Sent(broken, [what], False, "one" if request else "none", best_effort=request))
                break
            sent = Sent(data, [], True, "at most one" if broken_at >= 0 else "one", pristine=True)
            if rng.random() < mutate_rate:
                mutated = mutator.mutate(data)
                if mutated.mutations:
                    sent.data, sent.mutations, sent.pristine = mutated.data, mutated.mutations, False
                    sent.expect_result = mutated.expect_result
                    sent.ends_in_header = mutated.ends_in_header
                    if not sent.data[4] & FLAG_R:
                        sent.expect = "none"  # an answer nobody asked for: dropped (§6.2)
            plan.sent.append(sent)
            # how the server answers it
            if kind == "flood":
                policy = ("delay", rng.uniform(0.02, self.timers.tx * 0.4))
            elif kind == "server_framing" and i == broken_request and realm == PRIMARY:
                policy = ("break", 0.0)
            else:
                policy = rng.choices(
                    [("now", 0.0), ("delay", rng.uniform(0.0, self.timers.tx * 0.4)), ("mutated", 0.0),
                     ("duplicate", 0.0), ("stray", 0.0), ("error", 0.0), ("wrong_hop_by_hop", 0.0),
                     ("late", self.timers.tx + 0.2), ("never", 0.0)],
                    [50, 12, 6, 5, 4, 4, 3, 2, 3],
                )[0]
            self._policies[end_to_end] = policy
        if kind == "server_framing" and not any(p[0] == "break" for p in self._policies.values()):
            plan.server_broken.clear()
        return plan

    @defer.inlineCallbacks
    def _stream_batch(self, rng: random.Random, kind: str, found: Callable[..., None]) -> Any:
        node, client = self.node, self.client
        assert node is not None and client is not None
        mutator = Mutator(rng, PROXY, self.limits.max_message_size)
        self._policies.clear()
        self._received.clear()
        self._server_sent.clear()
        self._sent_at.clear()
        self._probes: set[tuple[int, int]] = set()
        plan = self._plan(rng, kind, mutator)
        del client.messages[:]
        stream = b"".join(sent.data for sent in plan.sent)
        ends, total = [], 0
        for sent in plan.sent:
            total += len(sent.data)
            ends.append(total)
        boundaries = ends
        # a message ending inside an AVP header also ends a read, most of the time (that is
        # where the hot loop once read past its buffer)
        must = tuple(end for end, sent in zip(ends, plan.sent, strict=True) if sent.ends_in_header and rng.random() < 0.8)
        chunks = mutator.split(stream, boundaries[:-1], must)
        written, next_end = 0, 0
        for chunk in chunks:
            if not client.connected:
                break
            client.send_now(chunk)
            written += len(chunk)
            now = reactor.seconds()
            while next_end < len(ends) and ends[next_end] <= written:
                plan.sent[next_end].sent_at = now
                self._sent_at[plan.sent[next_end].ids[1]] = now
                next_end += 1
            # pace: let the node read this write alone when it ends where a read should
            yield sleep(0.002 if written in must else 0)
        self.inputs += len(plan.sent)

        expected = [s for s in plan.sent if s.expect == "one" and s.sent_at]
        tx = self.timers.tx

        def answers() -> dict[tuple[int, int], list[bytes]]:
            by_ids: dict[tuple[int, int], list[bytes]] = {}
            for data in client.application_answers():
                by_ids.setdefault(ids_of(data), []).append(data)
            return by_ids

        def settled() -> bool:
            got = answers()
            return (not client.connected or all(s.ids in got for s in expected)) and not self._scheduled()

        with contextlib.suppress(AssertionError):  # what is missing is reported below
            yield wait_for(settled, timeout=tx + 3.0, what="the answers")
        with contextlib.suppress(AssertionError):
            yield wait_for(lambda: len(node.pending) == 0 and not self._scheduled(), timeout=tx + 2.0, what="pending")
        # a barrier: answers to probes sent now come after anything the node still had to
        # send this client (one TCP stream each way, handled in order)
        if client.connected:
            probes = []
            for host, realm in REALMS.items():
                if host in plan.server_broken:
                    continue
                hop_by_hop, end_to_end = self.next_ids()
                probes.append((hop_by_hop, end_to_end))
                self._probes.add((hop_by_hop, end_to_end))
                client.send_now(mar(end_to_end, hop_by_hop, realm).encode())
            try:
                yield wait_for(lambda: not client.connected or all(p in answers() for p in probes), timeout=tx + 2.0,
                               what="the barrier probes")
            except AssertionError:
                found("5 node survives", "no answer to a valid request after the batch", "barrier probes unanswered")
        self._check_answers(plan, answers(), client, found)
        self._check_pending(found)
        self._check_limits(found)
        return plan

    def _check_answers(self, plan: BatchPlan, got: dict[tuple[int, int], list[bytes]], client: FuzzClient,
                       found: Callable[..., None]) -> None:
        broken_server = bool(plan.server_broken)
        missing: list[Sent] = []
        for sent in plan.sent:
            answers = got.pop(sent.ids, [])
            label = "; ".join(sent.mutations) or "valid request"
            if sent.expect == "one" and sent.sent_at and not answers and (client.connected or sent.best_effort):
                missing.append(sent)
            if len(answers) > 1 or (answers and sent.expect == "none"):
                found("1 exactly one answer", f"{len(answers)} answers to one request",
                      f"{label}: result codes {[result_code_of(a) for a in answers]}", sent.data)
            for answer in answers:
                relayed = answer[:12] + answer[16:] in self._server_sent
                code = result_code_of(answer)
                if not relayed:
                    # broken framing: the node has the header only (RFC 6733 §3), no Session-Id to echo
                    for problem in check_generated(answer, sent.data[:20] if sent.best_effort else sent.data, PROXY):
                        found("2 generated answer", problem[0], f"{label}: {problem[1]}", sent.data)
                if sent.expect_result is not None and code != sent.expect_result:
                    found("1 exactly one answer", f"expected {sent.expect_result}",
                          f"{label}: answered {code} ({'relayed' if relayed else 'generated'})", sent.data)
                if sent.best_effort and code not in (5011, 5015):
                    found("7 broken framing", "best-effort answer code", f"{label}: answered {code}", sent.data)
                if sent.pristine and not relayed:
                    reached = sent.ids[1] in self._received
                    if code == 3004 and reached:
                        found("4 limits", "3004 for a request that was forwarded", label, sent.data)
                    elif code not in (3004, 3002) or (code == 3002 and not reached and not broken_server):
                        found("4 limits", f"valid request not forwarded, answered {code}", label, sent.data)
        if missing:
            first = missing[0]
            found("1 exactly one answer", "no answer", f"{len(missing)} request(s) unanswered, first: "
                  f"{'; '.join(first.mutations) or 'valid request'} (hop-by-hop 0x{first.ids[0]:08x})", first.data)
        for ids, answers in got.items():  # what is left: the barrier probes, or answers to nothing sent
            if ids in self._probes:
                if len(answers) != 1 or result_code_of(answers[0]) != 2001:
                    found("5 node survives", "valid request after the batch not relayed",
                          f"result codes {[result_code_of(a) for a in answers]}", answers[0])
            else:
                found("1 exactly one answer", "answer to no request", f"ids {ids}", answers[0])
        framing = [s for s in plan.sent if s.best_effort or (not s.framed)]
        if framing:
            if client.connected:
                found("7 broken framing", "connection left open", "; ".join(framing[0].mutations), framing[0].data)
        elif not client.connected:
            found("5 node survives", "client connection closed by the node",
                  "a well-framed stream made the node close the connection")

    def _check_pending(self, found: Callable[..., None]) -> None:
        node = self.node
        assert node is not None
        if len(node.pending):
            entries = list(node.pending)[:3]
            found("3 pending drained", "requests left pending",
                  f"{len(node.pending)} pending after Tx, e.g. {[(hex(e.hop_by_hop), e.peer.host) for e in entries]}")
        pending = node.pending
        counts = dict(getattr(pending, "per_peer", None) or getattr(pending, "_per_peer", None) or {})
        for peer in node.peers.values():
            counts.setdefault(peer, node.pending.outstanding(peer))
        wrong = {getattr(peer, "host", repr(peer)): count for peer, count in counts.items() if count}
        if wrong:
            found("3 pending drained", "per-peer pending count not back to zero", f"outstanding: {wrong}")

    def _check_limits(self, found: Callable[..., None]) -> None:
        limit, total = self.limits.max_pending_per_peer, self.limits.max_pending
        for host, server in self.servers.items():
            if server.max_held > limit:
                found("4 limits", "max_pending_per_peer exceeded",
                      f"{host} held {server.max_held} unanswered requests, limit {limit}")
        if self._max_total > total:
            found("4 limits", "max_pending exceeded", f"the servers held {self._max_total} together, limit {total}")

    @defer.inlineCallbacks
    def _survival(self, found: Callable[..., None], broken: set[str]) -> Any:
        node = self.node
        assert node is not None
        client2 = self.client2
        if client2 is None or not client2.connected:
            found("5 node survives", "second client disconnected", "the well-behaved client lost its connection")
            return
        for host, realm in REALMS.items():
            if host in broken:
                continue
            if not node.peers[host].available or host not in self.servers or not self.servers[host].connected:
                found("5 node survives", "connection to a server lost", f"{host} is not available")
                continue
            hop_by_hop, end_to_end = self.next_ids()
            before = len(client2.application_answers())
            client2.send_now(mar(end_to_end, hop_by_hop, realm, origin_host=CLIENT2).encode())
            try:
                yield wait_for(lambda before=before: len(client2.application_answers()) > before or not client2.connected,
                               timeout=self.timers.tx + 2.0, what="the second client's answer")
            except AssertionError:
                found("5 node survives", "second client unanswered", f"no answer for {realm}")
                continue
            answers = client2.application_answers()[before:]
            answer = answers[0] if answers else b""
            origin = base_avp_value(answer, ORIGIN_HOST) if answer else None
            if ids_of(answer) != (hop_by_hop, end_to_end) if answer else True:
                found("5 node survives", "second client answer mismatched", f"answers {[a.hex()[:80] for a in answers]}")
            elif result_code_of(answer) != 2001 or origin != host.encode():
                found("5 node survives", "second client not relayed",
                      f"{realm}: result {result_code_of(answer)} from {origin!r}", answer)

    # -- a mutated CER on a new connection (RFC 6733 §5.3) ------------------------------------
    @defer.inlineCallbacks
    def _cer_batch(self, rng: random.Random, found: Callable[..., None]) -> Any:
        node = self.node
        assert node is not None
        mutator = Mutator(rng, PROXY, self.limits.max_message_size)
        for _ in range(rng.randrange(1, 4)):
            yield wait_for(lambda: node.peers[FUZZ_PEER].state == "Closed", what="the fuzz peer closed")
            peer = yield self._connect(None)
            hop_by_hop, end_to_end = self.next_ids()
            cer = mutator.cer(hop_by_hop, end_to_end)
            mutated = mutator.mutate(cer, header=False)
            label = "CER: " + ("; ".join(mutated.mutations) or "valid")
            for chunk in mutator.split(mutated.data, []):
                peer.send_now(chunk)
                yield sleep(0)
            self.inputs += 1
            try:
                yield wait_for(lambda peer=peer: peer.messages or not peer.connected, timeout=self.timers.cea_timeout + 1.0,
                               what="the CEA")
            except AssertionError:
                found("1 exactly one answer", "CER unanswered", label, mutated.data)
            answers = [m for m in peer.messages if int.from_bytes(m[5:8], "big") == CER and not m[4] & FLAG_R]
            if len(answers) > 1:
                found("1 exactly one answer", "several CEAs", label, mutated.data)
            for answer in answers:
                if ids_of(answer) != (hop_by_hop, end_to_end):
                    found("2 generated answer", "CEA ids", label, mutated.data)
                for problem in check_generated(answer, mutated.data, PROXY, session=False):
                    found("2 generated answer", "CEA " + problem[0], f"{label}: {problem[1]}", mutated.data)
            code = result_code_of(answers[0]) if answers else None
            if code == 2001:
                peer.transport.abortConnection()
            else:
                try:
                    yield peer.wait_closed(timeout=self.timers.cea_timeout + 1.0)
                except AssertionError:
                    found("7 broken framing", "refused CER: connection left open", f"{label}: CEA {code}", mutated.data)
                    peer.transport.abortConnection()
            yield wait_for(lambda peer=peer: not peer.connected, what="the CER connection closed")


def check_generated(answer: bytes, request: bytes, identity: str, session: bool = True) -> list[tuple[str, str]]:
    """The problems of an answer this node generated for ``request`` (invariant 2): (kind, detail)."""
    problems = []
    try:
        decode(answer)
    except DecodeError as error:
        kind = f"fails strict decoding: {error.result_code}"
        session_id = base_avp_value(request, SESSION_ID)
        if session_id is not None and session_id == base_avp_value(answer, SESSION_ID) and "UTF-8" in str(error):
            kind += " (the request's Session-Id, not UTF-8, copied)"
        elif "nested deeper" in str(error):
            kind += " (an AVP of the request nested too deep, copied)"
        problems.append((kind, f"{error}"))
    flags = answer[4]
    code = result_code_of(answer)
    if flags & FLAG_R:
        problems.append(("answer with the R bit", f"flags 0x{flags:02x}"))
    if code is not None and bool(flags & FLAG_E) != (3000 <= code < 4000):
        # RFC 6733 §7.1: the E bit marks protocol errors (3xxx) and only those (§7.1.4/5)
        problems.append((f"E bit {'set' if flags & FLAG_E else 'clear'} with {code}", f"flags 0x{flags:02x}"))
    origin = base_avp_value(answer, ORIGIN_HOST)
    if origin is None or origin.lower() != identity.encode():
        problems.append(("answer of unknown origin", f"Origin-Host {origin!r} (not relayed, not ours)"))
    if ids_of(answer) != ids_of(request):
        problems.append(("ids not the request's", f"{ids_of(answer)} != {ids_of(request)}"))
    if session:
        wanted = base_avp_value(request, SESSION_ID)
        if wanted is not None:
            try:
                wanted.decode("utf-8")
            except UnicodeDecodeError:
                wanted = None  # no UTF8String (RFC 6733 §4.3.1): nothing valid to echo
        if wanted is not None:
            echoed = base_avp_value(answer, SESSION_ID)
            if echoed != wanted:
                kind = "Session-Id not echoed" if echoed is None else "Session-Id differs"
                problems.append((kind, f"request Session-Id {wanted[:60]!r}, answer {echoed and echoed[:60]!r}"))
    return problems
