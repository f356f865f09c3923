"""Many AVPs at one level: decoding stays linear, and the verdicts are the slow path's.

The grammar check memoises verdicts by a signature of the AVP key sequence (one integer,
34 bits per AVP). Built for every AVP of a level, that integer makes decoding quadratic
in the number of AVPs (each shift copies it). The signature is only built up to a bound;
longer levels are judged directly. These tests count work, not time: the largest
signature handed to the grammar check is bounded whatever the number of AVPs, and
messages of 1k to 64k AVPs (top level, and inside a Grouped AVP) get the same verdict as
the reference path (value decode, then ``validate_avps`` over the whole tree).
"""

from __future__ import annotations

import pytest

import cx_codec.avp as avp_module
from cx_codec import samples
from cx_codec.avp import pack_avp
from cx_codec.errors import DecodeError
from cx_codec.message import decode, decode_lazy
from cx_codec.validate import validate_avps

MAR = samples.SAMPLE_MAR if isinstance(samples.SAMPLE_MAR, bytes) else samples.SAMPLE_MAR.encode()
MAR_AVPS = [avp.encode() for avp in decode_lazy(MAR).avps]
ORIGIN_HOST = next(avp for avp in MAR_AVPS if avp[:4] == (264).to_bytes(4, "big"))
SIP_AUTH_DATA_ITEM = (612).to_bytes(4, "big")

# most of a signature's 34-bit digits that may be built (a bound, not the exact cap)
SIGNATURE_BITS_BOUND = 34 * 256


def message(avps: list[bytes]) -> bytes:
    body = b"".join(avps)
    return MAR[:1] + (20 + len(body)).to_bytes(3, "big") + MAR[4:20] + body


def route_records(count: int) -> list[bytes]:
    # *[ Route-Record ] (TS 29.229 §6.1.7): any number, each a DiameterIdentity
    return [pack_avp(282, 0x40, 0, b"dra%d.partner.example" % index) for index in range(count)]


def unknown(count: int, vendor: int = 0) -> list[bytes]:
    # unknown AVPs without the M bit: the *[ AVP ] part, passed through (RFC 6733 §4.1)
    flags = 0x80 if vendor else 0
    return [pack_avp(70000 + index % 7, flags, vendor, b"x" * (index % 5)) for index in range(count)]


def mar_with(extra: list[bytes], item_members: list[bytes] = ()) -> bytes:
    avps = []
    for avp in MAR_AVPS:
        if avp[:4] == SIP_AUTH_DATA_ITEM and item_members:
            data = avp[12:] + b"".join(item_members)
            avp = pack_avp(612, avp[4], 10415, data)
        avps.append(avp)
    return message(avps + extra)


def reference_verdict(data: bytes) -> tuple:
    """Values and flags of every AVP (VALUES mode), then the grammar of the whole tree."""
    try:
        decoded = decode(data, validate=False)
        validate_avps(decoded.avps, decoded.grammar, decoded.dictionary)
    except DecodeError as error:
        return ("error", error.result_code, error.failed_avp)
    return ("ok", len(decoded.avps), decoded.encode())


def strict_verdict(data: bytes) -> tuple:
    try:
        decoded = decode(data)
    except DecodeError as error:
        return ("error", error.result_code, error.failed_avp)
    return ("ok", len(decoded.avps), decoded.encode())


@pytest.fixture
def signature_sizes(monkeypatch):
    """Bit lengths of the signatures parse_avps and check_members hand to the grammar check."""
    sizes: list[int] = []
    original = avp_module.check_grammar_signature

    def recording(signature, grammar, dictionary, materialise):
        sizes.append(signature.bit_length())
        return original(signature, grammar, dictionary, materialise)

    monkeypatch.setattr(avp_module, "check_grammar_signature", recording)
    return sizes


@pytest.mark.parametrize("count", [1024, 4096, 16384])
@pytest.mark.parametrize("kind", ["route-record", "unknown", "unknown vendor", "other vendor first", "grouped members"])
def test_signatures_stay_bounded_whatever_the_number_of_avps(signature_sizes, kind, count):
    if kind == "route-record":
        data = mar_with(route_records(count))
    elif kind == "unknown":
        data = mar_with(unknown(count))
    elif kind == "unknown vendor":
        data = mar_with(unknown(count, vendor=10415))
    elif kind == "other vendor first":  # a key the signature cannot express, then many
        data = mar_with(unknown(1, vendor=99) + route_records(count - 1))
    else:
        data = mar_with([], unknown(count))
    assert strict_verdict(data) == reference_verdict(data) == ("ok", len(MAR_AVPS) + (0 if kind == "grouped members" else count), data)
    assert signature_sizes, "the grammar check was not reached"
    assert max(signature_sizes) <= SIGNATURE_BITS_BOUND, max(signature_sizes)


def test_64k_avps_at_one_level_decode_with_the_reference_verdict():
    many = route_records(32768) + unknown(32768)
    cases = {
        "valid": many,
        "one Origin-Host too many, last": [*many, ORIGIN_HOST],
        "an unknown M-bit AVP, last": [*many, pack_avp(70001, 0x40, 0, b"m")],
        "an invalid Route-Record, last": [*many, pack_avp(282, 0x40, 0, b"not an identity")],
    }
    for name, extra in cases.items():
        data = mar_with(extra)
        expected = reference_verdict(data)
        assert strict_verdict(data) == expected, name
        assert (expected[0] == "ok") == (name == "valid"), name


def test_64k_members_of_a_grouped_avp_decode_with_the_reference_verdict():
    members = unknown(65536)
    for extra in ([], [pack_avp(70001, 0x40, 0, b"m")], [pack_avp(613, 0xC0, 10415, bytes(4))] * 2):
        data = mar_with([], members + extra)
        strict, reference = strict_verdict(data), reference_verdict(data)
        assert strict[:2] == reference[:2]
        if strict[0] == "error":
            # RFC 6733 §7.5: the strict decoder wraps the offending member in its Grouped AVP
            assert strict[2].startswith((612).to_bytes(4, "big")) and reference[2] in strict[2]
        else:
            assert strict == reference


def test_short_levels_still_use_the_memo():
    """The memo of grammar verdicts keeps serving ordinary messages (a MAR, ~12 AVPs)."""
    from cx_codec.dictionary import Dictionary, base, cx, digest, doic

    dictionary = Dictionary().load(base, digest, doic, cx)
    decode(MAR, dictionary)
    assert dictionary.signatures
