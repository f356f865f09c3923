"""The Cx roles in-process: microseconds of Python per MAR/MAA pair, no sockets.

    python bench/relay_cx.py partner [--window 128] [--reads 400] [--rounds 5] [--metrics] [--profile]
    python bench/relay_cx.py primary [...]

``partner``: a node in the `partner` role (its SQLite store: bench/gateway.py's cached store
of 1,000,000 inbound bindings when it exists, else a store of --bindings built here) with an
S-CSCF peer and the primary gateway's peer on in-memory transports; each read carries
``window`` MARs for inbound identities drawn at random (a new Session-Id each; every
active binding read into memory first, as a running gateway's watch does when it starts), and the MAAs
of what was forwarded come back in one read, as bench/relay_roles.py's HSS stub answers them.
``primary``: a node in the `primary` + `hss` roles (a copy of a primary store) fed the MARs a
partner gateway sends (outbound identities), answered by the in-process HSS.

Times only ``DiameterNode.receive``; the minimum over rounds per pair. Every answer is
checked to be 2001. bench/gateway.py measures the whole processes; this is what a change
to the Python costs, quickly, and what ``--profile`` (cProfile) looks at.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from twisted.internet import task  # noqa: E402
from twisted.internet.testing import StringTransport  # noqa: E402

from gateway.applications.caches import Preload  # noqa: E402
from gateway.applications.cx import CX, Local  # noqa: E402
from gateway.applications.hss import HssApplication  # noqa: E402
from gateway.applications.partner import PartnerApplication  # noqa: E402
from gateway.applications.primary import PrimaryApplication  # noqa: E402
from gateway.applications.service import CxService  # noqa: E402
from gateway.applications.storage import StoreAccess  # noqa: E402
from gateway.node import DiameterNode  # noqa: E402
from gateway.observe.counts import NodeMetrics  # noqa: E402
from gateway.peer import WatchdogState  # noqa: E402
from gateway.peer.capabilities import Application, LocalIdentity  # noqa: E402
from gateway.routing.table import Route, RouteAction, RouteTarget  # noqa: E402
from gateway.settings import Limits, PeerSettings, Timers  # noqa: E402
from gateway.transport.connection import DiameterConnection  # noqa: E402
from hss_store import open_store  # noqa: E402

HERE = Path(__file__).resolve().parent


def _roles_module():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_relay_roles", HERE / "relay_roles.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_roles = _roles_module()
PARTNER_IMPI, PARTNER_IMPU = "mig-{:07d}@partner.example", "sip:mig-{:07d}@partner.example"
OUT_IMPI, OUT_IMPU = "out-{:07d}@primary.example", "sip:out-{:07d}@primary.example"
EXPERIMENTAL_2001 = struct.pack(">I", 2001)


def _open(node: DiameterNode, host: str, role: str) -> DiameterConnection:
    peer = node.peers[host]  # open, as the peer state machine leaves it
    connection = DiameterConnection(node, role, peer)
    connection.transport = StringTransport()
    connection.connected = True
    peer.connection = connection
    peer.watchdog.state = WatchdogState.OKAY
    return connection


def _frames(data: bytes) -> list[bytes]:
    out, offset = [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        out.append(data[offset : offset + length])
        offset += length
    return out


def partner_node(store_path: str, metrics: bool) -> tuple[DiameterNode, DiameterConnection, DiameterConnection]:
    clock = task.Clock()
    node = DiameterNode(
        LocalIdentity("gw.partner.example", "partner.example", applications=(Application(CX, 10415),)),
        reactor=clock,
        peers=[PeerSettings("gw.primary.example", "primary.example", "127.0.0.1", 3868),
               PeerSettings("scscf.partner.example", "partner.example", connect=False)],
        routes=[Route("primary.example", CX, RouteAction.PROXY, [RouteTarget("gw.primary.example")]),
                Route("partner.example", CX, RouteAction.LOCAL, [])],
        timers=Timers(tx=10.0), limits=Limits(max_pending_per_peer=100_000, max_pending=200_000),
        metrics=NodeMetrics() if metrics else None,
    )
    local = Local("gw.partner.example", "partner.example")
    access = StoreAccess(open_store(store_path), clock)
    partner = PartnerApplication(access, local, node.send_request, new_end_to_end=node.new_end_to_end)
    partner.bindings.watching()  # as under the revocation watch of a running gateway
    _load(access, "inbound", partner.bindings, clock)
    node.applications[CX] = CxService(local, node, partner=partner)
    return node, _open(node, "scscf.partner.example", "R"), _open(node, "gw.primary.example", "I")


def _load(access: StoreAccess, direction: str, cache: Any, clock: task.Clock) -> None:
    """Every active binding into the cache's packed tier, as a running gateway's watch
    does when it starts (caches.Preload)."""
    preload = Preload(access, direction, cache, clock)
    preload.start()
    while not preload.done:
        clock.advance(0)


def primary_node(store_path: str, metrics: bool) -> tuple[DiameterNode, DiameterConnection, DiameterConnection]:
    clock = task.Clock()
    node = DiameterNode(
        LocalIdentity("gw.primary.example", "primary.example", applications=(Application(CX, 10415),)),
        reactor=clock,
        peers=[PeerSettings("gw.partner.example", "partner.example", connect=False)],
        routes=[Route("primary.example", CX, RouteAction.LOCAL, [])],
        timers=Timers(tx=10.0), limits=Limits(max_pending_per_peer=100_000, max_pending=200_000),
        metrics=NodeMetrics() if metrics else None,
    )
    local = Local("gw.primary.example", "primary.example")
    access = StoreAccess(open_store(store_path), clock)
    hss = HssApplication(access, local, 5)
    primary = PrimaryApplication(access, local, {"gw.partner.example": "partner-a"}, hss=hss)
    primary.bindings.watching()  # as under the change watch of a running gateway
    primary.agreements.watching()
    _load(access, "outbound", primary.bindings, clock)
    node.applications[CX] = CxService(local, node, hss=hss, primary=primary)
    client = _open(node, "gw.partner.example", "R")
    return node, client, client


def measure(args: argparse.Namespace) -> float:
    work = Path(tempfile.mkdtemp(prefix="cxgw-relay-cx-"))
    try:
        if args.role == "partner":
            store = Path(args.cache_dir) / f"partner-b{args.bindings}.sqlite"
            if not store.exists():
                raise SystemExit(f"{store} does not exist: run bench/gateway.py --bindings {args.bindings} once")
            node, client, server = partner_node(str(store), args.metrics)
            factory = _roles.MarFactory("scscf.partner.example", "partner.example", "partner.example")
            impi, impu = PARTNER_IMPI, PARTNER_IMPU
        else:
            source = Path(args.cache_dir) / f"primary-b{args.bindings}-s{args.subscribers}.sqlite"
            if not source.exists():
                raise SystemExit(f"{source} does not exist: run bench/gateway.py --bindings {args.bindings} "
                                 f"--subscribers {args.subscribers} once")
            store = work / "primary.sqlite"
            shutil.copyfile(source, store)
            node, client, server = primary_node(str(store), args.metrics)
            factory = _roles.MarFactory("gw.partner.example", "partner.example", "primary.example")
            impi, impu = OUT_IMPI, OUT_IMPU
        _roles.HssStub.prepare("gw.primary.example", "primary.example")
        stub = _roles.HssStub()
        stub.transport = StringTransport()
        best = float("inf")
        serial = 0
        profile = cProfile.Profile() if args.profile else None
        for _ in range(args.rounds):
            spent = 0.0
            for _ in range(args.reads):
                batch = []
                for _ in range(args.window):
                    serial += 1
                    n = random.randrange(args.identities or args.bindings)
                    batch.append(factory.build(serial & 0xFFFFFFFF, f"scscf.partner.example;1;{serial}",
                                               impi.format(n), impu.format(n)))
                data = b"".join(batch)
                if profile is not None:
                    profile.enable()
                started = time.perf_counter()
                node.receive(client, data)
                spent += time.perf_counter() - started
                if server is not client:
                    forwarded = server.transport.value()  # type: ignore[attr-defined]
                    server.transport.clear()  # type: ignore[attr-defined]
                    stub.data_received(forwarded)  # (the HSS stub's time is not counted)
                    answers = stub.transport.value()
                    stub.transport.clear()
                    started = time.perf_counter()
                    node.receive(server, answers)
                    spent += time.perf_counter() - started
                if profile is not None:
                    profile.disable()
                answered = _frames(client.transport.value())  # type: ignore[attr-defined]
                client.transport.clear()  # type: ignore[attr-defined]
                bad = [a for a in answered if _roles.result_of(a) != 2001]
                if len(answered) != args.window or bad:
                    raise SystemExit(f"{len(answered)} answers to {args.window} MARs, {len(bad)} not 2001: "
                                     f"{[_roles.result_of(a) for a in bad[:5]]}")
            best = min(best, spent / (args.reads * args.window) * 1e6)
        if profile is not None:
            pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
        return best
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("partner", "primary"))
    parser.add_argument("--window", type=int, default=128, help="MARs per read")
    parser.add_argument("--reads", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bindings", type=int, default=1_000_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--identities", type=int, default=0,
                        help="draw identities among the first N only (0: all; small N: bindings held in memory)")
    parser.add_argument("--cache-dir", default="/tmp/cxgw-bench")
    parser.add_argument("--metrics", action="store_true", help="metrics on (every message counted)")
    parser.add_argument("--profile", action="store_true", help="cProfile of every round, printed at the end")
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    us = measure(args)
    print(f"{args.role}: {us:.1f} us of Python per MAR/MAA pair (window {args.window}, metrics "
          f"{'on' if args.metrics else 'off'}, best of {args.rounds} x {args.reads} reads)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
