"""gateway.transport.framing: splitting a byte stream into Diameter messages (RFC 6733 §3), sans-IO."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cx_codec import decode
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.samples import SAMPLE_MAA, SAMPLE_MAR, device_watchdog_request
from gateway.transport.framing import HEADER_LENGTH, Framer, FramingError

DWR = device_watchdog_request().encode()


def header(version: int = 1, length: int = 20, flags: int = 0x80, code: int = 280) -> bytes:
    return (
        bytes((version,)) + length.to_bytes(3, "big") + bytes((flags,)) + code.to_bytes(3, "big")
        + (0).to_bytes(4, "big") + (0x1234).to_bytes(4, "big") + (0x5678).to_bytes(4, "big")
    )


def test_one_whole_message_is_returned_as_is():
    framer = Framer()
    assert framer.feed(SAMPLE_MAR) == [SAMPLE_MAR]
    assert framer.buffered == 0


def test_two_messages_in_one_chunk_are_split():
    framer = Framer()
    assert framer.feed(SAMPLE_MAR + SAMPLE_MAA) == [SAMPLE_MAR, SAMPLE_MAA]
    assert framer.buffered == 0


def test_many_messages_per_chunk_in_order():
    framer = Framer()
    stream = b"".join((SAMPLE_MAR, DWR, SAMPLE_MAA) * 100)
    messages = framer.feed(stream)
    assert len(messages) == 300
    assert messages[0::3] == [SAMPLE_MAR] * 100
    assert messages[1::3] == [DWR] * 100
    assert messages[2::3] == [SAMPLE_MAA] * 100
    assert decode(messages[-1]).command_code == 303


def test_byte_by_byte_completes_on_the_last_byte():
    framer = Framer()
    for index, byte in enumerate(SAMPLE_MAR[:-1]):
        assert framer.feed(bytes((byte,))) == []
        assert framer.buffered == index + 1
    assert framer.feed(SAMPLE_MAR[-1:]) == [SAMPLE_MAR]
    assert framer.buffered == 0


@pytest.mark.parametrize("cut", [1, 3, 4, 19, 20, 21, 100])
def test_partial_message_then_rest_with_the_next_message(cut):
    framer = Framer()
    assert framer.feed(SAMPLE_MAR[:cut]) == []
    assert framer.buffered == cut
    # the rest, a whole message and the start of a third
    out = framer.feed(SAMPLE_MAR[cut:] + SAMPLE_MAA + DWR[:10])
    assert out == [SAMPLE_MAR, SAMPLE_MAA]
    assert framer.buffered == 10
    assert framer.feed(DWR[10:]) == [DWR]
    assert framer.buffered == 0


def test_message_of_exactly_max_size_passes():
    framer = Framer(max_message=len(SAMPLE_MAR))
    assert framer.feed(SAMPLE_MAR) == [SAMPLE_MAR]


def test_minimum_message_header_only_is_a_message():
    framer = Framer()
    assert framer.feed(header(length=20)) == [header(length=20)]


@pytest.mark.parametrize(
    ("bad", "result_code", "words"),
    [
        (header(version=2), ResultCode.DIAMETER_UNSUPPORTED_VERSION, "version 2"),
        (header(version=0), ResultCode.DIAMETER_UNSUPPORTED_VERSION, "version 0"),
        (header(length=16), ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, "length 16"),
        (header(length=0), ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, "length 0"),
        (header(length=22), ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, "not a multiple of 4"),
        (header(length=70000), ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, "exceeds limits.max_message_size = 65536"),
        (header(length=0xFFFFFC), ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH, "16777212 bytes"),
    ],
)
def test_framing_errors_carry_result_code_prefix_and_completed_messages(bad, result_code, words):
    framer = Framer()
    with pytest.raises(FramingError) as caught:
        framer.feed(SAMPLE_MAR + DWR + bad + SAMPLE_MAA)
    error = caught.value
    assert isinstance(error, DecodeError)
    assert error.fatal is True
    assert error.result_code == result_code
    assert words in error.reason
    assert error.prefix == bad[:HEADER_LENGTH]
    assert error.complete == [SAMPLE_MAR, DWR]
    # the stream is lost: nothing kept
    assert framer.buffered == 0


def test_framing_error_in_a_later_chunk_reports_only_that_chunks_messages():
    framer = Framer()
    assert framer.feed(SAMPLE_MAR[:50]) == []
    with pytest.raises(FramingError) as caught:
        framer.feed(SAMPLE_MAR[50:] + header(length=21))
    assert caught.value.complete == [SAMPLE_MAR]
    assert caught.value.result_code == ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH


def test_error_is_detected_from_the_first_four_bytes():
    # a broken length is reported before the rest of the header arrives
    framer = Framer()
    assert framer.feed(b"\x01\x00") == []
    with pytest.raises(FramingError) as caught:
        framer.feed(b"\x00\x10")
    assert caught.value.prefix == b"\x01\x00\x00\x10"
    assert caught.value.complete == []


def test_small_max_message_refuses_a_larger_message():
    framer = Framer(max_message=256)
    with pytest.raises(FramingError) as caught:
        framer.feed(SAMPLE_MAR)
    assert caught.value.result_code == ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH
    assert f"message of {len(SAMPLE_MAR)} bytes exceeds limits.max_message_size = 256" in caught.value.reason
    assert caught.value.prefix == SAMPLE_MAR[:20]


def test_memory_is_bounded_by_max_message_while_waiting():
    framer = Framer(max_message=1024)
    big = header(length=1024) + b"\0" * 1000
    assert framer.feed(big) == []
    assert framer.buffered == 1020
    assert framer.feed(b"\0" * 4) == [big + b"\0" * 4]


# -- any split of a stream gives the same messages -------------------------------------


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=12),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=20),
)
def test_any_split_of_a_stream_yields_the_same_messages(sizes, cuts):
    messages = [bytes([1]) + (20 + 4 * n).to_bytes(3, "big") + bytes([n % 256]) * (16 + 4 * n) for n in sizes]
    stream = b"".join(messages)
    points = sorted({0, len(stream), *(cut % (len(stream) + 1) for cut in cuts)})
    framer = Framer(max_message=4096)
    received = []
    for start, end in zip(points, points[1:], strict=False):
        received.extend(framer.feed(stream[start:end]))
    assert received == messages
    assert framer.buffered == 0
