"""AVPs (RFC 6733 §4.1): hand-computed encodings, the parsing loop in its modes, flag rules,
length errors with their Failed-AVP bytes, and the Avp object."""

from __future__ import annotations

import ipaddress
import struct
from datetime import UTC, datetime

import pytest

from cx_codec.avp import LAZY, MAX_DEPTH, VALIDATE, VALUES, Avp, pack_avp, parse_avps
from cx_codec.build import avp
from cx_codec.datatypes import DataType
from cx_codec.dictionary import DEFAULT_DICTIONARY, Dictionary
from cx_codec.errors import DecodeError, EncodeError
from cx_codec.message import decode, decode_lazy

D = DEFAULT_DICTIONARY


def raw_avp(code, flags, data=b"", vendor=None, length=None, padding=None):
    """AVP bytes written by hand: lets a test get every field wrong on purpose."""
    header_size = 12 if vendor is not None else 8
    if length is None:
        length = header_size + len(data)
    out = struct.pack(">II", code, (flags << 24) | length)
    if vendor is not None:
        out += struct.pack(">I", vendor)
    out += data
    if padding is None:
        padding = bytes(-len(out) % 4)
    return out + padding


def parse(buf, mode=VALUES, dictionary=D):
    return parse_avps(buf, 0, len(buf), dictionary, mode, 0)


def parse_error(buf, mode=VALUES, dictionary=D):
    with pytest.raises(DecodeError) as caught:
        parse(buf, mode, dictionary)
    assert not caught.value.fatal
    return caught.value


def innermost(failed):
    """Failed-AVP may be the offending AVP or Grouped headers around it (RFC 6733 §7.5):
    strip headers while they hold exactly one AVP."""
    while True:
        header = 12 if failed[4] & 0x80 else 8
        inner = failed[header : int.from_bytes(failed[5:8], "big")]
        if len(inner) < 8 or (int.from_bytes(inner[5:8], "big") + 3) & ~3 != len(inner):
            return failed
        failed = inner


# -- hand-computed encodings -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "hex_bytes"),
    [
        # code 268, M, length 12, Unsigned32 2001
        ("Result-Code", 2001, "0000010c4000000c000007d1"),
        # code 601, V+M, length 17 (12 + 5), vendor 10415, "sip:a", 3 bytes of padding
        ("Public-Identity", "sip:a", "00000259c0000011000028af7369703a61000000"),
        # length 11, one byte of padding
        ("Session-Id", "abc", "000001074000000b61626300"),
        ("Proxy-State", b"", "0000002140000008"),
        # Address: family 1 + 4 bytes = 6 bytes of data, length 14, 2 bytes of padding
        ("Host-IP-Address", "192.0.2.1", "000001014000000e0001c00002010000"),
        ("Event-Timestamp", datetime(2024, 1, 1, tzinfo=UTC), "000000374000000ce93c7f00"),
        ("Auth-Session-State", "NO_STATE_MAINTAINED", "000001154000000c00000001"),
        (
            "Vendor-Specific-Application-Id",
            {"vendor_id": 10415, "auth_application_id": 16777216},
            "00000104400000200000010a4000000c000028af000001024000000c01000000",
        ),
    ],
)
def test_hand_computed_encodings(name, value, hex_bytes):
    data = bytes.fromhex(hex_bytes)
    built = avp(name, value)
    assert built.encode() == data
    assert len(built) == len(data)
    (parsed,) = parse(data, VALIDATE)
    assert parsed.name == name
    assert parsed.raw == data
    assert parsed == built


def test_pack_avp_sets_the_length_and_pads_with_zeros():
    assert pack_avp(268, 0x40, 0, bytes.fromhex("000007d1")) == bytes.fromhex(
        "0000010c4000000c000007d1"
    )
    packed = pack_avp(612, 0xC0, 10415, b"\x01")
    assert packed == bytes.fromhex("00000264c000000d000028af01000000")


def test_pack_avp_refuses_a_length_beyond_24_bits():
    with pytest.raises(EncodeError):
        pack_avp(1, 0, 0, bytes(0xFFFFFF - 7))
    assert (
        len(pack_avp(1, 0, 0, bytes(0xFFFFFF - 8))) == 0xFFFFFF + 1
    )  # 24-bit length, then padding


# -- the parsing loop: framing ------------------------------------------------------------


def test_parse_reads_fields_data_and_raw():
    buf = raw_avp(268, 0x40, bytes.fromhex("000007d1")) + raw_avp(601, 0xC0, b"sip:a", vendor=10415)
    first, second = parse(buf, LAZY)
    assert (first.code, first.flags, first.vendor, first.data) == (
        268,
        0x40,
        0,
        bytes.fromhex("000007d1"),
    )
    assert (second.code, second.flags, second.vendor, second.data) == (601, 0xC0, 10415, b"sip:a")
    assert second.raw == buf[12:]
    assert second.key == (601, 10415)
    assert second.value == "sip:a"


def test_nonzero_padding_is_kept_in_raw_not_in_data():
    buf = raw_avp(263, 0x40, b"abc", padding=b"\xee") + raw_avp(
        1, 0x40, b"u", padding=b"\x01\x02\x03"
    )
    session, user = parse(buf, VALIDATE)
    assert session.data == b"abc" and session.value == "abc"
    assert session.encode() == buf[:12]
    assert user.encode() == buf[12:]
    assert b"".join(a.encode() for a in (session, user)) == buf


@pytest.mark.parametrize("mode", [LAZY, VALUES, VALIDATE])
@pytest.mark.parametrize(
    ("buf", "failed"),
    [
        # 4 bytes left: too few for a header; Failed-AVP is what is there
        (raw_avp(268, 0x40, bytes(4)) + b"\x00\x00\x01\x07", b"\x00\x00\x01\x07"),
        # length 0, 7: shorter than the header itself
        (raw_avp(268, 0x40, length=0), raw_avp(268, 0x40, length=0)),
        (raw_avp(268, 0x40, length=7), raw_avp(268, 0x40, length=7)),
        # V bit but the length leaves no room for the Vendor-Id
        (raw_avp(601, 0xC0, vendor=10415, length=11), raw_avp(601, 0xC0, vendor=10415, length=11)),
        # V bit and only 8 bytes left
        (struct.pack(">II", 601, 0xC000000C), struct.pack(">II", 601, 0xC000000C)),
        # length beyond the end: Failed-AVP is what we have of it
        (raw_avp(263, 0x40, b"abcd", length=200), raw_avp(263, 0x40, b"abcd", length=200)),
        # the padding of the last AVP does not fit
        (raw_avp(263, 0x40, b"abc", padding=b""), raw_avp(263, 0x40, b"abc", padding=b"")),
    ],
)
def test_bad_avp_length_is_5014_with_what_is_there(mode, buf, failed):
    error = parse_error(buf, mode)
    assert error.result_code == 5014
    assert error.failed_avp == failed


def test_an_avp_claiming_16_mb_does_not_fit():
    buf = raw_avp(263, 0x40, b"abcd", length=0xFFFFFF)
    error = parse_error(buf, LAZY)
    assert error.result_code == 5014
    assert error.failed_avp == buf


# -- VALUES/VALIDATE mode: flag rules and values --------------------------------------------


@pytest.mark.parametrize(
    "buf",
    [
        raw_avp(4242, 0x40, b"x"),  # unknown code with M
        raw_avp(601, 0x40, b"sip:a"),  # Public-Identity without the V bit is (601, 0): unknown
        raw_avp(601, 0xC0, b"sip:a", vendor=99),  # vendor 99 does not define 601
        raw_avp(263, 0xC0, b"s", vendor=10415),  # Session-Id of vendor 10415: unknown
    ],
)
def test_unknown_avp_with_m_bit_is_5001(buf):
    error = parse_error(buf)
    assert error.result_code == 5001
    assert error.failed_avp == buf
    assert parse(buf, LAZY)[0].definition is None  # lazily, it is just an unknown AVP


@pytest.mark.parametrize(
    "buf",
    [raw_avp(4242, 0x00, b"x"), raw_avp(601, 0x80, b"\xff", vendor=99), raw_avp(9, 0x3F, b"")],
)
def test_unknown_avp_without_m_bit_passes_through(buf):
    (unknown,) = parse(buf, VALIDATE)
    assert unknown.definition is None
    assert unknown.value == unknown.data
    assert unknown.encode() == buf
    assert unknown.name.startswith("Unknown-AVP(")


@pytest.mark.parametrize(
    "buf",
    [
        raw_avp(269, 0x40, b"cxgw"),  # Product-Name: M bit MUST NOT be set
        raw_avp(281, 0x40, b"oops"),  # Error-Message
        raw_avp(630, 0xC0, bytes(4), vendor=10415),  # Feature-List
        raw_avp(263, 0xC0, b"s", vendor=0),  # V bit with Vendor-Id 0
    ],
)
def test_flags_contradicting_the_definition_are_3009(buf):
    error = parse_error(buf)
    assert error.result_code == 3009
    assert error.failed_avp == buf


def test_p_bit_and_reserved_avp_bits_are_ignored():
    # RFC 6733 §4.1: reserved bits "MUST be set to zero and ignored by the receiver"
    (result,) = parse(raw_avp(268, 0x7F, bytes.fromhex("000007d1")), VALIDATE)
    assert result.value == 2001


@pytest.mark.parametrize(
    ("buf", "code"),
    [
        (raw_avp(268, 0x40, bytes(3)), 5014),  # Unsigned32 with 3 bytes
        (raw_avp(268, 0x40, bytes(8)), 5014),
        (raw_avp(287, 0x40, bytes(4)), 5014),  # Unsigned64 with 4 bytes
        (raw_avp(55, 0x40, bytes(5)), 5014),  # Time with 5 bytes
        (raw_avp(257, 0x40, b"\x00"), 5014),  # Address without a whole family
        (raw_avp(257, 0x40, bytes.fromhex("0001c00002")), 5004),  # IPv4 with 3 bytes
        (raw_avp(1, 0x40, b"\xffuser"), 5004),  # User-Name not UTF-8
        (raw_avp(264, 0x40, b""), 5004),  # Origin-Host empty
        (raw_avp(264, 0x40, b"a b"), 5004),
        (raw_avp(292, 0x40, b"http://x"), 5004),  # Redirect-Host not a DiameterURI
        (raw_avp(277, 0x40, bytes.fromhex("00000007")), 5004),  # Auth-Session-State 7 with M
        (raw_avp(601, 0xC0, b"\xc3", vendor=10415), 5004),  # Public-Identity not UTF-8
    ],
)
def test_invalid_values_carry_the_offending_avp(buf, code):
    error = parse_error(buf)
    assert error.result_code == code
    assert error.failed_avp == buf
    # lazily the same AVP parses; its value raises the same error when asked for
    (lazy,) = parse(buf, LAZY)
    if code == 5004 and buf[:4] == raw_avp(277, 0)[:4]:
        assert lazy.value == 7  # enum membership is a full-decode rule
        return
    with pytest.raises(DecodeError) as caught:
        lazy.value  # noqa: B018
    assert (caught.value.result_code, caught.value.failed_avp) == (code, buf)


def test_unknown_enum_value_without_m_bit_is_accepted():
    (state,) = parse(raw_avp(277, 0x00, bytes.fromhex("00000007")), VALIDATE)
    assert state.value == 7
    assert state.enum_name is None
    (known,) = parse(raw_avp(277, 0x40, bytes.fromhex("00000000")), VALIDATE)
    assert known.enum_name == "STATE_MAINTAINED"


def test_error_inside_a_grouped_avp_names_the_member():
    bad_member = raw_avp(266, 0x40, bytes(3))  # Vendor-Id with 3 bytes
    group = raw_avp(260, 0x40, bad_member + raw_avp(258, 0x40, bytes(4)))
    error = parse_error(group)
    assert error.result_code == 5014
    # RFC 6733 §7.5: the member itself, or the Grouped AVP "which in turn contains the
    # single offending AVP"
    assert error.failed_avp in (bad_member, pack_avp(260, 0x40, 0, bad_member))
    assert innermost(error.failed_avp) == bad_member


def test_unknown_m_member_of_a_grouped_avp_is_5001():
    unknown = raw_avp(7777, 0x40, b"zz")
    item = raw_avp(612, 0xC0, raw_avp(613, 0xC0, bytes(4), vendor=10415) + unknown, vendor=10415)
    error = parse_error(item)
    assert error.result_code == 5001
    assert innermost(error.failed_avp) == unknown


def test_nesting_deeper_than_the_limit_is_5004_with_failed_avp():
    nested = b""
    for _ in range(MAX_DEPTH + 3):
        nested = raw_avp(284, 0x40, nested)  # Proxy-Info in Proxy-Info ...
    error = parse_error(nested)
    assert error.result_code == 5004
    assert error.failed_avp
    assert innermost(error.failed_avp) in nested


def test_failed_avp_members_are_not_judged():
    garbage = raw_avp(4242, 0x40, b"unknown with M") + raw_avp(268, 0x40, bytes(3))
    (failed,) = parse(raw_avp(279, 0x40, garbage), VALIDATE)
    assert [(child.code, child.data) for child in failed.children] == [
        (4242, b"unknown with M"),
        (268, bytes(3)),
    ]
    (broken,) = parse(raw_avp(279, 0x40, b"\x00\x00\x01"), VALIDATE)
    assert broken.encode() == raw_avp(279, 0x40, b"\x00\x00\x01")
    try:  # unparseable members: none, or a DecodeError when read; never anything else
        assert broken.children == []
    except DecodeError as error:
        assert error.result_code == 5014


# -- the Avp object ----------------------------------------------------------------------------


def test_grouped_members_are_parsed_lazily_and_found_by_name():
    group = avp(
        "Vendor-Specific-Application-Id", {"vendor_id": 10415, "auth_application_id": 16777216}
    )
    (lazy,) = parse(group.encode(), LAZY)
    assert lazy.is_grouped
    assert [child.name for child in lazy.children] == ["Vendor-Id", "Auth-Application-Id"]
    assert lazy.value == lazy.children
    assert lazy.get("Vendor-Id") == 10415
    assert lazy.find("Acct-Application-Id") is None
    assert lazy.get("Acct-Application-Id", "none") == "none"
    assert [(depth, a.name) for depth, a in lazy.walk()] == [
        (0, "Vendor-Specific-Application-Id"),
        (1, "Vendor-Id"),
        (1, "Auth-Application-Id"),
    ]


def test_lazy_grouped_member_errors_are_decode_errors():
    (lazy,) = parse(raw_avp(260, 0x40, b"\x00\x00\x01\x0a\x40\x00\x00\xff"), LAZY)
    with pytest.raises(DecodeError) as caught:
        lazy.children  # noqa: B018
    assert caught.value.result_code == 5014


def test_children_of_a_non_grouped_avp_is_a_type_error():
    with pytest.raises(TypeError):
        avp("Result-Code", 2001).children  # noqa: B018


def test_flags_properties():
    public = avp("Public-Identity", "sip:a")
    assert public.is_mandatory and public.flags == 0xC0 and public.vendor == 10415
    assert not avp("Product-Name", "x").is_mandatory


def test_equality_ignores_padding_bytes_but_not_fields():
    clean = parse(raw_avp(263, 0x40, b"abc"), LAZY)[0]
    dirty = parse(raw_avp(263, 0x40, b"abc", padding=b"\xff"), LAZY)[0]
    assert clean == dirty and clean.encode() != dirty.encode()
    assert clean != parse(raw_avp(263, 0x00, b"abc"), LAZY)[0]
    assert clean != "abc"
    with pytest.raises(TypeError):
        hash(clean)


def test_built_avp_encodes_once_from_its_fields():
    built = Avp(268, 0x40, 0, bytes.fromhex("000007d1"))
    assert built.raw is None
    assert built.encode() == bytes.fromhex("0000010c4000000c000007d1")
    assert built.value == bytes.fromhex("000007d1")  # no definition: the data itself


# -- every data type inside an AVP, through a dictionary of our own ---------------------------

TYPED = [
    (1, DataType.OctetString, b"\x00\xff", b"\x00\xff"),
    (2, DataType.Integer32, (-5).to_bytes(4, "big", signed=True), -5),
    (3, DataType.Integer64, (-(2**40)).to_bytes(8, "big", signed=True), -(2**40)),
    (4, DataType.Unsigned32, (2**32 - 1).to_bytes(4, "big"), 2**32 - 1),
    (5, DataType.Unsigned64, (2**64 - 1).to_bytes(8, "big"), 2**64 - 1),
    (6, DataType.Float32, bytes.fromhex("c0200000"), -2.5),
    (7, DataType.Float64, bytes.fromhex("3ff0000000000000"), 1.0),
    (
        8,
        DataType.Address,
        bytes.fromhex("000200000000000000000000000000000001"),
        ipaddress.ip_address("::1"),
    ),
    (9, DataType.Time, bytes.fromhex("00000001"), datetime(2036, 2, 7, 6, 28, 17, tzinfo=UTC)),
    (10, DataType.UTF8String, "ü".encode(), "ü"),
    (11, DataType.DiameterIdentity, b"hss.net", "hss.net"),
    (12, DataType.DiameterURI, b"aaa://hss.net:3868", "aaa://hss.net:3868"),
    (13, DataType.Enumerated, bytes.fromhex("00000002"), 2),
    (14, DataType.IPFilterRule, b"permit in ip from any to any", "permit in ip from any to any"),
    (15, DataType.QoSFilterRule, b"", ""),
]


@pytest.fixture(scope="module")
def typed_dictionary():
    dictionary = Dictionary()
    for code, data_type, _, _ in TYPED:
        dictionary.add_avp(code, 99, f"T-{data_type.value}", data_type, True)
    return dictionary


@pytest.mark.parametrize(("code", "data_type", "data", "value"), TYPED)
def test_every_data_type_in_an_avp(typed_dictionary, code, data_type, data, value):
    buf = raw_avp(code, 0xC0, data, vendor=99)
    (parsed,) = parse(buf, VALIDATE, typed_dictionary)
    assert parsed.definition.type is data_type
    assert parsed.value == value
    assert parsed.encode() == buf
    definition = typed_dictionary.avp(f"T-{data_type.value}")
    assert definition.encode(value) == data


# -- lazy walking of deep nesting ------------------------------------------------------------------


def test_lazy_walk_of_deep_nesting_is_a_decode_error():
    nested = b""
    for _ in range(2000):
        nested = raw_avp(284, 0x40, nested)
    message = struct.pack(">IIIII", 0x01000000 | (20 + len(nested)), 0x80000118, 0, 1, 2) + nested
    with pytest.raises(DecodeError):
        decode(message)
    lazy = decode_lazy(message)
    with pytest.raises(DecodeError) as caught:
        list(lazy.avps[0].walk())
    assert caught.value.result_code == 5004
