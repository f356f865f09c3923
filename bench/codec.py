"""Codec benchmark: cx_codec against python-diameter on the same messages, in one run.

    python bench/codec.py [--fresh 20000] [--messages 16384] [--seconds 0.4] [--repeat 5]
    python bench/codec.py --many              # strict decode of 1k, 16k, 64k AVPs at one level

Messages are the realistic samples of ``cx_codec.samples`` (a MAR with one
SIP-Auth-Data-Item, an MAA with one full AKA item).

Headline, "never seen": every input is decoded once and was never seen by the codec
before, as in real traffic -- each MAR a new Session-Id, User-Name and Public-Identity,
each MAA those and new vectors (SIP-Authenticate, SIP-Authorization,
Confidentiality-Key, Integrity-Key). Each timed run decodes ``--fresh`` new inputs; the
rate is the best of ``--repeat`` runs, and python-diameter's plain decode
(``Message.from_bytes(..., plain_msg=True)``) runs on the same inputs in the same run.

Secondary, "seen before": ``--messages`` such variants, cycled for ``--seconds`` per run,
so that every input has been decoded before (the codec's caches see repeats).

"full decode" is cx_codec's strict decode: every value, every Grouped member, flag rules
and grammar. "nothing cached" is the same with its caches off (interned AVPs, Grouped
member layouts, message templates, grammar verdicts): every AVP judged from scratch.
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
SESSION_ID = (263, 0)
SIP_AUTH_DATA_ITEM = (612, 10415)


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


class FreshInputs:
    """Never-seen variants of a sample, made at the byte level (``rewrite``), fast enough
    to feed every timed run with new ones: Session-Id (RFC 6733 §8.8 form, a counter),
    User-Name and Public-Identity (a counter and random hex, 0-6 digits of it: several
    lengths), and for an MAA a new
    SIP-Auth-Data-Item with random vectors of the sample's lengths."""

    def __init__(self, sample: bytes) -> None:
        self.sample = sample
        message = decode(sample)
        self.host = str(message["Origin-Host"])
        self.realm = str(message["Origin-Realm"])
        self.stamp = int(time.time())
        self.keys = [key for key in (SESSION_ID, USER_NAME, PUBLIC_IDENTITY) if message.find(_NAMES[key]) is not None]
        item = message.find("SIP-Auth-Data-Item")
        self.item_members: list[tuple[bytes, int]] | None = None
        if item is not None and item.find("SIP-Authenticate") is not None:
            # (member bytes to keep, or the header of a member whose data is fresh, data length)
            self.item_members = [
                (child.encode()[: 12 if child.flags & 0x80 else 8], len(child.data)) if child.name in _VECTORS
                else (child.encode(), -1)
                for child in item.children
            ]
        self.counter = itertools.count(1)

    def batch(self, count: int) -> list[bytes]:
        out = []
        for _ in range(count):
            index = next(self.counter)
            # identities of several lengths (and so messages of several lengths), as
            # subscribers' are; the Session-Id counter grows a digit now and then
            user = f"mig-{index:07d}-{os.urandom(4).hex()[: index % 7]}"
            values = {
                SESSION_ID: f"{self.host};{self.stamp};{index}".encode(),
                USER_NAME: f"{user}@{self.realm}".encode(),
                PUBLIC_IDENTITY: f"sip:{user}@{self.realm}".encode(),
            }
            values = {key: values[key] for key in self.keys}
            if self.item_members is not None:
                values[SIP_AUTH_DATA_ITEM] = self._fresh_item()
            out.append(rewrite(self.sample, values))
        return out

    def _fresh_item(self) -> bytes:
        parts = []
        for raw, size in self.item_members:  # type: ignore[union-attr]
            if size < 0:
                parts.append(raw)
            else:
                header = raw[:5] + (len(raw) + size).to_bytes(3, "big") + raw[8:]
                parts.append(header + os.urandom(size) + bytes(-size % 4))
        return b"".join(parts)


_NAMES = {SESSION_ID: "Session-Id", USER_NAME: "User-Name", PUBLIC_IDENTITY: "Public-Identity"}
_VECTORS = frozenset({"SIP-Authenticate", "SIP-Authorization", "Confidentiality-Key", "Integrity-Key"})


def rate_once_each(
    operations: dict[str, Callable[[bytes], object]], fresh: FreshInputs, count: int, repeat: int
) -> dict[str, float]:
    """Best rate of each operation over ``repeat`` runs, each on ``count`` inputs never
    decoded before (the same inputs for every operation of a run, so one operation's
    caches could help another's: the codec's operations go first)."""
    best = dict.fromkeys(operations, 0.0)
    for _ in range(repeat):
        inputs = fresh.batch(count)
        for name, operation in operations.items():
            start = time.perf_counter()
            for data in inputs:
                operation(data)
            best[name] = max(best[name], count / (time.perf_counter() - start))
    return best


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


def run(count: int, seconds: float, repeat: int, fresh: int) -> list[tuple[str, ...]]:
    cold = Dictionary().load(base, digest, doic, cx)
    cold.interned = _Forgetful()
    cold.templates = _Forgetful()
    cold.layouts = _Forgetful()
    cold.signatures = _Forgetful()
    rows: list[tuple[str, ...]] = []
    for label, sample in (("MAR", samples.SAMPLE_MAR), ("MAA", samples.SAMPLE_MAA)):
        rows.extend(measure_never_seen(label, FreshInputs(_sample_bytes(sample)), cold, fresh, repeat))
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
        "full decode": (plain_decode, None),
        "full decode, nothing cached": (plain_decode, None),
        "encode (serialise AVPs)": (figures["pd plain encode"], 2.0),
        "rewrite User-Name + Public-Identity": (figures.get("pd decode + edit + encode"), 10.0),
    }
    for name, value in figures.items():
        reference, goal = comparisons.get(name, (None, None))
        ratio = f"{value / reference:.1f}x" if reference else ""
        verdict = "" if goal is None else ("met" if value / reference >= goal else "NOT met")  # type: ignore[operator]
        rows.append((label, str(size), f"{name}, seen before", f"{value:,.0f}", ratio, f">= {goal:g}x {verdict}" if goal else ""))
    return rows


def measure_never_seen(label: str, fresh: FreshInputs, cold: Dictionary, count: int, repeat: int) -> list[tuple[str, ...]]:
    check = fresh.batch(8)
    for data in check:
        decode(data)  # the variants are valid
        assert pd.Message.from_bytes(data, plain_msg=True).as_bytes() == data, "python-diameter changed bytes"
    size = sum(map(len, check)) // len(check)
    figures = rate_once_each(
        {
            "full decode, never seen": decode,
            "full decode, never seen, nothing cached": lambda data: decode(data, cold),
            "lazy decode, never seen": decode_lazy,
            "pd plain decode, never seen": lambda data: pd.Message.from_bytes(data, plain_msg=True),
        },
        fresh,
        count,
        repeat,
    )
    reference = figures["pd plain decode, never seen"]
    goals = {"full decode, never seen": 3.0}
    rows = []
    for name, value in figures.items():
        goal = goals.get(name)
        ratio = "" if name.startswith("pd ") else f"{value / reference:.2f}x"
        verdict = "" if goal is None else f">= {goal:g}x {'met' if value / reference >= goal else 'NOT met'}"
        rows.append((label, str(size), name, f"{value:,.0f}", ratio, verdict))
    return rows


def measure_many(counts: Sequence[int], repeat: int) -> list[tuple[str, ...]]:
    """Strict decode of a MAR with ``count`` extra Route-Record AVPs (RFC 6733 §6.1.9,
    ``*[ Route-Record ]`` in TS 29.229 §6.1.7) at the top level, each decode on empty
    caches (a layout never seen): time per AVP should not grow with the count."""
    mar = _sample_bytes(samples.SAMPLE_MAR)
    rows = []
    for count in counts:
        extra = b"".join(make_avp("Route-Record", f"dra{index}.partner.example").encode() for index in range(count))
        data = mar[:1] + (len(mar) + len(extra)).to_bytes(3, "big") + mar[4:] + extra
        dictionary = Dictionary().load(base, digest, doic, cx)
        best = float("inf")
        for _ in range(repeat):
            dictionary.clear_caches()
            start = time.perf_counter()
            decode(data, dictionary)
            best = min(best, time.perf_counter() - start)
        rows.append((f"{count + 11:,}", f"{len(data) // 1024:,} KiB", f"{best * 1000:.1f} ms", f"{best / (count + 11) * 1e6:.2f} us"))
    return rows


def _print_table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in (*rows, header)) for i in range(len(header))]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--messages", type=int, default=16384,
        help="distinct variants per sample for the seen-before figures (cycled)",
    )
    parser.add_argument("--fresh", type=int, default=20000, help="never-seen inputs per timed run")
    parser.add_argument("--seconds", type=float, default=0.4, help="length of one timed run (seen before)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per figure (best is kept)")
    parser.add_argument("--many", action="store_true", help="only: strict decode of 1k, 16k and 64k AVPs at one level")
    args = parser.parse_args(argv)
    print(f"python {sys.version.split()[0]}, python-diameter {getattr(pd, '__version__', '0.9.x')}, pid {os.getpid()}")
    if args.many:
        rows = measure_many((1024, 16384, 65536), args.repeat)
        _print_table(("AVPs", "size", "strict decode", "per AVP"), rows)
        return 0
    rows = run(args.messages, args.seconds, args.repeat, args.fresh)
    _print_table(("msg", "bytes", "operation", "ops/s", "vs python-diameter", "goal"), rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["Message", "main"]
