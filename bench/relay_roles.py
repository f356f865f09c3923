"""Processes of the relay benchmark (bench/relay.py starts them; each prints one JSON line
when ready and one with its results).

    python bench/relay_roles.py server  --port 0
    python bench/relay_roles.py null    --port 0 --upstream PORT
    python bench/relay_roles.py floor   --port 0 --upstream PORT
    python bench/relay_roles.py node    --port 0 --upstream PORT [--capture FILE]
    python bench/relay_roles.py client  --port PORT --window 16 --seconds 3
    python bench/relay_roles.py client  --port PORT --rate 5000 --seconds 3
    python bench/relay_roles.py flood   --port PORT --connections 4 --cer-size 65536
    python bench/relay_roles.py hss-stub --port 0 --host gw.primary.example --realm primary.example
    python bench/relay_roles.py cx-client --port PORT --window 16 --seconds 3 \
        --realm partner.example --impi-format 'mig-{:07d}@partner.example' \
        --impu-format 'sip:mig-{:07d}@partner.example' --count 1000000

(bench/gateway.py uses the last two: an S-CSCF sending Cx MARs for identities drawn at
random, a new Session-Id each, counting 2001 answers and errors by result code; and an
HSS stub answering every MAR at once with one fixed valid MAA, its Session-Id echoed.)

The server and the client are plain asyncio protocols built for speed (pre-encoded
messages, ids patched in place, one write per read), so that they are not what limits
the relays under test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from cx_codec import answer_for, decode, samples  # noqa: E402
from cx_codec.commands import (  # noqa: E402
    CapabilitiesExchangeAnswer,
    CapabilitiesExchangeRequest,
    DeviceWatchdogAnswer,
    DisconnectPeerAnswer,
    DisconnectPeerRequest,
)

CX = {"vendor_id": 10415, "auth_application_id": 16777216}
DESTINATION_REALM = str(decode(samples.SAMPLE_MAR)["Destination-Realm"])  # where relays route the MARs
IDS = struct.Struct(">II")


def emit(**fields: object) -> None:
    print(json.dumps(fields), flush=True)


def cer(host: str) -> bytes:
    return CapabilitiesExchangeRequest(
        hop_by_hop=1, end_to_end=1, origin_host=host, origin_realm="bench", host_ip_address="127.0.0.1",
        vendor_id=0, product_name="bench", vendor_specific_application_id=[CX], supported_vendor_id=10415,
    ).encode()


def cea(host: str, request: bytes) -> bytes:
    return CapabilitiesExchangeAnswer(
        hop_by_hop=int.from_bytes(request[12:16], "big"), end_to_end=int.from_bytes(request[16:20], "big"),
        flags=0, result_code=2001, origin_host=host, origin_realm="bench", host_ip_address="127.0.0.1",
        vendor_id=0, product_name="bench", vendor_specific_application_id=[CX], supported_vendor_id=10415,
    ).encode()


def dwa(host: str, request: bytes) -> bytes:
    return DeviceWatchdogAnswer(
        hop_by_hop=int.from_bytes(request[12:16], "big"), end_to_end=int.from_bytes(request[16:20], "big"),
        flags=0, result_code=2001, origin_host=host, origin_realm="bench",
    ).encode()


def dpa(host: str, request: bytes) -> bytes:
    return DisconnectPeerAnswer(
        hop_by_hop=int.from_bytes(request[12:16], "big"), end_to_end=int.from_bytes(request[16:20], "big"),
        flags=0, result_code=2001, origin_host=host, origin_realm="bench",
    ).encode()


def frames(buffer: bytearray) -> list[bytes]:
    messages = []
    offset = 0
    end = len(buffer)
    while end - offset >= 20:
        length = int.from_bytes(buffer[offset + 1 : offset + 4], "big")
        if end - offset < length:
            break
        messages.append(bytes(buffer[offset : offset + length]))
        offset += length
    del buffer[:offset]
    return messages


# -- the fast answering peer -------------------------------------------------------------
class Server(asyncio.Protocol):
    host = "server.bench"

    def __init__(self) -> None:
        self.buffer = bytearray()
        request = decode(samples.SAMPLE_MAR)
        answer = answer_for(
            request, origin_host=self.host, origin_realm="primary.example", experimental_result=None, result_code=2001
        ).encode()
        self.answer_body = answer[20:]  # everything after the header: the same for all
        self.answer_head = answer[:4] + bytes([0x40]) + answer[5:12]  # version, length, P, code, app

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(6, 1, 1)  # TCP_NODELAY

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        head, body = self.answer_head, self.answer_body
        for message in frames(self.buffer):
            code = int.from_bytes(message[5:8], "big")
            if not message[4] & 0x80:
                continue
            if code == 257:
                out.append(cea(self.host, message))
            elif code == 280:
                out.append(dwa(self.host, message))
            elif code == 282:
                out.append(dpa(self.host, message))
            else:
                out.append(head + message[12:20] + body)
        if out:
            self.transport.write(b"".join(out))


# -- the load generator ----------------------------------------------------------------------
class Client(asyncio.Protocol):
    def __init__(self, window: int, rate: float, done: asyncio.Future[None]) -> None:
        self.buffer = bytearray()
        self.window, self.rate = window, rate
        self.template = bytearray(samples.SAMPLE_MAR)
        self.next_id = 1000
        self.sent: dict[int, float] = {}
        self.answered = 0
        self.latencies: list[float] = []
        self.measuring = False
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.done = done
        self.errors = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(6, 1, 1)
        transport.write(cer("client.bench"))

    def request(self) -> bytes:
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        IDS.pack_into(self.template, 12, self.next_id, self.next_id)
        self.sent[self.next_id] = time.perf_counter()
        return bytes(self.template)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        now = time.perf_counter()
        for message in frames(self.buffer):
            code = int.from_bytes(message[5:8], "big")
            if message[4] & 0x80:  # a DWR from the relay
                if code == 280:
                    out.append(dwa("client.bench", message))
                continue
            if code == 257:
                if not self.open.done():
                    self.open.set_result(None)
                continue
            if code == 282:
                if not self.disconnected.done():
                    self.disconnected.set_result(None)
                continue
            started = self.sent.pop(int.from_bytes(message[12:16], "big"), None)
            if started is None:
                continue
            if message[4] & 0x20:
                self.errors += 1
            if self.measuring:
                self.answered += 1
                if self.rate:
                    self.latencies.append(now - started)
            if self.window:
                out.append(self.request())
        if out:
            self.transport.write(b"".join(out))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def run_client(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    transport, client = await loop.create_connection(
        lambda: Client(args.window, args.rate, done), "127.0.0.1", args.port
    )
    await asyncio.wait_for(client.open, 10)
    if args.window:
        transport.write(b"".join(client.request() for _ in range(args.window)))
        await asyncio.sleep(args.warmup)
        emit(phase="start")  # the parent samples the relay's CPU time at these two lines
        client.measuring = True
        started = time.perf_counter()
        await asyncio.sleep(args.seconds)
        client.measuring = False
        elapsed = time.perf_counter() - started
        emit(phase="stop")
    else:
        interval = 0.001
        per_tick = args.rate * interval
        credit = 0.0
        started = time.perf_counter()
        measure_from = started + args.warmup
        deadline = measure_from + args.seconds
        next_tick = started
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            client.measuring = now >= measure_from
            credit += per_tick
            count = int(credit)
            credit -= count
            if count:
                transport.write(b"".join(client.request() for _ in range(count)))
            next_tick += interval
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        await asyncio.sleep(0.2)
        elapsed = args.seconds
    # leave as a well-behaved peer does (RFC 6733 §5.4): DPR, DPA, then close, so that the
    # relay under test is clean for the next run
    client.window = 0
    transport.write(DisconnectPeerRequest(
        hop_by_hop=2, end_to_end=2, origin_host="client.bench", origin_realm="bench", disconnect_cause=0,
    ).encode())
    with contextlib.suppress(TimeoutError):  # a relay that never answers the DPR is closed anyway
        await asyncio.wait_for(client.disconnected, 5)
    transport.close()
    latencies = sorted(client.latencies)

    def percentile(p: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e6 if latencies else None

    emit(pairs=client.answered, seconds=elapsed, rate=client.answered / elapsed, errors=client.errors,
         p50_us=percentile(0.50), p99_us=percentile(0.99), lost=len(client.sent))


# -- a hostile peer: CERs of --cer-size bytes on --connections connections, over and over --
def big_cer(size: int) -> bytes:
    """A CER of about ``size`` bytes (many Host-IP-Address AVPs) from an unknown host."""
    count = max(1, (size - 200) // 16)  # a Host-IP-Address AVP with an IPv4 address: 16 bytes
    return CapabilitiesExchangeRequest(
        hop_by_hop=1, end_to_end=1, origin_host="flood.elsewhere", origin_realm="elsewhere",
        host_ip_address=["127.0.0.1"] * count, vendor_id=0, product_name="flood",
        vendor_specific_application_id=[CX],
    ).encode()


async def run_flood(args: argparse.Namespace) -> None:
    message = big_cer(args.cer_size)
    sent = 0

    async def one_connection() -> None:
        nonlocal sent
        while True:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
                writer.write(message)
                sent += 1
                await reader.read(65536)  # the CEA, or the close
                writer.close()
            except OSError:
                await asyncio.sleep(0.001)

    tasks = [asyncio.ensure_future(one_connection()) for _ in range(args.connections)]
    emit(ready=True, pid=os.getpid(), bytes=len(message))
    await asyncio.sleep(args.seconds)
    for task in tasks:
        task.cancel()
    emit(cers=sent, rate=sent / args.seconds)


# -- the Cx roles of bench/gateway.py: an S-CSCF and an HSS stub -----------------------------
RESULT_CODE, EXPERIMENTAL_RESULT, EXPERIMENTAL_RESULT_CODE, SESSION_ID = 268, 297, 298, 263
CHECK_USER_NAME = True  # cx-client --any-user-name: a stub behind a plain relay answers one fixed User-Name


def cea_of(host: str, realm: str, request: bytes) -> bytes:
    return CapabilitiesExchangeAnswer(
        hop_by_hop=int.from_bytes(request[12:16], "big"), end_to_end=int.from_bytes(request[16:20], "big"),
        flags=0, result_code=2001, origin_host=host, origin_realm=realm, host_ip_address="127.0.0.1",
        vendor_id=0, product_name="bench", vendor_specific_application_id=[CX], supported_vendor_id=10415,
    ).encode()


def cer_of(host: str, realm: str) -> bytes:
    return CapabilitiesExchangeRequest(
        hop_by_hop=1, end_to_end=1, origin_host=host, origin_realm=realm, host_ip_address="127.0.0.1",
        vendor_id=0, product_name="bench", vendor_specific_application_id=[CX], supported_vendor_id=10415,
    ).encode()


def top_avps(message: bytes) -> list[tuple[int, int, int]]:
    """(code, start, end) of each top-level AVP, padding included."""
    out = []
    offset, end = 20, len(message)
    while offset + 8 <= end:
        code = int.from_bytes(message[offset : offset + 4], "big")
        length = int.from_bytes(message[offset + 5 : offset + 8], "big")
        if length < 8:
            break
        out.append((code, offset, min(end, offset + ((length + 3) & ~3))))
        offset += (length + 3) & ~3
    return out


def result_of(message: bytes) -> int:
    """Result-Code, or Experimental-Result-Code, of an answer (0: neither)."""
    offset, end = 20, len(message)
    while offset + 8 <= end:
        code = int.from_bytes(message[offset : offset + 4], "big")
        length = int.from_bytes(message[offset + 5 : offset + 8], "big")
        data = offset + (12 if message[offset + 4] & 0x80 else 8)
        if code == RESULT_CODE:
            return int.from_bytes(message[data : data + 4], "big")
        if code == EXPERIMENTAL_RESULT:
            inner, stop = data, offset + length
            while inner + 8 <= stop:
                inner_code = int.from_bytes(message[inner : inner + 4], "big")
                inner_length = int.from_bytes(message[inner + 5 : inner + 8], "big")
                inner_data = inner + (12 if message[inner + 4] & 0x80 else 8)
                if inner_code == EXPERIMENTAL_RESULT_CODE:
                    return int.from_bytes(message[inner_data : inner_data + 4], "big")
                inner += max(8, (inner_length + 3) & ~3)
            return 0
        if length < 8:
            return 0
        offset += (length + 3) & ~3
    return 0


class MarFactory:
    """MARs built from byte pieces of one encoded prototype: a new Session-Id, User-Name
    and Public-Identity per request, the other AVPs as encoded once by cx_codec."""

    def __init__(self, host: str, origin_realm: str, realm: str) -> None:
        from cx_codec.commands import MultimediaAuthRequest

        prototype = MultimediaAuthRequest(
            hop_by_hop=1, end_to_end=1, session_id=f"{host};1;1", origin_host=host, origin_realm=origin_realm,
            destination_realm=realm, user_name="u@x.example", public_identity="sip:u@x.example",
            sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"}, sip_number_auth_items=1,
            server_name=f"sip:{host}:6060",
        ).encode()
        self.head = prototype[:5]  # version, length (patched), flags
        self.code_app = prototype[5:12]
        pieces: list[bytes | int] = []
        self.avp_heads: dict[int, bytes] = {}
        for code, start, end in top_avps(prototype):
            if code in (SESSION_ID, 1, 601):  # Session-Id, User-Name, Public-Identity
                vendor = 12 if prototype[start + 4] & 0x80 else 8
                self.avp_heads[code] = prototype[start : start + vendor]
                pieces.append(code)
            elif pieces and isinstance(pieces[-1], bytes):
                pieces[-1] += prototype[start:end]
            else:
                pieces.append(prototype[start:end])
        self.pieces = pieces
        self.session_prefix = f"{host};{int(time.time())};{os.getpid()};"

    @staticmethod
    def _avp(head: bytes, value: bytes) -> bytes:
        length = len(head) + len(value)
        return head[:5] + length.to_bytes(3, "big") + head[8:] + value + b"\0" * (-length & 3)

    def build(self, hop_by_hop: int, session: str, impi: str, impu: str) -> bytes:
        values = {SESSION_ID: session.encode(), 1: impi.encode(), 601: impu.encode()}
        heads = self.avp_heads
        body = b"".join(p if isinstance(p, bytes) else self._avp(heads[p], values[p]) for p in self.pieces)
        length = 20 + len(body)
        return (self.head[:1] + length.to_bytes(3, "big") + self.head[4:5] + self.code_app
                + IDS.pack(hop_by_hop, hop_by_hop) + body)


class CxClient(asyncio.Protocol):
    """One S-CSCF connection sending MARs: identities at random among ``count``, a new
    Session-Id per request; answers counted by result code, the first ``check`` ones
    decoded in full and compared with what was sent (User-Name, Session-Id, vectors)."""

    def __init__(self, shared: dict, host: str, origin_realm: str, window: int) -> None:
        self.shared = shared
        self.host, self.origin_realm = host, origin_realm
        self.window = window
        self.buffer = bytearray()
        self.factory: MarFactory = shared["factory"]
        self.sent: dict[int, tuple[float, int]] = {}
        self.open: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.next_id = int.from_bytes(os.urandom(2), "big") << 12
        self.discarded = False  # closed by us: it reached a peer another connection has

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(6, 1, 1)
        transport.write(cer_of(self.host, self.origin_realm))

    def request(self) -> bytes:
        shared = self.shared
        self.next_id = (self.next_id + 1) & 0xFFFFFFFF
        shared["serial"] += 1
        serial = shared["serial"]
        index = shared["rng"].randrange(shared["count"])
        impi, impu = shared["impi"].format(index), shared["impu"].format(index)
        session = self.factory.session_prefix + str(serial)
        if shared["checks_left"] > 0:
            shared["checks_left"] -= 1
            shared["to_check"][serial] = (impi, session)
        self.sent[self.next_id] = (time.perf_counter(), serial, shared["measuring"])
        return self.factory.build(self.next_id, session, impi, impu)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        now = time.perf_counter()
        shared = self.shared
        for message in frames(self.buffer):
            code = int.from_bytes(message[5:8], "big")
            if message[4] & 0x80:
                if code == 280:
                    out.append(dwa(self.host, message))
                continue
            if code == 257:
                if not self.open.done():
                    cea_message = decode(message)
                    if cea_message.result_code != 2001:
                        self.open.set_exception(RuntimeError(f"CEA {cea_message.result_code} from {cea_message['Origin-Host']}"))
                    else:
                        self.open.set_result(str(cea_message["Origin-Host"]))
                continue
            if code == 282:
                if not self.disconnected.done():
                    self.disconnected.set_result(None)
                continue
            entry = self.sent.pop(int.from_bytes(message[12:16], "big"), None)
            if entry is None:
                continue
            started, serial, in_window = entry
            result = result_of(message)
            if result != 2001:
                shared["errors"][result] = shared["errors"].get(result, 0) + 1
            if serial in shared["to_check"]:
                shared["checked"] += 1
                problem = check_answer(message, *shared["to_check"].pop(serial), result)
                if problem and len(shared["mismatches"]) < 5:
                    shared["mismatches"].append(problem)
                elif problem:
                    shared["mismatch_count"] += 1
            if shared["measuring"]:
                shared["answered"] += 1
            if in_window and shared["rate"]:  # open loop: every request sent in the window
                shared["latencies"].append(now - started)
            if self.window:
                out.append(self.request())
        if out:
            self.transport.write(b"".join(out))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(RuntimeError(f"connection closed before the CEA: {exc}"))
        if not self.disconnected.done():
            self.disconnected.set_result(None)
        self.shared["lost_connections"] += 0 if self.shared["closing"] or self.discarded else 1


def check_answer(message: bytes, impi: str, session: str, result: int) -> str | None:
    """Why the answer does not fit its request (None: it does)."""
    try:
        answer = decode(message)
    except Exception as error:  # the codec's verdict on an invalid answer
        return f"answer does not decode: {error}"
    if str(answer.get("Session-Id")) != session:
        return f"Session-Id {answer.get('Session-Id')!r}, sent {session!r}"
    if result == 2001:
        if CHECK_USER_NAME and answer.get("User-Name") is not None and str(answer["User-Name"]) != impi:
            return f"User-Name {answer['User-Name']!r}, sent {impi!r}"
        item = answer.find("SIP-Auth-Data-Item")
        if item is None or item.get("SIP-Authenticate") is None:
            return "2001 without a SIP-Auth-Data-Item carrying SIP-Authenticate"
    return None


async def run_cx_client(args: argparse.Namespace) -> None:
    import random

    loop = asyncio.get_running_loop()
    shared: dict = {
        "factory": MarFactory(args.host, args.origin_realm, args.realm), "rng": random.Random(args.seed or None),
        "count": args.count, "impi": args.impi_format, "impu": args.impu_format, "serial": 0,
        "checks_left": args.check, "to_check": {}, "checked": 0, "mismatches": [], "mismatch_count": 0,
        "errors": {}, "measuring": False, "answered": 0, "rate": args.rate, "latencies": [],
        "lost_connections": 0, "closing": False,
    }
    connections = max(1, args.cx_connections)
    windows = [args.window // connections + (1 if i < args.window % connections else 0) for i in range(connections)]
    clients: list[tuple[asyncio.BaseTransport, CxClient]] = []
    peers_seen: list[str] = []
    for i in range(connections):
        host = args.host if i == 0 else args.host.replace(".", f"{i + 1}.", 1)
        for attempt in range(args.distinct_tries):
            transport, client = await loop.create_connection(
                lambda host=host, i=i: CxClient(shared, host, args.origin_realm, windows[i]), "127.0.0.1", args.port
            )
            peer = await asyncio.wait_for(client.open, 10)
            if not args.distinct or peer not in peers_seen or attempt == args.distinct_tries - 1:
                break
            client.discarded = True
            transport.abort()  # the kernel gave this connection to a process that has one: again
            await asyncio.sleep(0.05)
        peers_seen.append(peer)
        clients.append((transport, client))
    if args.window:
        for transport, client in clients:
            if client.window:
                transport.write(b"".join(client.request() for _ in range(client.window)))
        await asyncio.sleep(args.warmup)
        emit(phase="start")
        shared["measuring"] = True
        started = time.perf_counter()
        await asyncio.sleep(args.seconds)
        shared["measuring"] = False
        elapsed = time.perf_counter() - started
        emit(phase="stop")
    else:
        interval = 0.001
        per_tick = args.rate * interval
        credit = 0.0
        started = time.perf_counter()
        measure_from = started + args.warmup
        deadline = measure_from + args.seconds
        next_tick = started
        turn = 0
        while True:
            now = time.perf_counter()
            if now >= deadline:
                break
            shared["measuring"] = now >= measure_from
            credit += per_tick
            count = int(credit)
            credit -= count
            if count:
                transport, client = clients[turn % len(clients)]
                turn += 1
                transport.write(b"".join(client.request() for _ in range(count)))
            next_tick += interval
            await asyncio.sleep(max(0.0, next_tick - time.perf_counter()))
        shared["measuring"] = False  # answers/s: those received within the window
        await asyncio.sleep(0.2)
        elapsed = args.seconds
    for _, client in clients:
        client.window = 0
    quiet_by = time.perf_counter() + 5.0  # the answers still in flight, before the DPR (RFC 6733 §5.4)
    while any(client.sent for _, client in clients) and time.perf_counter() < quiet_by:
        await asyncio.sleep(0.01)
    shared["closing"] = True
    for transport, client in clients:
        transport.write(DisconnectPeerRequest(
            hop_by_hop=2, end_to_end=2, origin_host=client.host, origin_realm=args.origin_realm, disconnect_cause=0,
        ).encode())
    for transport, client in clients:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(client.disconnected, 5)
        transport.close()
    latencies = sorted(shared["latencies"])

    def percentile(p: float) -> float | None:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1e6 if latencies else None

    emit(pairs=shared["answered"], seconds=elapsed, rate=shared["answered"] / elapsed,
         errors=sum(shared["errors"].values()), error_codes={str(k): v for k, v in shared["errors"].items()},
         checked=shared["checked"], mismatches=shared["mismatches"], mismatch_count=shared["mismatch_count"] + len(shared["mismatches"]),
         peers=peers_seen, lost_connections=shared["lost_connections"],
         p50_us=percentile(0.50), p99_us=percentile(0.99), lost=sum(len(c.sent) for _, c in clients))


class HssStub(asyncio.Protocol):
    """Answers every MAR at once with one fixed valid MAA (2001, one AKA vector), its
    Session-Id the request's; CER, DWR and DPR answered as well."""

    host, realm = "gw.primary.example", "primary.example"
    body = b""

    @classmethod
    def prepare(cls, host: str, realm: str) -> None:
        from cx_codec.commands import MultimediaAuthRequest
        from gateway.applications.cx import Local, multimedia_auth_answer
        from hss_store.aka import build_vectors
        from hss_store.milenage import Milenage

        cls.host, cls.realm = host, realm
        request = decode(MultimediaAuthRequest(
            hop_by_hop=1, end_to_end=1, session_id="stub;1;1", origin_host="x.example", origin_realm="example",
            destination_realm=realm, user_name="user@primary.example", public_identity="sip:user@primary.example",
            sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"}, sip_number_auth_items=1,
            server_name="sip:x.example",
        ).encode())
        vectors = build_vectors(Milenage(bytes(16), bytes(range(16))), [32], b"\x80\x00")
        answer = multimedia_auth_answer(request, Local(host, realm), "user@primary.example",
                                        "sip:user@primary.example", "Digest-AKAv1-MD5", vectors)
        avps = top_avps(answer)
        assert avps[0][0] == SESSION_ID
        cls.body = answer[avps[0][2]:]  # everything after the Session-Id

    def __init__(self) -> None:
        self.buffer = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        transport.get_extra_info("socket").setsockopt(6, 1, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        body = self.body
        for message in frames(self.buffer):
            if not message[4] & 0x80:
                continue
            code = int.from_bytes(message[5:8], "big")
            if code == 257:
                out.append(cea_of(self.host, self.realm, message))
            elif code == 280:
                out.append(dwa(self.host, message))
            elif code == 282:
                out.append(dpa(self.host, message))
            else:
                if int.from_bytes(message[20:24], "big") == SESSION_ID:  # RFC 6733 §8.8: first
                    session_end = 20 + ((int.from_bytes(message[25:28], "big") + 3) & ~3)
                    session = message[20:session_end]
                else:
                    session = next((message[s:e] for c, s, e in top_avps(message) if c == SESSION_ID), b"")
                length = 20 + len(session) + len(body)
                out.append(b"\x01" + length.to_bytes(3, "big") + bytes([message[4] & 0x40]) + message[5:20] + session + body)
        if out:
            self.transport.write(b"".join(out))


def run_hss_stub(args: argparse.Namespace) -> None:
    HssStub.prepare(args.host, args.realm)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(HssStub, "127.0.0.1", args.port)
        emit(ready=True, port=server.sockets[0].getsockname()[1], pid=os.getpid())
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the Twisted null forwarder: frames and copies bytes, nothing else ----------------------
def run_null(args: argparse.Namespace) -> None:
    from gateway.runner import install_reactor

    install_reactor()  # the loop the node runs on (run_node): a like-for-like floor
    from twisted.internet import protocol, reactor

    class Half(protocol.Protocol):
        other: Half | None = None

        def connectionMade(self) -> None:
            self.transport.setTcpNoDelay(True)
            self.buffer = b""
            self.pending: list[bytes] = []

        def dataReceived(self, data: bytes) -> None:
            buffer = self.buffer + data
            offset = 0
            end = len(buffer)
            out = []
            while end - offset >= 20:
                length = int.from_bytes(buffer[offset + 1 : offset + 4], "big")
                if end - offset < length:
                    break
                out.append(buffer[offset : offset + length])
                offset += length
            self.buffer = buffer[offset:]
            if out:
                if self.other is None:
                    self.pending.extend(out)
                else:
                    self.other.transport.write(b"".join(out))

    class Downstream(Half):
        def connectionMade(self) -> None:
            super().connectionMade()
            down = self
            factory = protocol.ClientFactory()

            def build(addr: object) -> Half:
                up = Half()
                up.other = down
                return up

            factory.buildProtocol = build  # type: ignore[method-assign]

            def connected(up: Half) -> None:
                down.other = up
                if down.pending:
                    up.transport.write(b"".join(down.pending))

            endpoint = protocol.ClientCreator(reactor, Half)
            deferred = endpoint.connectTCP("127.0.0.1", args.upstream)

            def adopt(up: Half) -> None:
                up.other = down
                connected(up)

            deferred.addCallback(adopt)

        def connectionLost(self, reason: object = None) -> None:
            if self.other is not None:
                self.other.transport.loseConnection()

    factory = protocol.Factory.forProtocol(Downstream)
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")
    emit(ready=True, port=port.getHost().port, pid=os.getpid())
    reactor.run()


# -- the floor: the null forwarder on bare asyncio sockets, no Twisted -------------------------
def run_floor(args: argparse.Namespace) -> None:
    """What relaying costs the loop and the kernel alone: non-blocking sockets, one reader
    callback per socket, frames counted and copied, one send per read."""
    import socket

    loop = asyncio.new_event_loop()
    listener = socket.create_server(("127.0.0.1", args.port))
    listener.setblocking(False)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        pending = b""

        def readable() -> None:
            nonlocal pending
            try:
                data = source.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                for sock in (source, sink):  # both directions end here
                    if sock.fileno() >= 0:
                        loop.remove_reader(sock.fileno())
                        sock.close()
                return
            buffer = pending + data if pending else data
            offset, end = 0, len(buffer)
            while end - offset >= 20:
                length = int.from_bytes(buffer[offset + 1 : offset + 4], "big")
                if end - offset < length:
                    break
                offset += length
            pending = buffer[offset:]
            if offset:
                sink.sendall(buffer[:offset])  # loopback, small: never blocks for long

        loop.add_reader(source.fileno(), readable)

    def accept() -> None:
        down, _ = listener.accept()
        up = socket.create_connection(("127.0.0.1", args.upstream))
        for sock in (down, up):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pump(down, up)
        pump(up, down)

    loop.add_reader(listener.fileno(), accept)
    emit(ready=True, port=listener.getsockname()[1], pid=os.getpid())
    loop.run_forever()


# -- this project's node as a plain relay --------------------------------------------------------
def run_node(args: argparse.Namespace) -> None:
    from gateway.runner import install_reactor

    install_reactor()  # as `cxgw gateway` runs
    from twisted.internet import reactor

    from gateway.node import DiameterNode, tune_garbage_collector
    from gateway.peer.capabilities import Application, LocalIdentity
    from gateway.routing.table import Route, RouteAction, RouteTarget
    from gateway.settings import Limits, PeerSettings, Timers

    node = DiameterNode(
        LocalIdentity("relay.bench", "bench", applications=(Application(16777216, 10415),)),
        reactor=reactor,
        peers=[
            PeerSettings("server.bench", DESTINATION_REALM, "127.0.0.1", args.upstream),
            PeerSettings("client.bench", "bench", connect=False),
        ],
        routes=[Route(DESTINATION_REALM, 16777216, RouteAction.RELAY, [RouteTarget("server.bench")])],
        timers=Timers(tx=10.0, tc=1.0),
        limits=Limits(max_pending_per_peer=100000, max_pending=200000, **(
            {"max_cer_size": args.max_cer_size} if args.max_cer_size else {}
        )),
    )
    if args.capture:  # [capture] as `cxgw gateway` builds it: every message to a file, keys redacted
        from captures.recorder import Recorder

        node.recorder = Recorder(args.capture)
        node.recorder.start()
        reactor.addSystemEventTrigger("before", "shutdown", lambda: emit(
            dropped=node.recorder.dropped, recorded=node.recorder.messages))
    port = node.listen(args.port)
    node.start()
    tune_garbage_collector()  # as `cxgw gateway` does

    def ready() -> None:
        if node.peers["server.bench"].available:
            emit(ready=True, port=port.getHost().port, pid=os.getpid())
        else:
            reactor.callLater(0.02, ready)

    ready()
    reactor.run()


def run_server(args: argparse.Namespace) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Server, "127.0.0.1", args.port)
        emit(ready=True, port=server.sockets[0].getsockname()[1], pid=os.getpid())
        await asyncio.Event().wait()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=("server", "client", "null", "floor", "node", "flood", "cx-client", "hss-stub"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", type=int, default=0)
    parser.add_argument("--window", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--connections", type=int, default=4, help="flood: connections sending CERs")
    parser.add_argument("--cer-size", type=int, default=65536, help="flood: bytes per CER")
    parser.add_argument("--max-cer-size", type=int, default=0, help="node: limits.max_cer_size (0: default)")
    parser.add_argument("--capture", default="", help="node: record every message to this .pcap/.pcapng file")
    cx = parser.add_argument_group("cx-client and hss-stub")
    cx.add_argument("--host", default="", help="Origin-Host (cx-client: scscf.partner.example, "
                    "more connections number it; hss-stub: gw.primary.example)")
    cx.add_argument("--origin-realm", default="partner.example", help="cx-client: Origin-Realm")
    cx.add_argument("--realm", default="", help="cx-client: Destination-Realm; hss-stub: Origin-Realm")
    cx.add_argument("--impi-format", default="mig-{:07d}@partner.example", help="cx-client: IMPI of identity N")
    cx.add_argument("--impu-format", default="sip:mig-{:07d}@partner.example", help="cx-client: IMPU of identity N")
    cx.add_argument("--count", type=int, default=1, help="cx-client: identities 0..count-1, drawn at random")
    cx.add_argument("--check", type=int, default=200, help="cx-client: answers decoded and compared in full")
    cx.add_argument("--seed", type=int, default=0, help="cx-client: random seed (0: from the OS)")
    cx.add_argument("--cx-connections", type=int, default=1, help="cx-client: connections, the window split among them")
    cx.add_argument("--distinct", action="store_true",
                    help="cx-client: reconnect until each connection reached another peer (SO_REUSEPORT)")
    cx.add_argument("--distinct-tries", type=int, default=30)
    cx.add_argument("--any-user-name", action="store_true", help="cx-client: do not compare the answers' User-Name")
    args = parser.parse_args()
    if args.role == "cx-client":
        global CHECK_USER_NAME
        CHECK_USER_NAME = not args.any_user_name
        args.host = args.host or "scscf.partner.example"
        args.realm = args.realm or "partner.example"
        asyncio.run(run_cx_client(args))
        return
    if args.role == "hss-stub":
        run_hss_stub(argparse.Namespace(port=args.port, host=args.host or "gw.primary.example",
                                        realm=args.realm or "primary.example"))
        return
    if args.role == "client":
        asyncio.run(run_client(args))
    elif args.role == "flood":
        asyncio.run(run_flood(args))
    else:
        {"server": run_server, "null": run_null, "floor": run_floor, "node": run_node}[args.role](args)


if __name__ == "__main__":
    main()
