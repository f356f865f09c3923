"""Every RFC 6733 basic (§4.2) and derived (§4.3) AVP data type: bytes, round trips, errors.

Decoders raise DecodeError 5014 for a wrong length and 5004 for an invalid value;
encoders raise EncodeError (a ValueError) for values the type cannot carry.
"""

from __future__ import annotations

import ipaddress
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cx_codec.datatypes import CODECS, MINIMUM_DATA, DataType
from cx_codec.datatypes.address import decode_address, encode_address
from cx_codec.datatypes.numbers import (
    decode_float32,
    decode_float64,
    decode_integer32,
    decode_integer64,
    decode_unsigned32,
    decode_unsigned64,
    encode_float32,
    encode_float64,
    encode_integer32,
    encode_integer64,
    encode_unsigned32,
    encode_unsigned64,
)
from cx_codec.datatypes.strings import (
    decode_ascii_rule,
    decode_identity,
    decode_octetstring,
    decode_uri,
    decode_utf8string,
    encode_identity,
    encode_octetstring,
    encode_uri,
    encode_utf8string,
)
from cx_codec.datatypes.time import ERA1_EPOCH, NTP_EPOCH, decode_time, encode_time
from cx_codec.errors import DecodeError, EncodeError

INVALID_LENGTH = 5014
INVALID_VALUE = 5004


def assert_decode_error(decode, data, code):
    with pytest.raises(DecodeError) as caught:
        decode(data)
    assert caught.value.result_code == code
    assert not caught.value.fatal
    return caught.value


# -- the table -------------------------------------------------------------------------


def test_every_type_but_grouped_has_a_codec():
    assert set(CODECS) == set(DataType) - {DataType.Grouped}


@pytest.mark.parametrize("data_type", sorted(MINIMUM_DATA, key=lambda t: t.value))
def test_minimum_data_decodes(data_type):
    decode, encode = CODECS[data_type]
    assert encode(decode(MINIMUM_DATA[data_type])) == MINIMUM_DATA[data_type]


def test_enumerated_is_integer32():
    assert CODECS[DataType.Enumerated] == CODECS[DataType.Integer32]


# -- numbers ---------------------------------------------------------------------------

NUMBERS = [
    (
        decode_integer32,
        encode_integer32,
        4,
        [(0, "00000000"), (-1, "ffffffff"), (2**31 - 1, "7fffffff"), (-(2**31), "80000000")],
    ),
    (
        decode_integer64,
        encode_integer64,
        8,
        [(-2, "fffffffffffffffe"), (2**63 - 1, "7fffffffffffffff"), (-(2**63), "8000000000000000")],
    ),
    (
        decode_unsigned32,
        encode_unsigned32,
        4,
        [(2001, "000007d1"), (2**32 - 1, "ffffffff"), (16777216, "01000000")],
    ),
    (
        decode_unsigned64,
        encode_unsigned64,
        8,
        [(2**64 - 1, "ffffffffffffffff"), (1, "0000000000000001")],
    ),
    (
        decode_float32,
        encode_float32,
        4,
        [(1.0, "3f800000"), (-2.5, "c0200000"), (math.inf, "7f800000")],
    ),
    (decode_float64, encode_float64, 8, [(1.0, "3ff0000000000000"), (-0.0, "8000000000000000")]),
]


@pytest.mark.parametrize(("decode", "encode", "size", "cases"), NUMBERS)
def test_numbers_hand_computed(decode, encode, size, cases):
    for value, hex_bytes in cases:
        data = bytes.fromhex(hex_bytes)
        assert len(data) == size
        assert encode(value) == data
        decoded = decode(data)
        assert decoded == value
        assert math.copysign(1, decoded) == math.copysign(1, value)


@pytest.mark.parametrize(("decode", "encode", "size", "cases"), NUMBERS)
def test_numbers_wrong_length_is_5014(decode, encode, size, cases):
    for wrong in (0, 1, size - 1, size + 1, 2 * size):
        error = assert_decode_error(decode, bytes(wrong), INVALID_LENGTH)
        assert str(size) in error.reason


@pytest.mark.parametrize(
    ("encode", "value"),
    [
        (encode_integer32, 2**31),
        (encode_integer32, -(2**31) - 1),
        (encode_unsigned32, -1),
        (encode_unsigned32, 2**32),
        (encode_unsigned64, 2**64),
        (encode_integer64, 2**63),
        (encode_unsigned32, True),  # a bool is not a number on the wire
        (encode_unsigned32, 1.5),
        (encode_unsigned32, "1"),
        (encode_integer64, None),
        (encode_float64, "1.0"),
        (encode_float32, False),
    ],
)
def test_numbers_encode_errors(encode, value):
    with pytest.raises(EncodeError):
        encode(value)


def test_float32_too_large_is_an_encode_error():
    with pytest.raises(EncodeError):
        encode_float32(1e39)


def test_float_special_values():
    assert math.isnan(decode_float64(encode_float64(math.nan)))
    assert decode_float32(encode_float32(3)) == 3.0  # an int is a number too
    assert decode_float64(bytes.fromhex("fff0000000000000")) == -math.inf


# -- OctetString, UTF8String --------------------------------------------------------------


def test_octetstring_is_any_bytes():
    every_byte = bytes(range(256))
    assert decode_octetstring(every_byte) == every_byte
    assert decode_octetstring(b"") == b""
    assert encode_octetstring(bytearray(b"\x00\xff")) == b"\x00\xff"
    assert encode_octetstring(memoryview(b"ab")) == b"ab"
    assert encode_octetstring("é") == b"\xc3\xa9"


@pytest.mark.parametrize("value", [1, None, 1.0, ["x"]])
def test_octetstring_encode_errors(value):
    with pytest.raises(EncodeError):
        encode_octetstring(value)


@pytest.mark.parametrize("text", ["", "alice@home.net", "Grüße 😀", "\x00", "日本語"])
def test_utf8string_round_trip(text):
    assert decode_utf8string(encode_utf8string(text)) == text
    assert encode_utf8string(text) == text.encode("utf-8")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff",
        b"abc\x80",  # lone continuation byte
        b"\xc3",  # truncated sequence
        b"\xed\xa0\x80",  # UTF-16 surrogate encoded in UTF-8
        b"\xc0\xaf",  # overlong
        b"\xf4\x90\x80\x80",  # beyond U+10FFFF
    ],
)
def test_invalid_utf8_is_5004(data):
    error = assert_decode_error(decode_utf8string, data, INVALID_VALUE)
    assert "UTF-8" in error.reason


@pytest.mark.parametrize("value", ["\ud800", 5, None])
def test_utf8string_encode_errors(value):
    with pytest.raises(EncodeError):
        encode_utf8string(value)


def test_utf8string_encode_accepts_valid_bytes():
    assert encode_utf8string(b"abc") == b"abc"


def test_utf8string_encode_rejects_invalid_utf8_bytes():
    with pytest.raises(EncodeError):
        encode_utf8string(b"\xff\xfe")


# -- DiameterIdentity, DiameterURI, filter rules ------------------------------------------------


@pytest.mark.parametrize(
    "name", ["hss1.hss.net", "a", "epc.mnc001.mcc001.3gppnetwork.org", "host_1.x"]
)
def test_identity_round_trip(name):
    assert decode_identity(encode_identity(name)) == name
    assert encode_identity(name) == name.encode("ascii")


@pytest.mark.parametrize(
    "data", [b"", b"has space", b"tab\t", b"h\xc3\xa9.net", b"nul\x00", b"\x7f"]
)
def test_invalid_identity_is_5004(data):
    assert_decode_error(decode_identity, data, INVALID_VALUE)


@pytest.mark.parametrize("value", ["", "a b", "hé.net", 3])
def test_identity_encode_errors(value):
    with pytest.raises(EncodeError):
        encode_identity(value)


@pytest.mark.parametrize(
    "uri",
    [
        "aaa://hss1.hss.net",
        "aaas://hss1.hss.net",
        "aaa://hss1.hss.net:3868",
        "aaa://hss1.hss.net:3868;transport=tcp",
        "aaa://hss1.hss.net:3868;transport=sctp;protocol=diameter",
        "aaa://host;protocol=radius",
    ],
)
def test_uri_round_trip(uri):
    assert decode_uri(encode_uri(uri)) == uri


@pytest.mark.parametrize(
    "data", [b"", b"http://x", b"aaa://", b"aaa://a b", b"hss1.hss.net", b"aaa://h\xc3\xa9"]
)
def test_invalid_uri_is_5004(data):
    assert_decode_error(decode_uri, data, INVALID_VALUE)


@pytest.mark.parametrize("value", ["hss1.hss.net", "aaa://", 7])
def test_uri_encode_errors(value):
    with pytest.raises(EncodeError):
        encode_uri(value)


@pytest.mark.parametrize(
    "data", [b"aaa://h;transport=bogus", b"aaa://h:999999", b"aaa://h;protocol=http"]
)
def test_uri_with_invalid_port_or_transport_is_5004(data):
    assert_decode_error(decode_uri, data, INVALID_VALUE)


def test_filter_rules_are_ascii():
    rule = "permit in ip from any to 10.0.0.1"
    assert CODECS[DataType.IPFilterRule][0](rule.encode()) == rule
    assert decode_ascii_rule(b"") == ""
    assert_decode_error(decode_ascii_rule, b"permit \xff", INVALID_VALUE)


# -- Address ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "hex_bytes"),
    [
        ("192.0.2.1", "0001c0000201"),
        ("0.0.0.0", "000100000000"),
        ("2001:db8::1", "000220010db8000000000000000000000001"),
        ("::", "0002" + "00" * 16),
    ],
)
def test_address_ip_hand_computed(value, hex_bytes):
    address = ipaddress.ip_address(value)
    assert encode_address(value) == bytes.fromhex(hex_bytes)
    assert encode_address(address) == bytes.fromhex(hex_bytes)
    assert decode_address(bytes.fromhex(hex_bytes)) == address


@pytest.mark.parametrize(
    ("family", "body"),
    [(8, b"\x49\x17\x00\x00\x01"), (0, b""), (3, b"\x01\x02"), (0xFFFF, bytes(20))],
)
def test_address_other_family_round_trips(family, body):
    data = family.to_bytes(2, "big") + body
    assert decode_address(data) == (family, body)
    assert encode_address((family, body)) == data


@pytest.mark.parametrize("data", [b"", b"\x00"])
def test_address_without_family_is_5014(data):
    assert_decode_error(decode_address, data, INVALID_LENGTH)


@pytest.mark.parametrize(
    "data",
    [
        bytes.fromhex("0001c00002"),  # IPv4 with 3 bytes
        bytes.fromhex("0001c000020100"),  # IPv4 with 5 bytes
        bytes.fromhex("0001"),
        bytes.fromhex("0002") + bytes(4),  # IPv6 family, IPv4-sized body
        bytes.fromhex("0002") + bytes(17),
    ],
)
def test_address_wrong_size_for_its_family_is_5004(data):
    assert_decode_error(decode_address, data, INVALID_VALUE)


@pytest.mark.parametrize("value", ["not-an-ip", "1.2.3.4.5", 16909060, None, (1,), b"\x00\x01"])
def test_address_encode_errors(value):
    with pytest.raises(EncodeError):
        encode_address(value)


def test_address_family_too_large_is_an_encode_error():
    with pytest.raises(EncodeError):
        encode_address((0x10000, b"\x01"))


# -- Time --------------------------------------------------------------------------------------

ROLLOVER = datetime(2036, 2, 7, 6, 28, 16, tzinfo=UTC)


def test_rollover_constant():
    assert ERA1_EPOCH == ROLLOVER
    assert NTP_EPOCH == datetime(1900, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "hex_bytes"),
    [
        (datetime(2024, 1, 1, tzinfo=UTC), "e93c7f00"),  # Unix 1704067200 + 2208988800
        (datetime(1968, 1, 20, 3, 14, 8, tzinfo=UTC), "80000000"),  # first second of era 0 we read
        (ROLLOVER - timedelta(seconds=1), "ffffffff"),  # last second before the rollover
        (ROLLOVER, "00000000"),  # the rollover: era 1 starts at zero
        (ROLLOVER + timedelta(seconds=1), "00000001"),
        (ROLLOVER + timedelta(seconds=0x12345678), "12345678"),  # 2045-10-12 05:19:52
        (datetime(2104, 2, 26, 9, 42, 23, tzinfo=UTC), "7fffffff"),  # last second of era 1 we read
    ],
)
def test_time_on_both_sides_of_2036(moment, hex_bytes):
    data = bytes.fromhex(hex_bytes)
    assert encode_time(moment) == data
    decoded = decode_time(data)
    assert decoded == moment
    assert decoded.tzinfo is not None and decoded.utcoffset() == timedelta(0)


def test_time_rollover_boundaries_decode_to_the_right_era():
    assert decode_time(bytes.fromhex("ffffffff")).year == 2036
    assert decode_time(bytes.fromhex("00000000")).year == 2036
    assert decode_time(bytes.fromhex("80000000")).year == 1968
    assert decode_time(bytes.fromhex("7fffffff")).year == 2104
    assert decode_time(bytes.fromhex("ffffffff")) < decode_time(bytes.fromhex("00000000"))


def test_time_naive_is_utc_and_offsets_are_honoured():
    assert encode_time(datetime(2024, 1, 1)) == bytes.fromhex("e93c7f00")
    paris = timezone(timedelta(hours=1))
    assert encode_time(datetime(2024, 1, 1, 1, 0, tzinfo=paris)) == bytes.fromhex("e93c7f00")


def test_time_drops_fractions_of_a_second():
    assert encode_time(datetime(2024, 1, 1, 0, 0, 0, 999_999, tzinfo=UTC)) == bytes.fromhex(
        "e93c7f00"
    )


@pytest.mark.parametrize("size", [0, 3, 5, 8])
def test_time_wrong_length_is_5014(size):
    assert_decode_error(decode_time, bytes(size), INVALID_LENGTH)


@pytest.mark.parametrize(
    "value",
    [
        datetime(1968, 1, 20, 3, 14, 7, tzinfo=UTC),  # before what 4 bytes can mean
        datetime(2104, 2, 26, 9, 42, 24, tzinfo=UTC),  # after
        datetime(1900, 1, 1, tzinfo=UTC),
        "2024-01-01",
        1704067200,
    ],
)
def test_time_encode_errors(value):
    with pytest.raises(EncodeError):
        encode_time(value)
