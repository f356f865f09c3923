"""Whole messages: strict decoding with the RFC 6733 result code and Failed-AVP of every
malformed input, byte fidelity, lazy decoding, bounded memory, and the Message object."""

from __future__ import annotations

import struct
import tracemalloc

import pytest

from cx_codec.avp import Avp, pack_avp
from cx_codec.build import avp, new_message, new_request
from cx_codec.errors import DecodeError, ResultCode
from cx_codec.header import Flags
from cx_codec.message import Message, decode, decode_lazy

CX = 16777216


def raw_avp(code, flags, data=b"", vendor=None, length=None, padding=None):
    header_size = 12 if vendor is not None else 8
    if length is None:
        length = header_size + len(data)
    out = struct.pack(">II", code, (flags << 24) | length)
    if vendor is not None:
        out += struct.pack(">I", vendor)
    out += data
    return out + (bytes(-len(out) % 4) if padding is None else padding)


def frame(
    avps, *, flags=0xC0, code=303, application_id=CX, version=1, length=None, hbh=0x1234, e2e=0x5678
):
    body = b"".join(avps)
    if length is None:
        length = 20 + len(body)
    first = (version << 24) | length
    return struct.pack(">IIIII", first, (flags << 24) | code, application_id, hbh, e2e) + body


def mar(**overrides):
    fields = {
        "session_id": "scscf.home.net;1;2",
        "vendor_specific_application_id": {"vendor_id": 10415, "auth_application_id": CX},
        "auth_session_state": "NO_STATE_MAINTAINED",
        "origin_host": "scscf.home.net",
        "origin_realm": "home.net",
        "destination_realm": "hss.net",
        "user_name": "alice@home.net",
        "public_identity": "sip:alice@home.net",
        "sip_auth_data_item": {"sip_authentication_scheme": "Digest-AKAv1-MD5"},
        "sip_number_auth_items": 1,
        "server_name": "sip:scscf.home.net",
    }
    fields.update(overrides)
    return new_request("Multimedia-Auth-Request", hop_by_hop=0x1234, end_to_end=0x5678, **fields)


def mar_avp_bytes(**overrides):
    """The MAR's AVPs as a list of bytes, to rearrange or corrupt."""
    return [a.encode() for a in mar(**overrides).avps]


def decode_error(data, **kwargs):
    with pytest.raises(DecodeError) as caught:
        decode(data, **kwargs)
    return caught.value


def innermost(failed):
    """Failed-AVP may be Grouped headers around the single offending AVP (RFC 6733 §7.5)."""
    while True:
        header = 12 if failed[4] & 0x80 else 8
        inner = failed[header : int.from_bytes(failed[5:8], "big")]
        if len(inner) < 8 or (int.from_bytes(inner[5:8], "big") + 3) & ~3 != len(inner):
            return failed
        failed = inner


# -- byte fidelity -------------------------------------------------------------------------------


def test_built_mar_encodes_to_its_hand_checked_header():
    data = mar().encode()
    assert data[:4] == bytes([1]) + len(data).to_bytes(3, "big")
    assert data[4:8] == bytes.fromhex("c000012f")  # R and P, command 303
    assert data[8:20] == bytes.fromhex("010000000000123400005678")
    assert data[20:24] == bytes.fromhex("00000107")  # Session-Id first


@pytest.mark.parametrize(
    "message",
    [
        mar(),
        mar(
            destination_host="hss1.hss.net",
            proxy_info=[
                {"proxy_host": "p1.net", "proxy_state": b"1"},
                {"proxy_host": "p2.net", "proxy_state": b""},
            ],
            route_record=["r1.net", "r2.net"],
        ),
        new_message(
            "Capabilities-Exchange-Request",
            origin_host="gw.home.net",
            origin_realm="home.net",
            host_ip_address=["192.0.2.1", "2001:db8::1"],
            vendor_id=10415,
            product_name="cxgw",
            auth_application_id=[CX],
        ),
        new_message(
            "Device-Watchdog-Answer", result_code=2001, origin_host="h.net", origin_realm="net"
        ),
    ],
    ids=["mar", "mar-proxied", "cer", "dwa"],
)
def test_decode_then_encode_is_identical(message):
    data = message.encode()
    decoded = decode(data)
    assert decoded.encode() == data
    assert decode_lazy(data).encode() == data
    assert [a.name for a in decoded.avps] == [a.name for a in message.avps]
    assert decode(decoded.encode()).encode() == data


def test_unknown_avps_pass_through_byte_identical():
    top = Avp(4242, 0x00, 0, b"top secret", raw=raw_avp(4242, 0x00, b"top secret"))
    vendor_top = Avp(1, 0x80, 99, b"\xff\x00", raw=raw_avp(1, 0x80, b"\xff\x00", vendor=99))
    inner = Avp(9999, 0x20, 0, b"inner", raw=raw_avp(9999, 0x20, b"inner"))  # P bit, no M
    message = mar(
        sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5", "extra": [inner]},
        extra=[top, vendor_top],
    )
    data = message.encode()
    assert top.raw in data and vendor_top.raw in data and inner.raw in data
    decoded = decode(data)
    assert decoded.encode() == data
    unknown = [a for a in decoded.avps if a.definition is None]
    assert [a.encode() for a in unknown] == [top.raw, vendor_top.raw]
    item = decoded.find("SIP-Auth-Data-Item")
    assert [child.encode() for child in item.children if child.definition is None] == [inner.raw]


def test_nonzero_padding_survives_an_unchanged_round_trip():
    avps = mar_avp_bytes()
    avps[0] = raw_avp(263, 0x40, b"s;1", padding=b"\xab")  # Session-Id, 1 padding byte
    item = raw_avp(608, 0xC0, b"Digest", vendor=10415, padding=b"\x01\x02")
    avps[8] = raw_avp(612, 0xC0, item, vendor=10415)  # SIP-Auth-Data-Item around it
    data = frame(avps)
    decoded = decode(data)
    assert decoded["Session-Id"] == "s;1"
    assert decoded.find("SIP-Auth-Data-Item").get("SIP-Authentication-Scheme") == "Digest"
    assert decoded.encode() == data
    assert decode_lazy(data).encode() == data


def test_bytearray_and_memoryview_inputs():
    data = mar().encode()
    assert decode(bytearray(data)).encode() == data
    assert decode_lazy(memoryview(data)).encode() == data


# -- every result code from a crafted message ----------------------------------------------------


def test_3008_reserved_command_flag():
    error = decode_error(frame(mar_avp_bytes(), flags=0xC1))
    assert (error.result_code, error.failed_avp, error.fatal) == (3008, None, False)


def test_3008_error_bit_in_a_request():
    error = decode_error(frame(mar_avp_bytes(), flags=0xE0))
    assert error.result_code == 3008


def test_3009_m_bit_where_forbidden():
    cer = new_message(
        "Capabilities-Exchange-Request",
        origin_host="gw.home.net",
        origin_realm="home.net",
        host_ip_address=["192.0.2.1"],
        vendor_id=0,
        product_name="cxgw",
    )
    avps = [a.encode() for a in cer.avps]
    bad = raw_avp(269, 0x40, b"cxgw")  # Product-Name: M bit MUST NOT be set
    index = next(i for i, a in enumerate(cer.avps) if a.name == "Product-Name")
    avps[index] = bad
    error = decode_error(frame(avps, flags=0x80, code=257, application_id=0))
    assert (error.result_code, error.failed_avp, error.fatal) == (3009, bad, False)


def test_5014_avp_length_beyond_the_message():
    avps = mar_avp_bytes()
    bad = raw_avp(1, 0x40, b"alice", length=400)
    avps[6] = bad  # User-Name
    data = frame(avps[:7])
    error = decode_error(data)
    assert error.result_code == 5014
    assert error.failed_avp == bad  # all there is of it
    assert not error.fatal


def test_5014_fixed_size_value_of_the_wrong_length():
    avps = mar_avp_bytes()
    bad = raw_avp(607, 0xC0, bytes(2), vendor=10415)  # SIP-Number-Auth-Items with 2 bytes
    avps[9] = bad
    error = decode_error(frame(avps))
    assert (error.result_code, error.failed_avp) == (5014, bad)


def test_5015_message_length_mismatch_is_fatal():
    data = mar().encode()
    error = decode_error(frame(mar_avp_bytes(), length=len(data) + 4))
    assert (error.result_code, error.fatal) == (5015, True)
    error = decode_error(data[:-4])
    assert (error.result_code, error.fatal) == (5015, True)


def test_5015_length_not_a_multiple_of_four():
    data = mar().encode() + b"\x00\x00"
    data = data[:1] + len(data).to_bytes(3, "big") + data[4:]
    error = decode_error(data)
    assert error.result_code == 5015
    assert error.failed_avp is None


def test_5004_invalid_utf8_user_name():
    avps = mar_avp_bytes()
    bad = raw_avp(1, 0x40, b"alice\xff")
    avps[6] = bad
    error = decode_error(frame(avps))
    assert (error.result_code, error.failed_avp) == (5004, bad)


def test_5004_unknown_enumerated_value_with_m_bit():
    avps = mar_avp_bytes()
    bad = raw_avp(277, 0x40, bytes.fromhex("00000009"))  # Auth-Session-State 9
    avps[2] = bad
    error = decode_error(frame(avps))
    assert (error.result_code, error.failed_avp) == (5004, bad)


def test_5001_unknown_avp_with_m_bit():
    bad = raw_avp(4242, 0x40, b"must understand")
    error = decode_error(frame([*mar_avp_bytes(), bad]))
    assert (error.result_code, error.failed_avp, error.fatal) == (5001, bad, False)


def test_5001_unknown_vendor_avp_with_m_bit_inside_sip_auth_data_item():
    bad = raw_avp(1, 0xC0, b"x", vendor=99)
    avps = mar_avp_bytes()
    avps[8] = raw_avp(612, 0xC0, raw_avp(613, 0xC0, bytes(4), vendor=10415) + bad, vendor=10415)
    error = decode_error(frame(avps))
    assert error.result_code == 5001
    assert innermost(error.failed_avp) == bad


def test_5005_missing_avp_carries_a_zeroed_example():
    avps = [a for a in mar_avp_bytes() if a[:4] != (1).to_bytes(4, "big")]  # no User-Name
    error = decode_error(frame(avps))
    assert error.result_code == 5005
    assert error.failed_avp == bytes.fromhex("0000000140000008")


def test_5005_missing_vendor_avp_example_has_the_v_bit():
    avps = [a for a in mar_avp_bytes() if a[:4] != (607).to_bytes(4, "big")]
    error = decode_error(frame(avps))
    assert error.result_code == 5005
    assert error.failed_avp == bytes.fromhex("0000025fc0000010000028af00000000")


def test_5008_session_id_not_first():
    avps = mar_avp_bytes()
    avps[0], avps[1] = avps[1], avps[0]
    error = decode_error(frame(avps))
    assert (error.result_code, error.failed_avp) == (5008, avps[1])


def test_5008_avp_not_allowed_in_a_grouped_avp():
    intruder = raw_avp(263, 0x40, b"sess")  # Session-Id inside Vendor-Specific-Application-Id
    avps = mar_avp_bytes()
    avps[1] = raw_avp(260, 0x40, raw_avp(266, 0x40, (10415).to_bytes(4, "big")) + intruder)
    error = decode_error(frame(avps))
    assert error.result_code == 5008
    assert innermost(error.failed_avp) == intruder


def test_5009_first_extra_occurrence():
    avps = mar_avp_bytes()
    second = raw_avp(1, 0x40, b"bob@home.net")
    third = raw_avp(1, 0x40, b"carol@home.net")
    error = decode_error(frame([*avps[:7], second, third, *avps[7:]]))
    assert (error.result_code, error.failed_avp) == (5009, second)


def test_5011_unsupported_version_is_fatal():
    error = decode_error(frame(mar_avp_bytes(), version=2))
    assert (error.result_code, error.fatal, error.failed_avp) == (5011, True, None)


def test_header_errors_come_before_avp_errors():
    garbage = [raw_avp(4242, 0x40, b"x"), b"\x00\x00\x00"]
    assert decode_error(frame(garbage, version=0)).result_code == 5011
    assert decode_error(frame([raw_avp(4242, 0x40, b"x")], flags=0x88)).result_code == 3008


def test_error_answers_are_checked_against_the_answer_message():
    avps = [raw_avp(264, 0x40, b"h.net"), raw_avp(296, 0x40, b"net")]  # no Result-Code
    error = decode_error(frame(avps, flags=0x60))
    assert error.result_code == 5005
    assert error.failed_avp == bytes.fromhex("0000010c4000000c00000000")
    ok = decode(frame([*avps, raw_avp(268, 0x40, (3008).to_bytes(4, "big"))], flags=0x60))
    assert ok.is_error and ok.grammar.name == "Answer-Message"


def test_validate_false_skips_the_grammar_not_the_values():
    avps = mar_avp_bytes()
    data = frame(avps[1:])  # no Session-Id
    assert decode_error(data).result_code == 5005
    assert decode(data, validate=False).encode() == data
    avps[6] = raw_avp(1, 0x40, b"\xff")
    assert decode_error(frame(avps), validate=False).result_code == 5004


def test_unknown_command_is_decoded_without_grammar():
    message = decode(frame([raw_avp(264, 0x40, b"h.net")], flags=0x80, code=9999, application_id=0))
    assert message.grammar is None
    assert message.name == "Request(9999, app 0)"


# -- lazy decoding ---------------------------------------------------------------------------------


def test_lazy_decode_checks_framing_only():
    bad_value = raw_avp(1, 0x40, b"\xff")
    unknown_m = raw_avp(4242, 0x40, b"x")
    data = frame([bad_value, unknown_m], flags=0xC3)  # reserved header bits too
    lazy = decode_lazy(data)
    assert lazy.encode() == data
    assert lazy.avps[1].definition is None and lazy.avps[1].value == b"x"
    with pytest.raises(DecodeError) as caught:
        lazy.avps[0].value  # noqa: B018
    assert (caught.value.result_code, caught.value.failed_avp) == (5004, bad_value)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (frame([raw_avp(1, 0x40, b"x", length=99)]), 5014),
        (frame([b"\x00\x00\x00\x01"]), 5014),
        (frame([], version=3), 5011),
        (frame([], length=24), 5015),
    ],
)
def test_lazy_decode_framing_errors(data, code):
    with pytest.raises(DecodeError) as caught:
        decode_lazy(data)
    assert caught.value.result_code == code


# -- bounded memory ---------------------------------------------------------------------------------


def peak_bytes_of(function, *args):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            function(*args)
        except DecodeError as error:
            result = error
        else:
            result = None
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("decoder", [decode, decode_lazy])
def test_header_claiming_16_mb_does_not_allocate_it(decoder):
    data = frame([], length=0xFFFFFC)  # 20 bytes that declare 16 MB
    peak, error = peak_bytes_of(decoder, data)
    assert error is not None and (error.result_code, error.fatal) == (5015, True)
    assert peak < 64 * 1024


@pytest.mark.parametrize("decoder", [decode, decode_lazy])
def test_avp_claiming_16_mb_does_not_allocate_it(decoder):
    data = frame([raw_avp(263, 0x40, b"abcd", length=0xFFFFFF)])
    peak, error = peak_bytes_of(decoder, data)
    assert error is not None and error.result_code == 5014
    assert peak < 64 * 1024


# -- the Message object ---------------------------------------------------------------------------


def test_message_accessors():
    message = decode(
        mar(route_record=["r1.net", "r2.net"], destination_host="hss1.hss.net").encode()
    )
    assert message.name == "Multimedia-Auth-Request"
    assert (
        message.is_request
        and message.is_proxiable
        and not message.is_error
        and not message.is_retransmit
    )
    assert (message.command_code, message.application_id) == (303, CX)
    assert (message.hop_by_hop, message.end_to_end) == (0x1234, 0x5678)
    assert message["User-Name"] == "alice@home.net"
    assert message.get("Destination-Host") == "hss1.hss.net"
    assert message.get("Result-Code", 0) == 0
    assert "Public-Identity" in message and "Result-Code" not in message
    assert [a.value for a in message.find_all("Route-Record")] == ["r1.net", "r2.net"]
    assert message.find("Proxy-Info") is None
    assert list(message) == list(message.avps)
    assert message.result_code is None and message.experimental_result is None
    with pytest.raises(KeyError, match="Result-Code"):
        message["Result-Code"]  # noqa: B018
    assert "Multimedia-Auth-Request" in repr(message)


def test_changing_avps_drops_the_kept_bytes():
    data = mar().encode()
    message = decode(data)
    message.set(avp("User-Name", "bob@home.net"))
    assert message["User-Name"] == "bob@home.net"
    changed = message.encode()
    assert changed != data and decode(changed)["User-Name"] == "bob@home.net"
    message.set(avp("Destination-Host", "hss1.hss.net"))  # inserted in grammar order
    names = [a.name for a in message.avps]
    assert names.index("Destination-Host") == names.index("Destination-Realm") + 1
    message.append(avp("Route-Record", "r.net"))
    assert message.avps[-1].name == "Route-Record"
    message.remove("Route-Record")
    assert "Route-Record" not in message
    assert decode(message.encode()).encode() == message.encode()


def test_header_fields_can_change_without_touching_avps():
    data = mar().encode()
    message = decode(data)
    message.hop_by_hop = 0xCAFEBABE
    message.flags |= Flags.RETRANSMIT
    changed = message.encode()
    assert changed[20:] == data[20:]
    assert changed[4] == 0xD0 and changed[12:16] == bytes.fromhex("cafebabe")


def test_message_built_by_hand():
    message = Message(
        280, Flags.REQUEST, 0, 1, 2, [avp("Origin-Host", "h.net"), avp("Origin-Realm", "net")]
    )
    expected = frame(
        [pack_avp(264, 0x40, 0, b"h.net"), pack_avp(296, 0x40, 0, b"net")],
        flags=0x80,
        code=280,
        application_id=0,
        hbh=1,
        e2e=2,
    )
    assert message.encode() == expected
    assert decode(expected).name == "Device-Watchdog-Request"


# -- message templates: a layout seen valid before is a shortcut, never a different verdict --
def _with_user(template: bytes, user: bytes) -> bytes:
    """The sample MAR with User-Name data replaced by ``user`` (same length)."""
    from cx_codec.rewrite import top_level

    old = top_level(template, {(1, 0)})[(1, 0)][0]
    assert len(user) == len(old)
    return template.replace(old, user, 1)


def test_template_hit_still_checks_values():
    from cx_codec.dictionary import Dictionary, base, cx, digest, doic
    from cx_codec.samples import SAMPLE_MAR

    dictionary = Dictionary().load(base, digest, doic, cx)
    original = decode(SAMPLE_MAR, dictionary)
    user = original["User-Name"].encode()
    good = _with_user(SAMPLE_MAR, b"x" * len(user))
    assert decode(good, dictionary)["User-Name"] == "x" * len(user)  # second of this layout
    assert dictionary.templates  # the layout was remembered
    broken = _with_user(SAMPLE_MAR, b"\xff" * len(user))  # same layout, invalid UTF-8
    with pytest.raises(DecodeError) as caught:
        decode(broken, dictionary)
    assert caught.value.result_code == ResultCode.DIAMETER_INVALID_AVP_VALUE
    assert caught.value.failed_avp is not None and caught.value.failed_avp[:4] == (1).to_bytes(4, "big")


def test_strict_layout_after_a_template_still_checks_values():
    """strict_layout checks again, on a template hit, the values it checks (per layout,
    the AVPs not shared byte for byte): the same verdict as decode."""
    from cx_codec.dictionary import Dictionary, base, cx, digest, doic
    from cx_codec.message import strict_layout
    from cx_codec.samples import SAMPLE_MAR

    dictionary = Dictionary().load(base, digest, doic, cx)
    user = decode(SAMPLE_MAR, dictionary)["User-Name"].encode()
    good = _with_user(SAMPLE_MAR, b"x" * len(user))
    assert strict_layout(good, dictionary) == strict_layout(SAMPLE_MAR, dictionary)  # a template hit
    broken = _with_user(SAMPLE_MAR, b"\xff" * len(user))  # same layout, invalid UTF-8
    with pytest.raises(DecodeError) as caught:
        strict_layout(broken, dictionary)
    assert caught.value.result_code == ResultCode.DIAMETER_INVALID_AVP_VALUE
    assert caught.value.failed_avp is not None and caught.value.failed_avp[:4] == (1).to_bytes(4, "big")


def test_template_miss_on_same_length_other_structure():
    from cx_codec.dictionary import Dictionary, base, cx, digest, doic
    from cx_codec.samples import SAMPLE_MAR

    dictionary = Dictionary().load(base, digest, doic, cx)
    decode(SAMPLE_MAR, dictionary)
    # same length, but the User-Name header says 4 bytes more: the layout differs
    data = bytearray(SAMPLE_MAR)
    offset = data.find((1).to_bytes(4, "big") + b"\x40")
    length = int.from_bytes(data[offset + 5 : offset + 8], "big")
    data[offset + 5 : offset + 8] = (length + 4).to_bytes(3, "big")
    with pytest.raises(DecodeError) as caught:
        decode(bytes(data), dictionary)
    assert caught.value.result_code in (ResultCode.DIAMETER_INVALID_AVP_LENGTH, ResultCode.DIAMETER_INVALID_AVP_VALUE)


@pytest.mark.parametrize("avp", [(263, 0), (1, 0), (601, 10415)])  # Session-Id, User-Name, Public-Identity
def test_template_fits_says_no_to_invalid_utf8_on_a_template_hit(avp):
    """template_fits checks a UTF8String with bytes.decode (a verdict, no reason): a
    value of a remembered layout that is not UTF-8 makes it say False, never raise."""
    from cx_codec.avp import template_fits
    from cx_codec.dictionary import Dictionary, base, cx, digest, doic
    from cx_codec.rewrite import top_level
    from cx_codec.samples import SAMPLE_MAR

    dictionary = Dictionary().load(base, digest, doic, cx)
    decode(SAMPLE_MAR, dictionary)
    (template,) = [t for known in dictionary.templates.values() for t in known]
    old = top_level(SAMPLE_MAR, {avp})[avp][0]
    broken = SAMPLE_MAR.replace(old, b"\xc3" + old[1:], 1)  # a lead byte without its continuation
    assert template_fits(SAMPLE_MAR, template, dictionary)
    assert not template_fits(broken, template, dictionary)
    with pytest.raises(DecodeError):
        decode(broken, dictionary)


def _value_spans(data: bytes, start: int, end: int, depth: int = 0) -> list[tuple[int, int]]:
    """Where the data of every AVP of ``data[start:end]`` is, Grouped members' included
    (their headers too: a member's header is data of the Grouped AVP)."""
    from cx_codec.dictionary import DEFAULT_DICTIONARY

    spans = []
    offset = start
    while offset < end:
        code, word = struct.unpack_from(">II", data, offset)
        vendor = struct.unpack_from(">I", data, offset + 8)[0] if word & 0x80000000 else 0
        data_at = offset + (12 if word & 0x80000000 else 8)
        stop = offset + (word & 0xFFFFFF)
        spans.append((data_at, stop))
        definition = DEFAULT_DICTIONARY.avps.get((code, vendor))
        if definition is not None and definition.grammar is not None and depth < 3:
            spans += _value_spans(data, data_at, stop, depth + 1)
        offset += ((word & 0xFFFFFF) + 3) & -4
    return spans


@pytest.mark.parametrize("sample", ["SAMPLE_MAR", "SAMPLE_MAA"])
def test_a_remembered_layout_gives_decode_s_verdict_on_any_value(sample):
    """template_fits checks each kind of value its own way (every UTF8String in one decode,
    every DiameterIdentity in one match, a Grouped AVP's members once per distinct data,
    fixed-size values without enum not at all: their length is in the compared header);
    whatever bytes the values of a remembered layout hold, strict_layout says what a
    decode with no templates says (RFC 6733 §7)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from cx_codec import samples
    from cx_codec.dictionary import Dictionary, base, cx, digest, doic
    from cx_codec.message import strict_layout

    message = getattr(samples, sample)
    spans = [span for span in _value_spans(message, 20, len(message)) if span[1] > span[0]]
    remembered = Dictionary().load(base, digest, doic, cx)
    decode(message, remembered)

    @settings(max_examples=300, deadline=None, derandomize=True)
    @given(st.lists(st.tuples(st.sampled_from(spans), st.integers(0, 1 << 16), st.sampled_from(
        [0x00, 0x20, 0x7F, 0x80, 0xBF, 0xC3, 0xED, 0xF4, 0xFF, ord("a"), ord(" "), 0x01])), min_size=1, max_size=3))
    def check(changes):
        data = bytearray(message)
        for (start, stop), at, byte in changes:
            data[start + at % (stop - start)] = byte
        data = bytes(data)
        try:
            decode(data, Dictionary().load(base, digest, doic, cx))
            expected = True
        except DecodeError:
            expected = False
        try:
            strict_layout(data, remembered)
            got = True
        except DecodeError:
            got = False
        assert got == expected

    check()
