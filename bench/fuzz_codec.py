"""Long-run fuzzing of the cx_codec decoder: the properties of tests/cx_codec/test_properties.py
in a plain loop, for as many examples as you like.

    python bench/fuzz_codec.py --examples 1000000 --seed 7

Every input is a valid encoded message (MAR, MAA, error answer, CER/CEA, DWR/DWA, DPR/DPA,
with unknown AVPs at the top level and inside SIP-Auth-Data-Item) mutated by a few of:
bit flips, byte overwrites, truncation, extension, insertion, deletion, message-length
edits, AVP header edits (length, flags, code, vendor), AVP data replacement, AVP
duplication / removal / move with the enclosing lengths fixed up, and splices from other
messages; plus purely random byte strings. Each input goes through ``decode``,
``decode_lazy`` and a walk of ``.value`` / ``.children`` on the lazy result. The property:
they succeed or raise ``cx_codec.errors.DecodeError`` with a result code of the
requirement (and Failed-AVP bytes where RFC 6733 §7.5 wants them), and a successful decode
re-encodes to the same bytes. Unless ``--decode-only``, each input also goes through
the byte walkers of ``cx_codec.rewrite`` (``rewrite``, ``top_level``, ``find_base_avp``,
``first_base_value``: a result or DecodeError 5014/5015; a rewritten valid message stays
valid), ``error_answer_bytes`` for requests (the answer passes strict decode), and a
decode with empty caches (the same verdict as the warm default dictionary's). Anything
else is printed with a reproducer hex.

The test suite loads this file (``load_harness`` in test_properties.py) so the bounded
CI run and this long run check the same thing.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cx_codec.avp import Avp, pack_avp  # noqa: E402
from cx_codec.build import (  # noqa: E402
    answer_for,
    avp,
    error_answer,
    error_answer_bytes,
    new_message,
    new_request,
)
from cx_codec.datatypes import DataType  # noqa: E402
from cx_codec.dictionary import DEFAULT_DICTIONARY, Dictionary, base, cx, digest, doic  # noqa: E402
from cx_codec.errors import DecodeError  # noqa: E402
from cx_codec.message import decode, decode_lazy  # noqa: E402
from cx_codec.rewrite import find_base_avp, first_base_value, rewrite, top_level  # noqa: E402

# The result codes the requirement lists; the decoder must never report another.
ALLOWED_CODES = frozenset({3008, 3009, 5001, 5004, 5005, 5008, 5009, 5011, 5014, 5015})
# RFC 6733 §7.1: these MUST carry the offending AVP (or, for 5005, an example) in Failed-AVP
NEEDS_FAILED_AVP = frozenset({3009, 5001, 5004, 5005, 5008, 5009, 5014})
# ... and for these the Failed-AVP bytes are the offending AVP as received
FAILED_AVP_FROM_INPUT = frozenset({3009, 5001, 5004, 5008, 5009, 5014})
FATAL_CODES = frozenset({5011, 5015})
FAILED_AVP = (279, 0)
SUCCESS = 2001

GROUPED_KEYS = frozenset(
    key for key, d in DEFAULT_DICTIONARY.avps.items() if d.type is DataType.Grouped
)
KNOWN_KEYS = sorted(DEFAULT_DICTIONARY.avps)


class PropertyViolation(AssertionError):
    """The decoder broke one of the properties (not a crash: a wrong answer)."""


# -- seeds: valid messages built through the public builders ------------------------------


def unknown_avp(code: int, data: bytes, vendor: int = 0) -> Avp:
    """An AVP the dictionary does not know, without the M bit: must pass through."""
    flags = 0x80 if vendor else 0
    return Avp(code, flags, vendor, data, raw=pack_avp(code, flags, vendor, data))


def _mar(**overrides: object) -> object:
    fields: dict[str, object] = {
        "session_id": "scscf1.home.net;1234;5678",
        "vendor_specific_application_id": {"vendor_id": 10415, "auth_application_id": 16777216},
        "auth_session_state": "NO_STATE_MAINTAINED",
        "origin_host": "scscf1.home.net",
        "origin_realm": "home.net",
        "destination_realm": "hss.net",
        "destination_host": "hss1.hss.net",
        "user_name": "alice@home.net",
        "public_identity": "sip:alice@home.net",
        "sip_auth_data_item": {"sip_authentication_scheme": "Digest-AKAv1-MD5"},
        "sip_number_auth_items": 1,
        "server_name": "sip:scscf1.home.net:5060",
    }
    fields.update(overrides)
    return new_request(
        "Multimedia-Auth-Request", hop_by_hop=0x1234ABCD, end_to_end=0x0BADCAFE, **fields
    )


def seed_messages() -> list[bytes]:
    """Valid encodings covering every data type the dictionary uses and every grammar shape."""
    proxy_info = [
        {"proxy_host": "dra1.home.net", "proxy_state": b"\x01state-one"},
        {"proxy_host": "dra2.home.net", "proxy_state": b"s2"},
    ]
    mar = _mar(
        proxy_info=proxy_info,
        route_record=["dra1.home.net", "dra2.home.net"],
        sip_auth_data_item={
            "sip_authentication_scheme": "Digest-AKAv1-MD5",
            "sip_authorization": bytes(range(30)),
            "extra": [unknown_avp(9999, b"opaque"), unknown_avp(1, b"\xff\x00\x01", vendor=99)],
        },
        extra=[
            unknown_avp(4242, b"top-level unknown"),
            avp("Event-Timestamp", datetime(2040, 1, 1, tzinfo=UTC)),
            avp("Accounting-Sub-Session-Id", 2**63 + 5),
            avp("Redirect-Host", "aaa://hss1.hss.net:3868;transport=tcp"),
            avp("Load", {"load_type": 0, "load_value": 123456789, "sourceid": "hss1.hss.net"}),
        ],
    )
    request = decode(mar.encode())
    vector = {
        "sip_item_number": 1,
        "sip_authentication_scheme": "Digest-AKAv1-MD5",
        "sip_authenticate": bytes(range(32)),
        "sip_authorization": bytes(range(100, 116)),
        "confidentiality_key": bytes(range(16)),
        "integrity_key": bytes(range(16, 32)),
    }
    maa = answer_for(
        request,
        origin_host="hss1.hss.net",
        origin_realm="hss.net",
        result_code=2001,
        user_name="alice@home.net",
        public_identity="sip:alice@home.net",
        sip_number_auth_items=2,
        sip_auth_data_item=[vector, {**vector, "sip_item_number": 2}],
    )
    maa_experimental = answer_for(
        request,
        origin_host="hss1.hss.net",
        origin_realm="hss.net",
        experimental_result=(10415, 5001),
    )
    failed = request.find("Origin-Host").encode()  # type: ignore[union-attr]
    maa_failed = error_answer(
        request, 5004, origin_host="hss1.hss.net", origin_realm="hss.net", failed=failed
    )
    protocol_error = error_answer(
        request,
        3008,
        origin_host="dra1.home.net",
        origin_realm="home.net",
        error_message="reserved bits",
        error_reporting_host="dra1.home.net",
        failed=failed,
    )
    cer = new_message(
        "Capabilities-Exchange-Request",
        hop_by_hop=1,
        end_to_end=2,
        origin_host="gw.home.net",
        origin_realm="home.net",
        host_ip_address=["192.0.2.1", "2001:db8::1"],
        vendor_id=10415,
        product_name="cxgw",
        origin_state_id=7,
        supported_vendor_id=[10415],
        auth_application_id=[16777216],
        vendor_specific_application_id=[{"vendor_id": 10415, "auth_application_id": 16777216}],
        firmware_revision=1,
    )
    cea = new_message(
        "Capabilities-Exchange-Answer",
        hop_by_hop=1,
        end_to_end=2,
        result_code=2001,
        origin_host="hss1.hss.net",
        origin_realm="hss.net",
        host_ip_address=["198.51.100.7"],
        vendor_id=0,
        product_name="hss",
        auth_application_id=[16777216],
    )
    dwr = new_message(
        "Device-Watchdog-Request",
        origin_host="gw.home.net",
        origin_realm="home.net",
        origin_state_id=1,
    )
    dwa = new_message(
        "Device-Watchdog-Answer",
        result_code=2001,
        origin_host="hss1.hss.net",
        origin_realm="hss.net",
    )
    dpr = new_message(
        "Disconnect-Peer-Request",
        origin_host="gw.home.net",
        origin_realm="home.net",
        disconnect_cause="REBOOTING",
    )
    dpa = new_message(
        "Disconnect-Peer-Answer",
        result_code=5008,
        origin_host="hss1.hss.net",
        origin_realm="hss.net",
        error_message="no",
        failed_avp={"extra": [unknown_avp(777, b"x")]},
    )
    messages = [
        mar,
        maa,
        maa_experimental,
        maa_failed,
        protocol_error,
        cer,
        cea,
        dwr,
        dwa,
        dpr,
        dpa,
        _mar(),
    ]
    seeds = [message.encode() for message in messages]  # type: ignore[attr-defined]
    for seed in seeds:
        decode(seed)  # every seed is valid, or the harness itself is wrong
    return seeds


# -- mutations --------------------------------------------------------------------------------


def scan_avps(data: bytes) -> list[tuple[int, int, tuple[int, ...]]]:
    """(offset, padded length, offsets of the enclosing Grouped AVPs) of every AVP that can
    be found, top level and nested, tolerating damage: stops a level at the first bad length."""
    found: list[tuple[int, int, tuple[int, ...]]] = []
    stack = [(20, len(data), ())]
    while stack:
        offset, end, parents = stack.pop()
        while end - offset >= 8:
            code = int.from_bytes(data[offset : offset + 4], "big")
            flags = data[offset + 4]
            length = int.from_bytes(data[offset + 5 : offset + 8], "big")
            vendor = int.from_bytes(data[offset + 8 : offset + 12], "big") if flags & 0x80 else 0
            header = 12 if flags & 0x80 else 8
            padded = (length + 3) & ~3
            if length < header or offset + padded > end:
                break
            found.append((offset, padded, parents))
            if (code, vendor) in GROUPED_KEYS and len(parents) < 8:
                stack.append((offset + header, offset + length, (*parents, offset)))
            offset += padded
    return found


def _set_length(data: bytearray, offset: int, value: int) -> None:
    data[offset : offset + 3] = (value & 0xFFFFFF).to_bytes(3, "big")


def _resize(data: bytearray, parents: tuple[int, ...], delta: int) -> None:
    """After inserting/removing ``delta`` bytes inside nested AVPs: fix their lengths and the
    message length (so that the mutation reaches the AVP and grammar checks)."""
    for parent in parents:
        old = int.from_bytes(data[parent + 5 : parent + 8], "big")
        _set_length(data, parent + 5, old + delta)
    _set_length(data, 1, len(data))


def _pattern(a: int, b: int, size: int) -> bytes:
    return bytes((a * 31 + b + i * (a | 1)) & 0xFF for i in range(size))


N_OPS = 20


def mutate(data: bytes, op: int, a: int, b: int, fix_length: bool, seeds: list[bytes]) -> bytes:
    """Apply one mutation; ``a`` and ``b`` are 16-bit parameters, ``op`` picks the kind."""
    buf = bytearray(data)
    size = len(buf)
    op %= N_OPS
    if op == 0 and size:  # flip one bit
        bit = a * 65536 + b
        buf[(bit >> 3) % size] ^= 1 << (bit & 7)
    elif op == 1 and size:  # overwrite a byte
        buf[a % size] = b & 0xFF
    elif op == 2:  # truncate
        del buf[a % (size + 1) :]
    elif op == 3:  # extend
        buf += _pattern(a, b, a % 40 + 1)
    elif op == 4:  # insert bytes
        position = a % (size + 1)
        buf[position:position] = _pattern(a, b, b % 13 + 1)
    elif op == 5 and size:  # delete a range
        position = a % size
        del buf[position : position + b % 24 + 1]
    elif op == 6 and size >= 4:  # message length field
        choice = b % 6
        declared = {
            0: len(buf) + (a % 33) - 16,
            1: (a << 8 | b) & 0xFFFFFF,
            2: 0xFFFFFF,
            3: 16 * 1024 * 1024 - 4,
            4: a % 24,
            5: len(buf) + 4 * ((a % 9) - 4),
        }[choice]
        _set_length(buf, 1, max(declared, 0))
    elif op == 7 and size >= 5:  # command flags
        buf[4] = b & 0xFF
    elif op == 8 and size:  # version
        buf[0] = b & 0xFF if b & 1 else (a % 4)
    elif op == 9:  # splice: bytes from another message
        other = seeds[a % len(seeds)]
        start = b % len(other)
        chunk = other[start : start + (a % 64) + 1]
        position = b % (size + 1)
        if a & 1:
            buf[position : position + len(chunk)] = chunk
        else:
            buf[position:position] = chunk
    elif op >= 10:
        avps = scan_avps(bytes(buf))
        if not avps:
            return bytes(buf)
        offset, padded, parents = avps[a % len(avps)]
        _mutate_avp(buf, op, offset, padded, parents, a, b, avps)
        return bytes(buf)  # AVP-level edits keep the lengths they chose
    if fix_length and len(buf) >= 4:
        _set_length(buf, 1, len(buf))
    return bytes(buf)


def _mutate_avp(
    buf: bytearray,
    op: int,
    offset: int,
    padded: int,
    parents: tuple[int, ...],
    a: int,
    b: int,
    avps: list[tuple[int, int, tuple[int, ...]]],
) -> None:
    flags = buf[offset + 4]
    header = 12 if flags & 0x80 else 8
    length = int.from_bytes(buf[offset + 5 : offset + 8], "big")
    if op == 10:  # AVP length field
        choice = b % 5
        new = {0: length + (a % 17) - 8, 1: b, 2: 0, 3: 0xFFFFFF, 4: header + (a % 5)}[choice]
        _set_length(buf, offset + 5, max(new, 0))
    elif op == 11:  # AVP flags: any combination of V, M, P and reserved bits
        buf[offset + 4] = b & 0xFF
    elif op == 12:  # AVP code: a known one (maybe of another vendor) or any
        code = KNOWN_KEYS[b % len(KNOWN_KEYS)][0] if a & 1 else a * 65536 + b
        buf[offset : offset + 4] = (code & 0xFFFFFFFF).to_bytes(4, "big")
    elif op == 13:  # Vendor-Id, or toggle the V bit
        if flags & 0x80 and a & 1:
            vendor = (0, 10415, 13019, 1, a * 65536 + b)[b % 5]
            buf[offset + 8 : offset + 12] = vendor.to_bytes(4, "big")
        else:
            buf[offset + 4] = flags ^ 0x80
    elif op == 14:  # replace the data, keeping the framing right
        data = _pattern(a, b, (0, 1, 2, 3, 4, 5, 6, 8, 12, 16, 18, 20)[b % 12] if a & 1 else b % 40)
        raw = bytes(buf[offset : offset + header]) + data
        raw = raw[:5] + (len(raw)).to_bytes(3, "big") + raw[8:]
        raw += bytes(-len(raw) % 4)
        buf[offset : offset + padded] = raw
        _resize(buf, parents, len(raw) - padded)
    elif op == 15:  # duplicate (-> 5009 where max is 1)
        raw = bytes(buf[offset : offset + padded])
        buf[offset + padded : offset + padded] = raw
        _resize(buf, parents, padded)
    elif op == 16:  # remove (-> 5005 where required)
        del buf[offset : offset + padded]
        _resize(buf, parents, -padded)
    elif op == 17:  # move to the front of its level (-> 5008 for misplaced fixed AVPs)
        raw = bytes(buf[offset : offset + padded])
        del buf[offset : offset + padded]
        siblings = [entry for entry in avps if entry[2] == parents and entry[0] < offset]
        front = siblings[0][0] if siblings else offset
        buf[front:front] = raw
    elif op == 18:  # graft a (valid) AVP from elsewhere in the message into this level
        source, source_padded, _ = avps[b % len(avps)]
        raw = bytes(buf[source : source + source_padded])
        buf[offset:offset] = raw
        _resize(buf, parents, len(raw))
    else:  # non-zero padding, or a padding byte eaten / added
        if padded > length:
            buf[offset + length] = b & 0xFF or 1
        else:
            _set_length(buf, offset + 5, length - 1 - (a % 3))


# -- the property -------------------------------------------------------------------------------


def _check_error(error: DecodeError, data: bytes, where: str) -> int:
    code = error.result_code
    if code not in ALLOWED_CODES:
        raise PropertyViolation(
            f"{where}: result code {code} is not one of the requirement ({error})"
        )
    if error.fatal and code not in FATAL_CODES:
        raise PropertyViolation(f"{where}: {code} marked fatal ({error})")
    failed = error.failed_avp
    if failed is not None and not isinstance(failed, bytes):
        raise PropertyViolation(f"{where}: failed_avp is {type(failed).__name__}, not bytes")
    if code in NEEDS_FAILED_AVP and not failed:
        raise PropertyViolation(f"{where}: {code} without Failed-AVP bytes ({error})")
    if code in FAILED_AVP_FROM_INPUT and not offending_from(failed, data):  # type: ignore[arg-type]
        raise PropertyViolation(
            f"{where}: {code} Failed-AVP {failed.hex()} is not part of the input"
        )
    if code == 5005:
        example = decode_lazy(_wrap(failed)).avps  # type: ignore[arg-type]
        if len(example) != 1 or example[0].definition is None:
            raise PropertyViolation(f"{where}: 5005 Failed-AVP {failed!r} is not one known AVP")
    return code


def offending_from(failed: bytes, data: bytes) -> bool:
    """Failed-AVP bytes are the offending AVP as received, or (RFC 6733 §7.5) Grouped AVP
    headers around it: "the Grouped AVP, which in turn contains the single offending AVP"."""
    while failed not in data:
        if len(failed) < 8:
            return False
        header = 12 if failed[4] & 0x80 else 8
        length = int.from_bytes(failed[5:8], "big")
        if length != len(failed) - (-length % 4) or length <= header:
            return False
        failed = failed[header:length]
    return True


def _wrap(avp_bytes: bytes) -> bytes:
    """A message around AVP bytes, to parse them with the public API."""
    body = avp_bytes + bytes(-len(avp_bytes) % 4)
    return (0x01000000 | (20 + len(body))).to_bytes(4, "big") + bytes(16) + body


def _walk_lazy(message: object, data: bytes, outcome: Counter[int] | None, strict_ok: bool) -> None:
    """Touch every ``.value`` and ``.children`` of a decoded message, iteratively.

    ``strict_ok``: the message came from a successful full decode, so nothing outside a
    Failed-AVP (whose members are reported as received, never judged, so that even
    reading them may fail) may fail.
    """
    stack = [(avp, avp.key == FAILED_AVP) for avp in message.avps]  # type: ignore[attr-defined]
    while stack:
        node, inside_failed = stack.pop()
        try:
            if node.is_grouped:
                children = node.children
                value = node.value
                if value is not children and value != children:
                    raise PropertyViolation(f"{node.name}: .value differs from .children")
                stack.extend(
                    (child, inside_failed or child.key == FAILED_AVP) for child in children
                )
            else:
                node.value  # noqa: B018 - the access is the test
                if node.definition is None and node.value != node.data:
                    raise PropertyViolation("unknown AVP value is not its data")
        except DecodeError as error:
            if strict_ok and not inside_failed:
                raise PropertyViolation(
                    f"{node.name}: value fails after a successful full decode: {error}"
                ) from None
            code = _check_error(error, data, f"lazy {node.name}")
            if outcome is not None:
                outcome[code] += 1


def check(data: bytes, outcome: Counter[int] | None = None) -> int:
    """Run the decoders on ``data``; return the full decode's result code (2001 when valid).

    Raises PropertyViolation on a wrong answer; any other exception is a crash.
    """
    full_code = SUCCESS
    try:
        message = decode(data)
    except DecodeError as error:
        full_code = _check_error(error, data, "decode")
        message = None
    else:
        if message.encode() != data:
            raise PropertyViolation("decode -> encode changed the bytes")
        _walk_lazy(message, data, None, strict_ok=True)
    try:
        lazy = decode_lazy(data)
    except DecodeError as error:
        _check_error(error, data, "decode_lazy")
        if message is not None:
            raise PropertyViolation(f"decode_lazy fails ({error}) where decode succeeds") from None
    else:
        if lazy.encode() != data:
            raise PropertyViolation("decode_lazy -> encode changed the bytes")
        _walk_lazy(lazy, data, outcome, strict_ok=False)
    if outcome is not None:
        outcome[full_code] += 1
    return full_code


# -- the byte walkers, error answers and cache independence (bench only) -------------------------

REWRITTEN = {
    (1, 0): b"alice@primary.example",
    (601, 10415): b"sip:alice@primary.example",
    (264, 0): b"gw.primary.example",
    (296, 0): b"primary.example",
    (283, 0): b"primary.example",
    (293, 0): b"hss.primary.example",
}
ROUTING = frozenset({(283, 0), (293, 0), (282, 0)})
_COLD = Dictionary().load(base, digest, doic, cx)


def _verdict(data: bytes, dictionary: Dictionary) -> tuple[object, ...]:
    try:
        message = decode(data, dictionary)
    except DecodeError as error:
        return (error.result_code, error.failed_avp)
    return (SUCCESS, message.encode(), [(a.key, a.flags, a.data) for a in message.avps])


def check_tools(data: bytes, strict_code: int) -> None:
    """rewrite / top_level / find_base_avp / first_base_value return or raise DecodeError
    (5005 5014 5015); a rewritten valid message stays valid and well framed; the error
    answer to any request (but a CER) passes strict decode; and the warm default
    dictionary gives the verdict of one whose caches are empty."""
    for call in (
        lambda: top_level(data, ROUTING),
        lambda: top_level(data, ROUTING, complete=False),
        lambda: find_base_avp(data, 283),
        lambda: first_base_value(data, 263),
    ):
        try:
            call()
        except DecodeError as error:
            if error.result_code not in (5014, 5015):
                raise PropertyViolation(f"walker: {error}") from None
    try:
        out = rewrite(data, REWRITTEN, optional=REWRITTEN.keys(), hop_by_hop=7)
    except DecodeError as error:
        if error.result_code not in (5014, 5015):
            raise PropertyViolation(f"rewrite: {error}") from None
    else:
        if int.from_bytes(out[1:4], "big") != len(out):
            raise PropertyViolation("rewrite: length field is not the length")
        if strict_code == SUCCESS and _verdict(out, DEFAULT_DICTIONARY)[0] != SUCCESS:
            raise PropertyViolation("rewrite made a valid message invalid")
    if data[:1] and data[4:5] and data[4] & 0x80 and data[5:8] != b"\x00\x01\x01":
        for code in (3008, 5004):
            answer = error_answer_bytes(data, code, origin_host="gw.home.net", origin_realm="home.net",
                                        error_message="fuzz", failed=data[20:40] or None)
            verdict = _verdict(answer, DEFAULT_DICTIONARY)
            if verdict[0] != SUCCESS:
                raise PropertyViolation(f"error answer {code} fails strict decode: {verdict[0]}")
    _COLD.clear_caches()
    if _verdict(data, _COLD) != _verdict(data, DEFAULT_DICTIONARY):
        raise PropertyViolation("the verdict depends on what was decoded before")


def random_input(rng: random.Random, seeds: list[bytes]) -> bytes:
    """One fuzz input: mostly mutated seeds, sometimes random bytes (with a plausible header)."""
    kind = rng.random()
    if kind < 0.08:
        return rng.randbytes(rng.randrange(0, 80))
    if kind < 0.15:
        body = rng.randbytes(4 * rng.randrange(0, 24))
        header = (0x01000000 | (20 + len(body))).to_bytes(4, "big") + rng.randbytes(16)
        return header + body
    data = rng.choice(seeds)
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4, 6))):
        data = mutate(
            data,
            rng.randrange(N_OPS),
            rng.randrange(65536),
            rng.randrange(65536),
            rng.random() < 0.7,
            seeds,
        )
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--examples", type=int, default=100_000, help="inputs to decode (default 100000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--max-failures", type=int, default=20, help="stop after this many failures"
    )
    parser.add_argument(
        "--decode-only", action="store_true",
        help="skip rewrite/top_level/error answers and the cold-vs-warm cache verdict check",
    )
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    seeds = seed_messages()
    outcome: Counter[int] = Counter()
    failures = 0
    started = time.perf_counter()
    done = 0
    for index in range(args.examples):
        done += 1
        data = random_input(rng, seeds)
        try:
            code = check(data, outcome)
            if not args.decode_only:
                check_tools(data, code)
        except Exception as exc:  # noqa: BLE001 - the point is to catch everything
            failures += 1
            kind = "VIOLATION" if isinstance(exc, PropertyViolation) else "CRASH"
            print(f"{kind} at example {index}: {type(exc).__name__}: {exc}")
            print(
                f"  reproduce: python -c \"from cx_codec import decode; decode(bytes.fromhex('{data.hex()}'))\""
            )
            if failures >= args.max_failures:
                break
        if index and index % 100_000 == 0:
            print(f"... {index} inputs, {time.perf_counter() - started:.0f} s", file=sys.stderr)
    elapsed = time.perf_counter() - started
    print(f"{done} inputs in {elapsed:.1f} s ({done / elapsed:.0f}/s), seed {args.seed}")
    print("outcomes by result code (full decode of every input, plus DecodeErrors met while")
    print("walking .value/.children of lazily decoded messages):")
    for code, count in sorted(outcome.items()):
        label = "decoded" if code == SUCCESS else "DecodeError"
        print(f"  {code} {label:12} {count}")
    print(f"failures (crashes or property violations): {failures}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
