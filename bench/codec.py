"""Codec benchmark: cx_codec against python-diameter on the same messages, in one run.

    python bench/codec.py [--messages 4096] [--seconds 0.4] [--repeat 5]

Messages are the realistic samples of ``cx_codec.samples`` (a MAR with one
SIP-Auth-Data-Item, an MAA with one full AKA item), each turned into ``--messages``
variants with distinct Session-Id, User-Name and Public-Identity (and, for the MAA, fresh
random RAND/AUTN/XRES/CK/IK), as real traffic has. Every rate is the best of
``--repeat`` runs of ``--seconds``, cycling through the variants.

"full decode" is cx_codec's strict decode: every value, every Grouped member, flag rules
and grammar. "full decode, nothing cached" is the same with its three caches off (interned
AVPs, Grouped member layouts, message templates): every AVP decoded and judged from scratch.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable, Sequence

import diameter.message as pd

from cx_codec import decode, decode_lazy, samples
from cx_codec.avp import Avp
from cx_codec.build import avp as make_avp
from cx_codec.dictionary import Dictionary, base, cx, digest, doic
from cx_codec.message import Message
from cx_codec.rewrite import rewrite

USER_NAME = (1, 0)
PUBLIC_IDENTITY = (601, 10415)


class _Forgetful(dict):
    """A cache that never keeps anything."""

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def setdefault(self, key: object, default: object = None) -> object:
        return default


def _sample_bytes(sample: object) -> bytes:
    return sample if isinstance(sample, bytes) else sample.encode()  # type: ignore[attr-defined]


def variants(template: bytes, count: int) -> list[bytes]:
    """``count`` copies of the message with per-user AVPs made unique."""
    out = []
    for index in range(count):
        message = decode(template)
        user = f"mig-{index:06d}-{os.urandom(4).hex()}"
        realm = str(message["Origin-Realm"])
        message.set(make_avp("Session-Id", f"{message['Origin-Host']};{int(time.time())};{index}"))
        if "User-Name" in message:
            message.set(make_avp("User-Name", f"{user}@{realm}"))
        if "Public-Identity" in message:
            message.set(make_avp("Public-Identity", f"sip:{user}@{realm}"))
        item = message.find("SIP-Auth-Data-Item")
        if item is not None and item.find("SIP-Authenticate") is not None:
            message.set(_fresh_vector(item))
        out.append(message.encode())
    return out


def _fresh_vector(item: Avp) -> Avp:
    fresh = {
        "SIP-Authenticate": os.urandom(32),
        "SIP-Authorization": os.urandom(len(item.get("SIP-Authorization", b"") or b"\0" * 8)),
        "Confidentiality-Key": os.urandom(16),
        "Integrity-Key": os.urandom(16),
    }
    members = [make_avp(child.name, fresh[child.name]) if child.name in fresh else child for child in item.children]
    return make_avp("SIP-Auth-Data-Item", members)


def rate(operation: Callable[[bytes], object], inputs: Sequence[bytes], seconds: float, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        cycle = itertools.cycle(inputs)
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for data in itertools.islice(cycle, 512):
                operation(data)
            done += 512
            now = time.perf_counter()
            if now >= deadline:
                break
        best = max(best, done / (now - start))
    return best


def pd_rewrite(data: bytes) -> bytes:
    """python-diameter's way to change two AVPs: decode, edit, encode."""
    message = pd.Message.from_bytes(data, plain_msg=True)
    for avp in message.avps:
        if avp.code == 1 and avp.vendor_id == 0:
            avp.value = "alice@primary.example"
        elif avp.code == 601 and avp.vendor_id == 10415:
            avp.value = "sip:alice@primary.example"
    return message.as_bytes()


def run(count: int, seconds: float, repeat: int) -> list[tuple[str, ...]]:
    cold = Dictionary().load(base, digest, doic, cx)
    cold.interned = _Forgetful()
    cold.templates = _Forgetful()
    cold.layouts = _Forgetful()
    rows: list[tuple[str, ...]] = []
    for label, sample in (("MAR", samples.SAMPLE_MAR), ("MAA", samples.SAMPLE_MAA)):
        rows.extend(measure_sample(label, variants(_sample_bytes(sample), count), cold, seconds, repeat))
    return rows


def measure_sample(
    label: str, inputs: list[bytes], cold: Dictionary, seconds: float, repeat: int
) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    size = sum(map(len, inputs)) // len(inputs)
    decoded = [decode(data) for data in inputs]
    pd_plain = [pd.Message.from_bytes(data, plain_msg=True) for data in inputs]
    pd_typed = [pd.Message.from_bytes(data) for data in inputs]
    assert all(p.as_bytes() == d for p, d in zip(pd_plain, inputs, strict=True)), "python-diameter changed bytes"
    by_bytes = dict(zip(inputs, decoded, strict=True))
    pd_plain_by = dict(zip(inputs, pd_plain, strict=True))
    pd_typed_by = dict(zip(inputs, pd_typed, strict=True))
    new_values = {USER_NAME: b"alice@primary.example", PUBLIC_IDENTITY: b"sip:alice@primary.example"}

    def measure(operation: Callable[[bytes], object]) -> float:
        return rate(operation, inputs, seconds, repeat)

    figures = {
        "lazy decode": measure(decode_lazy),
        "full decode": measure(decode),
        "full decode, nothing cached": measure(lambda data: decode(data, cold)),
        "encode (serialise AVPs)": measure(lambda data: by_bytes[data].pack()),
        "pd typed decode": measure(pd.Message.from_bytes),
        "pd plain decode": measure(lambda data: pd.Message.from_bytes(data, plain_msg=True)),
        "pd plain encode": measure(lambda data: pd_plain_by[data].as_bytes()),
        "pd typed encode": measure(lambda data: pd_typed_by[data].as_bytes()),
    }
    if label == "MAR":
        figures["rewrite User-Name + Public-Identity"] = measure(lambda data: rewrite(data, new_values))
        figures["pd decode + edit + encode"] = measure(pd_rewrite)
    plain_decode = figures["pd plain decode"]
    comparisons = {
        "lazy decode": (plain_decode, None),
        "full decode": (plain_decode, 3.0),
        "full decode, nothing cached": (plain_decode, None),
        "encode (serialise AVPs)": (figures["pd plain encode"], 2.0),
        "rewrite User-Name + Public-Identity": (figures.get("pd decode + edit + encode"), 10.0),
    }
    for name, value in figures.items():
        reference, goal = comparisons.get(name, (None, None))
        ratio = f"{value / reference:.1f}x" if reference else ""
        verdict = "" if goal is None else ("met" if value / reference >= goal else "NOT met")  # type: ignore[operator]
        rows.append((label, str(size), name, f"{value:,.0f}", ratio, f">= {goal:g}x {verdict}" if goal else ""))
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=16384,
        help="distinct variants per sample (enough that per-user AVPs do not recur within the codec's intern window)",
    )
    parser.add_argument("--seconds", type=float, default=0.4, help="length of one timed run")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (best is kept)")
    args = parser.parse_args(argv)
    rows = run(args.messages, args.seconds, args.repeat)
    header = ("msg", "bytes", "operation", "ops/s", "vs python-diameter", "goal")
    widths = [max(len(row[i]) for row in (*rows, header)) for i in range(len(header))]
    print(f"python {sys.version.split()[0]}, python-diameter {getattr(pd, '__version__', '0.9.x')}, pid {os.getpid()}")
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["Message", "main"]
