"""The byte-level walkers of cx_codec.rewrite on hostile input.

``rewrite``, ``top_level``, ``first_base_value``, ``find_base_avp`` (and the header
helpers ``with_hop_by_hop``, ``forwarded``, ``with_flags``) read AVP headers without
decoding. On any input they return a result or raise ``DecodeError``: 5014
DIAMETER_INVALID_AVP_LENGTH for an AVP whose length is below its header (8, or 12 with
the V bit, RFC 6733 §4.1) or that overruns the message, 5015
DIAMETER_INVALID_MESSAGE_LENGTH for a message shorter than its 20-byte header (RFC 6733
§3) -- never struct.error, IndexError or ValueError. Where they succeed they agree with
``decode_lazy`` on the same bytes.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_codec import samples
from cx_codec.avp import pack_avp
from cx_codec.errors import DecodeError
from cx_codec.message import decode, decode_lazy
from cx_codec.rewrite import (
    find_base_avp,
    first_base_value,
    forwarded,
    rewrite,
    top_level,
    with_flags,
    with_hop_by_hop,
)


def _load_harness():
    path = Path(__file__).resolve().parents[2] / "bench" / "fuzz_codec.py"
    spec = importlib.util.spec_from_file_location("fuzz_codec_harness_walkers", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HARNESS = _load_harness()
SEEDS = HARNESS.seed_messages() + [
    sample if isinstance(sample, bytes) else sample.encode()
    for sample in (samples.SAMPLE_MAR, samples.SAMPLE_MAA)
]
SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}

USER_NAME = (1, 0)
PUBLIC_IDENTITY = (601, 10415)
ORIGIN_HOST = (264, 0)
ORIGIN_REALM = (296, 0)
DESTINATION_REALM = (283, 0)
DESTINATION_HOST = (293, 0)
ROUTE_RECORD = (282, 0)
CX_KEYS = frozenset({USER_NAME, PUBLIC_IDENTITY, ORIGIN_HOST, ORIGIN_REALM, DESTINATION_REALM, DESTINATION_HOST})
NEW_VALUES = {
    USER_NAME: b"alice@primary.example",
    PUBLIC_IDENTITY: b"sip:alice@primary.example",
    ORIGIN_HOST: b"gw.primary.example",
    ORIGIN_REALM: b"primary.example",
    DESTINATION_REALM: b"primary.example",
    DESTINATION_HOST: b"hss.primary.example",
}
MAR = SEEDS[-2]


def message(*avps: bytes, header: bytes = MAR[:20]) -> bytes:
    body = b"".join(avps)
    return header[:1] + (20 + len(body)).to_bytes(3, "big") + header[4:20] + body


def raw_avp(code: int, flags: int, length: int, rest: bytes = b"") -> bytes:
    return struct.pack(">II", code, flags << 24 | length) + rest


USER = pack_avp(1, 0x40, 0, b"bob@partner.example")
REALM = pack_avp(283, 0x40, 0, b"partner.example")

# (name, bytes): broken AVP framing each walker must report as 5014
BROKEN_AVPS = [
    ("V bit, length 8, at the end", message(REALM, raw_avp(999, 0x80, 8))),
    ("V bit, length 8, then more", message(raw_avp(999, 0x80, 8), USER, REALM)),
    ("V bit, length 11", message(raw_avp(999, 0x80, 11, b"\0\0\0\0"), USER, REALM)),
    ("length 0", message(raw_avp(999, 0, 0), USER, REALM)),
    ("length 4", message(raw_avp(999, 0, 4), USER, REALM)),
    ("length 7", message(raw_avp(999, 0, 7), USER, REALM)),
    ("overrun", message(raw_avp(999, 0, 200), USER, REALM)),
    ("4 bytes left", message(USER, REALM, b"\0\0\0\x01")),
]


def _all_walkers(data: bytes) -> dict[str, object]:
    return {
        "rewrite": lambda: rewrite(data, {DESTINATION_REALM: b"x.example", (999, 0): b""}, optional={(999, 0)}),
        "rewrite, no values": lambda: rewrite(data, hop_by_hop=7),
        "top_level": lambda: top_level(data, {(999, 0), (999, 7), DESTINATION_REALM}),
        "top_level frozenset": lambda: top_level(data, frozenset({(999, 0), DESTINATION_REALM})),
        "find_base_avp": lambda: find_base_avp(data, 4242),
        "first_base_value": lambda: first_base_value(data, 4242),
    }


@pytest.mark.parametrize(("name", "data"), BROKEN_AVPS, ids=[name for name, _ in BROKEN_AVPS])
def test_broken_avp_framing_is_5014_from_every_walker(name, data):
    with pytest.raises(DecodeError) as strict:
        decode_lazy(data)
    assert strict.value.result_code == 5014
    for walker, call in _all_walkers(data).items():
        if walker == "rewrite, no values":
            continue  # nothing to find: no walk (the framer checked the message length)
        with pytest.raises(DecodeError) as caught:
            call()
        assert caught.value.result_code == 5014, walker
        assert caught.value.failed_avp, walker


@pytest.mark.parametrize("size", [0, 1, 4, 5, 12, 16, 19])
def test_a_message_shorter_than_its_header_is_5015(size):
    data = MAR[:size]
    calls = {
        **_all_walkers(data),
        "with_hop_by_hop": lambda: with_hop_by_hop(data, 1),
        "forwarded": lambda: forwarded(data, 1, REALM),
        "with_flags": lambda: with_flags(data, 0x10),
    }
    for walker, call in calls.items():
        with pytest.raises(DecodeError) as caught:
            call()
        assert caught.value.result_code == 5015, walker


def test_rewrite_checks_the_message_length_field():
    data = MAR[:1] + (len(MAR) + 4).to_bytes(3, "big") + MAR[4:]
    with pytest.raises(DecodeError) as caught:
        rewrite(data, {USER_NAME: b"x"})
    assert caught.value.result_code == 5015


def test_header_only_message_is_fine():
    data = message()
    assert rewrite(data, hop_by_hop=5)[12:16] == b"\0\0\0\x05"
    assert top_level(data, {USER_NAME}) == {}
    assert find_base_avp(data, 283) == -1
    assert first_base_value(data, 283) is None


def test_optional_keys_may_be_absent():
    data = message(USER, REALM)
    with pytest.raises(DecodeError) as caught:
        rewrite(data, {USER_NAME: b"carol@x", DESTINATION_HOST: b"hss.x"})
    assert caught.value.result_code == 5005
    out = rewrite(data, {USER_NAME: b"carol@x", DESTINATION_HOST: b"hss.x"}, optional={DESTINATION_HOST})
    assert out == message(pack_avp(1, 0x40, 0, b"carol@x"), REALM)


def test_rewriting_the_cx_keys_of_a_mar_keeps_it_valid():
    out = rewrite(MAR, NEW_VALUES, optional=CX_KEYS)
    decoded = decode(out)
    assert decoded["User-Name"] == "alice@primary.example"
    assert decoded["Public-Identity"] == "sip:alice@primary.example"
    assert decoded["Origin-Host"] == "gw.primary.example"
    assert decoded["Destination-Realm"] == "primary.example"
    assert "Destination-Host" not in decoded  # optional and absent: not inserted


# -- the property ---------------------------------------------------------------------------------

MUTATION = st.tuples(
    st.integers(0, HARNESS.N_OPS - 1), st.integers(0, 65535), st.integers(0, 65535), st.booleans()
)


def _outcome(call):
    try:
        return ("ok", call())
    except DecodeError as error:
        assert error.result_code in (5005, 5014, 5015), error
        assert isinstance(error.failed_avp, (bytes, type(None)))
        return ("error", error.result_code)


def _strictly_valid(data: bytes) -> bool:
    try:
        decode(data)
    except DecodeError:
        return False
    return True


def check_walkers(data: bytes) -> None:
    try:
        lazy = decode_lazy(data)
    except DecodeError as error:
        lazy, lazy_code = None, error.result_code
    for key_set in (CX_KEYS, {ROUTE_RECORD, DESTINATION_REALM, (999, 10415)}):
        verdict = _outcome(lambda keys=key_set: top_level(data, keys))
        if lazy is not None:
            expected = {}
            for avp in lazy.avps:
                if avp.key in key_set:
                    expected.setdefault(avp.key, []).append(avp.data)
            assert verdict == ("ok", expected)
        elif lazy_code == 5014:
            assert verdict == ("error", 5014)
        _outcome(lambda keys=key_set: top_level(data, frozenset(keys), complete=False))
    for code in (283, 264, 4242):
        offset = _outcome(lambda code=code: find_base_avp(data, code))
        value = _outcome(lambda code=code: first_base_value(data, code))
        if lazy is not None:
            # "no Vendor-Id": the V bit clear (a V bit with Vendor-Id 0 is another AVP)
            first = next((avp for avp in lazy.avps if avp.code == code and not avp.flags & 0x80), None)
            assert value == ("ok", None if first is None else first.data)
            assert (offset[1] >= 0) == (first is not None)
    rewritten = _outcome(lambda: rewrite(data, NEW_VALUES, optional=CX_KEYS, hop_by_hop=0x01020304))
    if rewritten[0] == "ok":
        out = rewritten[1]
        assert len(out) >= 20 and int.from_bytes(out[1:4], "big") == len(out)
        assert out[12:16] == b"\x01\x02\x03\x04"
        if _strictly_valid(data):
            assert _strictly_valid(out)
    elif lazy is not None and len(data) % 4 == 0 and int.from_bytes(data[1:4], "big") == len(data):
        raise AssertionError(f"rewrite refused a well-framed message: {rewritten}")
    for call in (
        lambda: with_hop_by_hop(data, 1),
        lambda: forwarded(data, 1, REALM),
        lambda: with_flags(data, 0x10, 0x20),
        lambda: rewrite(data),
    ):
        _outcome(call)


@settings(max_examples=3000, **SETTINGS)
@given(st.binary(max_size=120), st.integers(0, 3))
def test_walkers_on_arbitrary_bytes(body, pad):
    check_walkers(body)
    body += bytes(pad)
    check_walkers(message(body))


@settings(max_examples=3000, **SETTINGS)
@given(st.integers(0, len(SEEDS) - 1), st.lists(MUTATION, min_size=1, max_size=4))
def test_walkers_on_mutated_messages(seed, mutations):
    data = SEEDS[seed]
    check_walkers(data)
    for op, a, b, fix_length in mutations:
        data = HARNESS.mutate(data, op, a, b, fix_length, SEEDS)
        check_walkers(data)


# -- rewrite's absent and remove (the Cx translation's needs) ------------------------------


def test_rewrite_appends_the_absent_and_leaves_out_the_removed():
    from cx_codec import decode
    from cx_codec.build import avp_bytes
    from cx_codec.rewrite import rewrite
    from cx_codec.samples import SAMPLE_MAR

    user_name, destination_host, route_record = (1, 0), (293, 0), (282, 0)
    with_records = rewrite(SAMPLE_MAR, append=avp_bytes("Route-Record", "a.example") + avp_bytes("Route-Record", "b.example"))
    out = rewrite(
        with_records,
        {user_name: b"someone@else.example", destination_host: b"hss.else.example"},
        absent={destination_host: avp_bytes("Destination-Host", "hss.else.example")},
        remove={route_record},
    )
    message = decode(out)
    assert message["User-Name"] == "someone@else.example"
    assert message["Destination-Host"] == "hss.else.example"
    assert message.find_all("Route-Record") == []
    # nothing absent, nothing to remove: the bytes of a plain replacement
    assert decode(SAMPLE_MAR).find("Route-Record") is None
    assert rewrite(SAMPLE_MAR, {user_name: b"x@y.example"}, remove={route_record}) == rewrite(
        SAMPLE_MAR, {user_name: b"x@y.example"}
    )
