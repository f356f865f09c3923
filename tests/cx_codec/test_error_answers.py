"""Error answers pass our own strict decode, whatever the request looked like.

RFC 6733 §3 and §7.1: the E bit is set for protocol errors (3xxx) only; those use the
answer-message of §7.2. Transient (4xxx) and permanent (5xxx) failures are answered
without E, in the command's own answer format (§7.1.4, §7.1.5), so they must satisfy the
command's answer grammar (TS 29.229 §6.1 for Cx: < Session-Id >,
{ Vendor-Specific-Application-Id }, { Auth-Session-State } ...). Every answer echoes the
request's Session-Id, and User-Name and Public-Identity where the answer grammar lets
them in (the S-CSCF reads the MAA's User-Name). For requests that cannot be decoded,
``error_answer_bytes`` reads what it can: the header and the top-level AVPs up to the
first broken one.

Checked for each request of the base and Cx dictionaries but CER (the gateway builds
CEAs itself), for result codes of each class, on valid requests, on truncated and broken
ones, and on hypothesis mutations of them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_codec import samples
from cx_codec.avp import pack_avp
from cx_codec.build import error_answer, error_answer_bytes
from cx_codec.errors import DecodeError
from cx_codec.header import Flags
from cx_codec.message import Message, decode, decode_lazy


def _load_harness():
    path = Path(__file__).resolve().parents[2] / "bench" / "fuzz_codec.py"
    spec = importlib.util.spec_from_file_location("fuzz_codec_harness_errors", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


HARNESS = _load_harness()
SETTINGS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}

REQUESTS = {
    name: message.encode()
    for name, message in samples.all_samples().items()
    if message.is_request and message.command_code != 257  # CER: the gateway answers it
}
# a protocol error, a transient and a permanent failure of each kind the gateway sends
CODES = (3001, 3002, 3005, 3007, 3008, 3009, 3010, 4001, 4010, 5001, 5004, 5005, 5008, 5009, 5012, 5014, 5015)
SEEDS = list(REQUESTS.values())
ORIGIN = {"origin_host": "gw.primary.example", "origin_realm": "primary.example"}
SESSION_ID = (263, 0)
USER_NAME = (1, 0)
PUBLIC_IDENTITY = (601, 10415)


def header_only(data: bytes) -> Message:
    """What the gateway builds when the request cannot even be decoded lazily."""
    header = data[:20].ljust(20, b"\0")
    return Message(
        int.from_bytes(header[5:8], "big"), header[4], int.from_bytes(header[8:12], "big"),
        int.from_bytes(header[12:16], "big"), int.from_bytes(header[16:20], "big"),
    )


def check_answer(answer_bytes: bytes, request: bytes, code: int) -> Message:
    """The answer passes strict decode, has the E bit iff 3xxx, answers the request."""
    answer = decode(answer_bytes)
    assert answer.result_code == code
    assert answer.is_error == (3000 <= code < 4000)
    assert not answer.is_request
    header = request[:20].ljust(20, b"\0")
    assert answer.command_code == int.from_bytes(header[5:8], "big")
    assert answer.hop_by_hop == int.from_bytes(header[12:16], "big")
    assert answer.end_to_end == int.from_bytes(header[16:20], "big")
    return answer


def _first(message: Message, key: tuple[int, int]) -> bytes | None:
    found = next((avp for avp in message.avps if avp.key == key), None)
    return None if found is None else found.data


# -- by hand ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(REQUESTS))
@pytest.mark.parametrize("code", CODES)
def test_error_answer_to_a_valid_request(name, code):
    data = REQUESTS[name]
    request = decode(data)
    answer = check_answer(error_answer(request, code, error_message="no", **ORIGIN).encode(), data, code)
    assert _first(answer, SESSION_ID) == _first(request, SESSION_ID)
    for key in (USER_NAME, PUBLIC_IDENTITY):
        # echoed wherever the request has it: every answer grammar here ends in *[ AVP ]
        assert _first(answer, key) == _first(request, key), key


def test_permanent_failures_carry_no_e_bit_even_for_unknown_commands():
    request = decode_lazy(bytes.fromhex("01000014c0002710000000000000000100000002"))
    answer = error_answer(request, 5001, **ORIGIN)
    assert answer.flags == Flags.PROXIABLE
    decode(answer.encode())


def test_maa_for_a_failure_follows_the_maa_grammar():
    request = decode(REQUESTS["MAR"])
    answer = error_answer(request, 5012, **ORIGIN)
    assert answer.name == "Multimedia-Auth-Answer" and not answer.is_error
    names = [avp.name for avp in answer.avps]
    assert names[0] == "Session-Id"
    for required in ("Vendor-Specific-Application-Id", "Auth-Session-State", "Origin-Host", "Origin-Realm"):
        assert required in names
    assert answer["User-Name"] == request["User-Name"]
    assert answer["Public-Identity"] == request["Public-Identity"]
    assert names.index("User-Name") < names.index("Public-Identity")  # grammar order


@pytest.mark.parametrize("name", sorted(REQUESTS))
@pytest.mark.parametrize("code", [3009, 4001, 5004, 5015])
def test_header_only_requests_get_valid_answers(name, code):
    """The gateway's fallback: only the header of the request is known."""
    data = REQUESTS[name]
    for cut in (20, 12, 0):
        check_answer(error_answer(header_only(data[:cut]), code, **ORIGIN).encode(), data[:cut], code)


@pytest.mark.parametrize("name", sorted(name for name, data in REQUESTS.items() if decode_lazy(data).avps[0].key == SESSION_ID))
def test_session_id_is_read_from_a_request_broken_after_it(name):
    data = REQUESTS[name]
    request = decode_lazy(data)
    session = request.avps[0]
    # the second AVP claims more bytes than there are: decode_lazy refuses the message
    broken = bytearray(data)
    second = 20 + len(session.encode())
    broken[second + 5 : second + 8] = (0xFFFFF0).to_bytes(3, "big")
    with pytest.raises(DecodeError):
        decode_lazy(bytes(broken))
    for code in (3009, 5014):
        answer = check_answer(error_answer_bytes(bytes(broken), code, **ORIGIN), data, code)
        assert _first(answer, SESSION_ID) == session.data
    # cut inside the second AVP: the Session-Id is still there
    answer = check_answer(error_answer_bytes(data[: second + 6], 5015, **ORIGIN), data, 5015)
    assert _first(answer, SESSION_ID) == session.data


def test_copied_avps_that_are_themselves_invalid_are_left_out():
    def lazy_avp(raw: bytes):
        return decode_lazy(bytes([1]) + (20 + len(raw)).to_bytes(3, "big") + bytes(16) + raw).avps[0]

    request = decode_lazy(REQUESTS["MAR"])
    avps = []
    for avp in request.avps:
        if avp.key == USER_NAME:
            avp = lazy_avp(pack_avp(1, 0x40, 0, b"\xff\xfe bad utf-8"))
        elif avp.key == SESSION_ID:
            avp = lazy_avp(pack_avp(263, 0x40, 0, b"\xff"))
        avps.append(avp)
    request.replace_avps(avps)
    for code in (3008, 5004):
        answer = check_answer(error_answer(request, code, **ORIGIN).encode(), request.encode(), code)
        assert _first(answer, USER_NAME) is None  # not valid UTF-8: cannot be echoed
        session = _first(answer, SESSION_ID)
        assert (session is None) == (code < 4000)  # a Session-Id of our own where required


def test_error_answer_bytes_on_a_valid_request_is_error_answer():
    data = REQUESTS["MAR"]
    expected = error_answer(decode_lazy(data), 5012, error_message="x", **ORIGIN).encode()
    assert error_answer_bytes(data, 5012, error_message="x", **ORIGIN) == expected


# -- the property --------------------------------------------------------------------------------

MUTATION = st.tuples(
    st.integers(0, HARNESS.N_OPS - 1), st.integers(0, 65535), st.integers(0, 65535), st.booleans()
)


@settings(max_examples=2500, **SETTINGS)
@given(st.integers(0, len(SEEDS) - 1), st.lists(MUTATION, min_size=1, max_size=4), st.sampled_from(CODES))
def test_error_answers_to_mutated_requests_pass_strict_decode(seed, mutations, code):
    data = SEEDS[seed]
    for op, a, b, fix_length in mutations:
        data = HARNESS.mutate(data, op, a, b, fix_length, SEEDS)
    if data[5:8] == b"\x00\x01\x01":
        return  # became a CER: the gateway builds CEAs itself
    check_answer(error_answer_bytes(data, code, error_message="mutated", failed=data[20:60] or None, **ORIGIN), data, code)
    check_answer(error_answer(header_only(data), code, **ORIGIN).encode(), data, code)
    try:
        lazy = decode_lazy(data)
    except DecodeError:
        return
    check_answer(error_answer(lazy, code, error_reporting_host="gw.primary.example", **ORIGIN).encode(), data, code)
