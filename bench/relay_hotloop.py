"""The relay's hot loop in-process: microseconds per request and per answer, no sockets.

    python bench/relay_hotloop.py [--windows 1 16 128] [--rounds 9]

A DiameterNode with an open client peer and an open server peer whose transports are
in-memory (twisted's StringTransport); each round feeds reads of ``window`` sample MARs
from the client and then reads of the matching MAAs from the server through
``DiameterNode.receive`` (the relay's hot loop and the batched write), and times only
those calls. Minimum over rounds: the cost with warm caches, a lower bound of what the
relay process spends in Python per message (bench/relay.py measures the whole process).
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet import task  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from cx_codec import answer_for, decode, samples  # noqa: E402
from gateway.node import DiameterNode
from gateway.observe.counts import NodeMetrics  # noqa: E402
from gateway.peer import WatchdogState  # noqa: E402
from gateway.peer.capabilities import Application, LocalIdentity  # noqa: E402
from gateway.routing.table import Route, RouteAction, RouteTarget  # noqa: E402
from gateway.settings import Limits, PeerSettings, Timers  # noqa: E402
from gateway.transport.connection import DiameterConnection  # noqa: E402

CX = 16777216


def relay_node(metrics: bool = False) -> tuple[DiameterNode, DiameterConnection, DiameterConnection]:
    realm = str(decode(samples.SAMPLE_MAR)["Destination-Realm"])
    node = DiameterNode(
        LocalIdentity("relay.bench", "bench", applications=(Application(CX, 10415),)),
        reactor=task.Clock(),
        peers=[PeerSettings("server.bench", realm, "127.0.0.1", 3868), PeerSettings("client.bench", "bench", connect=False)],
        routes=[Route(realm, CX, RouteAction.RELAY, [RouteTarget("server.bench")])],
        timers=Timers(tx=10.0),
        limits=Limits(max_pending_per_peer=100_000, max_pending=200_000),
        metrics=NodeMetrics() if metrics else None,
    )
    connections = []
    for host, role in (("client.bench", "R"), ("server.bench", "I")):
        peer = node.peers[host]  # open, as the peer state machine leaves it
        connection = DiameterConnection(node, role, peer)
        connection.transport = StringTransport()
        connection.connected = True
        peer.connection = connection
        peer.watchdog.state = WatchdogState.OKAY
        connections.append(connection)
    return node, connections[0], connections[1]


def measure(window: int, rounds: int, metrics: bool = False) -> tuple[float, float]:
    node, client, server = relay_node(metrics)
    request = bytearray(samples.SAMPLE_MAR)
    answer = answer_for(decode(samples.SAMPLE_MAR), origin_host="server.bench", origin_realm="bench",
                        experimental_result=None, result_code=2001).encode()
    head, body = answer[:4] + bytes([0x40]) + answer[5:12], answer[20:]
    ids = struct.Struct(">II")
    next_id = 0
    best = (float("inf"), float("inf"))
    reads = max(100, 8000 // window)
    for _ in range(rounds):
        spent = [0.0, 0.0]
        for _ in range(reads):
            batch = []
            for _ in range(window):
                next_id += 1
                ids.pack_into(request, 12, next_id, next_id)
                batch.append(bytes(request))
            data = b"".join(batch)
            started = time.perf_counter()
            node.receive(client, data)
            spent[0] += time.perf_counter() - started
            forwarded = server.transport.value()  # type: ignore[attr-defined]
            server.transport.clear()  # type: ignore[attr-defined]
            answers, offset = [], 0
            while offset < len(forwarded):
                answers.append(head + forwarded[offset + 12 : offset + 20] + body)
                offset += int.from_bytes(forwarded[offset + 1 : offset + 4], "big")
            data = b"".join(answers)
            started = time.perf_counter()
            node.receive(server, data)
            spent[1] += time.perf_counter() - started
            client.transport.clear()  # type: ignore[attr-defined]
        if len(node.pending):
            raise RuntimeError(f"{len(node.pending)} requests left unanswered: the relay is misconfigured")
        per_message = (spent[0] / (reads * window) * 1e6, spent[1] / (reads * window) * 1e6)
        best = (min(best[0], per_message[0]), min(best[1], per_message[1]))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 16, 128])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--metrics", action="store_true", help="also with metrics on (every message counted)")
    args = parser.parse_args()
    print(f"{'metrics':>7}  {'messages per read':>17}  {'us per request':>14}  {'us per answer':>13}  {'us per pair':>11}")
    for window in args.windows:
        for metrics in (False, True) if args.metrics else (False,):
            request, answer = measure(window, args.rounds, metrics)
            label = "on" if metrics else "off"
            print(f"{label:>7}  {window:>17}  {request:>14.2f}  {answer:>13.2f}  {request + answer:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
