"""python-diameter as an independent oracle (docs/interop.md).

- every sample decodes there to the same AVP tree (code, vendor, flags, data; recursively
  for Grouped, parsed by python-diameter's own AVP parser) and re-encodes to our bytes;
- messages built with python-diameter (Cx AVPs by number with ``Avp.new(code, 10415)``,
  since its typed MAR/MAA use the RFC 4740 codes) decode strictly in cx_codec to the
  same values;
- its dictionary agrees with ours on the code, vendor and base type of every Cx AVP both
  define (a third source next to the specs and Wireshark).
"""

from __future__ import annotations

import pytest
from diameter.message import Message as PdMessage
from diameter.message import MessageHeader
from diameter.message.avp import Avp as PdAvp
from diameter.message.avp import avp as pd_avp_module
from diameter.message.packer import Unpacker

from cx_codec import decode
from cx_codec.avp import Avp
from cx_codec.datatypes import DataType
from cx_codec.dictionary import APPLICATION_CX, DEFAULT_DICTIONARY, VENDOR_3GPP
from cx_codec.samples import AUTN, CK, IK, IMPI, IMPU, RAND, XRES, all_samples

SAMPLES = all_samples()


def _their_children(payload: bytes) -> list[PdAvp]:
    unpacker = Unpacker(payload)
    children = []
    while not unpacker.is_done():
        children.append(PdAvp.from_unpacker(unpacker))
    return children


def _ours(avps: list[Avp]) -> list[tuple]:
    return [
        (a.code, a.vendor, a.flags, a.data, _ours(a.children) if a.is_grouped else None)
        for a in avps
    ]


def _theirs(avps: list[PdAvp], ours: list[Avp]) -> list[tuple]:
    """python-diameter's view; grouped payloads parsed by python-diameter wherever we
    say Grouped (and where it says Grouped, we must too: checked by the caller)."""
    tree = []
    for index, avp in enumerate(avps):
        counterpart = ours[index] if index < len(ours) else None
        children = None
        if counterpart is not None and counterpart.is_grouped:
            children = _theirs(_their_children(avp.payload), counterpart.children)
        tree.append((avp.code, avp.vendor_id, avp.flags, avp.payload, children))
    return tree


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_decodes_in_python_diameter_to_the_same_avps(name):
    data = SAMPLES[name].encode()
    ours = decode(data)
    theirs = PdMessage.from_bytes(data, plain_msg=True)
    header = theirs.header
    assert (header.command_code, header.application_id, header.command_flags) == (
        ours.command_code,
        ours.application_id,
        ours.flags,
    )
    assert (header.hop_by_hop_identifier, header.end_to_end_identifier) == (ours.hop_by_hop, ours.end_to_end)
    assert _theirs(theirs.avps, list(ours.avps)) == _ours(list(ours.avps))
    assert theirs.as_bytes() == data


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_leaf_values_agree_where_python_diameter_knows_the_type(name):
    ours = decode(SAMPLES[name].encode())
    theirs = PdMessage.from_bytes(SAMPLES[name].encode(), plain_msg=True)
    compared = 0

    def walk(our_avps: list[Avp], their_avps: list[PdAvp]) -> None:
        nonlocal compared
        for mine, other in zip(our_avps, their_avps, strict=True):
            if mine.is_grouped:
                walk(mine.children, _their_children(other.payload))
                continue
            kind = mine.definition.type if mine.definition else None
            if type(other) is PdAvp or kind is None:
                continue  # unknown to python-diameter: bytes compared above
            if kind in (DataType.Unsigned32, DataType.Unsigned64, DataType.Enumerated, DataType.Integer32):
                assert other.value == mine.value, mine.name
            elif kind in (DataType.UTF8String, DataType.DiameterURI):
                assert other.value == mine.value, mine.name
            elif kind is DataType.OctetString:
                assert bytes(other.payload) == mine.value, mine.name
            else:
                continue
            compared += 1

    walk(list(ours.avps), theirs.avps)
    assert compared > 0


# -- python-diameter builds, cx_codec decodes --------------------------------------------
def _pd(code: int, value: object, vendor: int = 0) -> PdAvp:
    # flags from our dictionary: python-diameter marks every Cx AVP M, which TS 29.229
    # forbids for 629-666 (we would answer 3009); the M-MUST AVPs are the same either way
    definition = DEFAULT_DICTIONARY.avps[(code, vendor)]
    return PdAvp.new(code, vendor, value, is_mandatory=definition.mandatory)


def _pd_message(code: int, flags: int, avps: list[PdAvp], hop: int = 0x11110001, e2e: int = 0x22220001) -> bytes:
    header = MessageHeader(
        version=1,
        command_flags=flags,
        command_code=code,
        application_id=APPLICATION_CX,
        hop_by_hop_identifier=hop,
        end_to_end_identifier=e2e,
    )
    return PdMessage(header, avps).as_bytes()


def _common(origin_host: str) -> list[PdAvp]:
    return [
        _pd(263, f"{origin_host};1;42"),
        _pd(260, [_pd(266, VENDOR_3GPP), _pd(258, APPLICATION_CX)]),
        _pd(277, 1),
        _pd(264, origin_host.encode()),
        _pd(296, b"partner.example"),
    ]


def test_python_diameter_mar_decodes_strictly_in_cx_codec():
    avps = _common("scscf.partner.example") + [
        _pd(283, b"partner.example"),
        _pd(1, IMPI),
        _pd(601, IMPU, VENDOR_3GPP),
        _pd(612, [_pd(608, "Digest-AKAv1-MD5", VENDOR_3GPP)], VENDOR_3GPP),
        _pd(607, 1, VENDOR_3GPP),
        _pd(602, "sip:scscf.partner.example:6060", VENDOR_3GPP),
    ]
    data = _pd_message(303, 0xC0, avps)
    message = decode(data)
    assert message.name == "Multimedia-Auth-Request"
    assert message.encode() == data
    assert message["User-Name"] == IMPI
    assert message["Public-Identity"] == IMPU
    assert message["SIP-Number-Auth-Items"] == 1
    assert message["Server-Name"] == "sip:scscf.partner.example:6060"
    assert message.find("SIP-Auth-Data-Item").get("SIP-Authentication-Scheme") == "Digest-AKAv1-MD5"
    assert message.find("Vendor-Specific-Application-Id").get("Auth-Application-Id") == APPLICATION_CX


def test_python_diameter_maa_decodes_strictly_in_cx_codec():
    item = [
        _pd(613, 1, VENDOR_3GPP),
        _pd(608, "Digest-AKAv1-MD5", VENDOR_3GPP),
        _pd(609, RAND + AUTN, VENDOR_3GPP),
        _pd(610, XRES, VENDOR_3GPP),
        _pd(625, CK, VENDOR_3GPP),
        _pd(626, IK, VENDOR_3GPP),
    ]
    avps = _common("hss.partner.example")
    avps.insert(2, _pd(268, 2001))  # Result-Code after Vendor-Specific-Application-Id
    avps += [
        _pd(1, IMPI),
        _pd(628, [_pd(266, VENDOR_3GPP), _pd(629, 1, VENDOR_3GPP), _pd(630, 1, VENDOR_3GPP)], VENDOR_3GPP),
        _pd(601, IMPU, VENDOR_3GPP),
        _pd(607, 1, VENDOR_3GPP),
        _pd(612, item, VENDOR_3GPP),
    ]
    data = _pd_message(303, 0x40, avps)
    message = decode(data)
    assert message.name == "Multimedia-Auth-Answer"
    assert message.result_code == 2001
    (decoded_item,) = message.find_all("SIP-Auth-Data-Item")
    assert decoded_item.get("SIP-Authenticate") == RAND + AUTN
    assert decoded_item.get("SIP-Authorization") == XRES
    assert decoded_item.get("Confidentiality-Key") == CK
    assert decoded_item.get("Integrity-Key") == IK
    features = message.find("Supported-Features")
    assert features.get("Feature-List-ID") == 1 and not features.find("Feature-List-ID").is_mandatory


def test_python_diameter_default_m_bit_on_feature_list_id_is_refused():
    # python-diameter's dictionary marks Feature-List-ID "mandatory": TS 29.229 table
    # 6.3.1 says M MUST NOT be set, so strict decoding answers 3009.
    from cx_codec.errors import DecodeError

    features = PdAvp.new(628, VENDOR_3GPP, [PdAvp.new(266, 0, VENDOR_3GPP), PdAvp.new(629, VENDOR_3GPP, 1),
                                            PdAvp.new(630, VENDOR_3GPP, 1)])  # fmt: skip
    avps = _common("hss.partner.example")
    avps.insert(2, _pd(268, 2001))
    avps.append(features)
    with pytest.raises(DecodeError) as caught:
        decode(_pd_message(303, 0x40, avps))
    assert caught.value.result_code == 3009


# -- dictionaries agree -------------------------------------------------------------------
_TYPES = {
    DataType.OctetString: {"AvpOctetString"},
    DataType.UTF8String: {"AvpUtf8String"},
    DataType.Unsigned32: {"AvpUnsigned32"},
    DataType.Unsigned64: {"AvpUnsigned64"},
    DataType.Enumerated: {"AvpEnumerated", "AvpInteger32"},  # its Enumerated is Integer32
    DataType.Grouped: {"AvpGrouped"},
    DataType.Time: {"AvpTime"},
    DataType.Address: {"AvpAddress"},
    # python-diameter has no DiameterURI/Identity class: text or octets
    DataType.DiameterURI: {"AvpUtf8String", "AvpOctetString"},
    DataType.DiameterIdentity: {"AvpUtf8String", "AvpOctetString"},
}


def test_cx_avp_codes_and_types_agree_with_python_diameter():
    compared = []
    for (code, vendor), definition in DEFAULT_DICTIONARY.avps.items():
        if vendor != VENDOR_3GPP or not 600 <= code <= 699:
            continue
        entry = pd_avp_module.get_avp_dictionary_entry(code, vendor)
        if entry is None:
            continue  # newer than python-diameter (659-666)
        assert entry["type"].__name__ in _TYPES[definition.type], (definition.name, entry)
        compared.append(code)
    assert len(compared) >= 55
