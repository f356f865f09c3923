"""Processes of the relay benchmark (bench/relay.py starts them; each prints one JSON line
when ready and one with its results).

    python bench/relay_roles.py server  --port 0
    python bench/relay_roles.py null    --port 0 --upstream PORT
    python bench/relay_roles.py floor   --port 0 --upstream PORT
    python bench/relay_roles.py node    --port 0 --upstream PORT
    python bench/relay_roles.py client  --port PORT --window 16 --seconds 3
    python bench/relay_roles.py client  --port PORT --rate 5000 --seconds 3
    python bench/relay_roles.py flood   --port PORT --connections 4 --cer-size 65536

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


# -- the Twisted null forwarder: frames and copies bytes, nothing else ----------------------
def run_null(args: argparse.Namespace) -> None:
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
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
    from twisted.internet import asyncioreactor

    asyncioreactor.install()
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
    parser.add_argument("role", choices=("server", "client", "null", "floor", "node", "flood"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", type=int, default=0)
    parser.add_argument("--window", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--connections", type=int, default=4, help="flood: connections sending CERs")
    parser.add_argument("--cer-size", type=int, default=65536, help="flood: bytes per CER")
    parser.add_argument("--max-cer-size", type=int, default=0, help="node: limits.max_cer_size (0: default)")
    args = parser.parse_args()
    if args.role == "client":
        asyncio.run(run_client(args))
    elif args.role == "flood":
        asyncio.run(run_flood(args))
    else:
        {"server": run_server, "null": run_null, "floor": run_floor, "node": run_node}[args.role](args)


if __name__ == "__main__":
    main()
