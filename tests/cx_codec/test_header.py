"""The 20-byte Diameter header (RFC 6733 §3): packing, framing errors, command flags."""

from __future__ import annotations

import pytest

from cx_codec.errors import DecodeError, ResultCode
from cx_codec.header import (
    HEADER_LENGTH,
    RESERVED_FLAGS,
    Flags,
    Header,
    check_flags,
    message_length,
    unpack_header,
)

# A CER header written out by hand: version 1, length 20, flags R, code 257, app 0,
# hop-by-hop 0x11223344, end-to-end 0x55667788.
CER_HEADER = bytes.fromhex("0100001480000101000000001122334455667788")


def header_bytes(length: int, *, version: int = 1, flags: int = 0x80, code: int = 257) -> bytes:
    return (
        bytes([version])
        + length.to_bytes(3, "big")
        + bytes([flags])
        + code.to_bytes(3, "big")
        + (16777216).to_bytes(4, "big")
        + (7).to_bytes(4, "big")
        + (9).to_bytes(4, "big")
    )


def test_pack_matches_hand_computed_bytes():
    header = Header(1, 20, 0x80, 257, 0, 0x11223344, 0x55667788)
    assert header.pack() == CER_HEADER
    assert HEADER_LENGTH == 20


def test_parse_reads_every_field():
    header = Header.parse(CER_HEADER)
    assert (header.version, header.length, header.flags, header.command_code) == (1, 20, 0x80, 257)
    assert (header.application_id, header.hop_by_hop, header.end_to_end) == (
        0,
        0x11223344,
        0x55667788,
    )
    assert header.pack() == CER_HEADER


def test_large_fields_round_trip():
    header = Header(1, 0xFFFFFC, 0xD0, 0xFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    packed = header.pack()
    assert packed[:4] == bytes.fromhex("01fffffc")
    assert packed[4:8] == bytes.fromhex("d0ffffff")
    assert unpack_header(packed + bytes(0xFFFFFC - 20)) == (
        1,
        0xFFFFFC,
        0xD0,
        0xFFFFFF,
        0xFFFFFFFF,
        0xFFFFFFFF,
        0,
    )


def test_flag_values_are_those_of_rfc_6733():
    assert (Flags.REQUEST, Flags.PROXIABLE, Flags.ERROR, Flags.RETRANSMIT) == (
        0x80,
        0x40,
        0x20,
        0x10,
    )
    assert RESERVED_FLAGS == 0x0F


@pytest.mark.parametrize("size", [0, 1, 4, 19])
def test_shorter_than_a_header_is_5015_fatal(size):
    with pytest.raises(DecodeError) as caught:
        unpack_header(CER_HEADER[:size])
    assert caught.value.result_code == ResultCode.DIAMETER_INVALID_MESSAGE_LENGTH == 5015
    assert caught.value.fatal
    assert caught.value.failed_avp is None


@pytest.mark.parametrize("version", [0, 2, 0xFF])
def test_other_version_is_5011_fatal(version):
    with pytest.raises(DecodeError) as caught:
        unpack_header(header_bytes(20, version=version))
    assert caught.value.result_code == ResultCode.DIAMETER_UNSUPPORTED_VERSION == 5011
    assert caught.value.fatal
    assert str(version) in caught.value.reason


@pytest.mark.parametrize(
    ("declared", "given", "fatal"),
    [
        (24, 20, True),  # the header promises more than there is: framing lost
        (0x1000000 - 4, 20, True),  # 16 MB declared, 20 bytes given
        (0, 20, True),  # shorter than the header itself
        (16, 20, True),
        (20, 24, False),  # trailing bytes: the declared message is intact
        (22, 22, False),  # not a multiple of 4
        (23, 24, False),
    ],
)
def test_length_mismatch_is_5015(declared, given, fatal):
    data = header_bytes(declared) + bytes(given - 20)
    with pytest.raises(DecodeError) as caught:
        unpack_header(data)
    assert caught.value.result_code == 5015
    assert caught.value.fatal is fatal
    assert caught.value.failed_avp is None


def test_version_is_checked_before_length():
    with pytest.raises(DecodeError) as caught:
        unpack_header(header_bytes(99, version=2))
    assert caught.value.result_code == 5011


def test_message_length_reads_the_24_bit_field():
    assert message_length(bytes.fromhex("01000168")) == 360
    assert message_length(bytes.fromhex("01ffffff")) == 0xFFFFFF
    assert message_length(CER_HEADER) == 20


@pytest.mark.parametrize("flags", [0x00, 0x80, 0xC0, 0x40, 0x60, 0x20, 0x10, 0x90, 0xD0, 0x70])
def test_valid_flag_combinations(flags):
    check_flags(flags)


@pytest.mark.parametrize("reserved", [0x01, 0x02, 0x04, 0x08, 0x0F])
@pytest.mark.parametrize("base", [0x00, 0x80, 0xC0])
def test_reserved_flag_bits_are_3008(base, reserved):
    with pytest.raises(DecodeError) as caught:
        check_flags(base | reserved)
    assert caught.value.result_code == ResultCode.DIAMETER_INVALID_HDR_BITS == 3008
    assert not caught.value.fatal


@pytest.mark.parametrize("flags", [0xA0, 0xE0, 0xB0, 0xF0])
def test_error_bit_in_a_request_is_3008(flags):
    with pytest.raises(DecodeError) as caught:
        check_flags(flags)
    assert caught.value.result_code == 3008
    assert "request" in caught.value.reason


def test_header_parse_checks_flags():
    with pytest.raises(DecodeError) as caught:
        Header.parse(header_bytes(20, flags=0x81))
    assert caught.value.result_code == 3008


def test_unpack_header_leaves_flags_to_check_flags():
    # relays may forward a message with odd flags untouched: unpack does not judge them
    assert unpack_header(header_bytes(20, flags=0xAF))[2] == 0xAF
