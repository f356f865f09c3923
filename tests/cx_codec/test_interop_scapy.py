"""scapy's ``scapy.contrib.diameter`` as a second independent implementation.

- an MAR and an MAA built with scapy (Cx AVPs by number: scapy's name lookups resolve to
  the RFC 4740 codes, docs/interop.md) decode strictly in cx_codec to the same values;
- scapy dissects our bytes (every sample) into the same AVP codes, vendors and flags,
  recursively through the Grouped AVPs it knows.
"""

from __future__ import annotations

import pytest
from scapy.contrib.diameter import AVP, DiamG

from cx_codec import decode
from cx_codec.dictionary import APPLICATION_CX, VENDOR_3GPP
from cx_codec.samples import (
    AUTN,
    CK,
    IK,
    IMPI,
    IMPU,
    RAND,
    SCHEME_AKA,
    SERVER_NAME,
    XRES,
    all_samples,
)

V, M = 0x80, 0x40


def _cx(code: int, value: object, flags: int = V | M) -> AVP:
    return AVP([code, VENDOR_3GPP], val=value, avpFlags=flags)


def _base(code: int, value: object) -> AVP:
    return AVP(code, val=value, avpFlags=M)


def _header_avps(origin_host: str) -> list:
    return [
        _base(263, f"{origin_host};1700000000;77"),
        _base(260, [_base(266, VENDOR_3GPP), _base(258, APPLICATION_CX)]),
        _base(277, 1),
        _base(264, origin_host),
        _base(296, "partner.example"),
    ]


def test_scapy_mar_decodes_strictly_in_cx_codec():
    avps = _header_avps("scscf.partner.example") + [
        _base(283, "partner.example"),
        _base(1, IMPI),
        _cx(601, IMPU),
        _cx(612, [_cx(608, SCHEME_AKA)]),
        _cx(607, 1),
        _cx(602, SERVER_NAME),
    ]
    packet = DiamG(drFlags=0xC0, drCode=303, drAppId=APPLICATION_CX, drHbHId=0x31, drEtEId=0x32, avpList=avps)
    data = bytes(packet)
    message = decode(data)
    assert (message.name, message.hop_by_hop, message.end_to_end) == ("Multimedia-Auth-Request", 0x31, 0x32)
    assert message.encode() == data
    assert message["User-Name"] == IMPI
    assert message["Public-Identity"] == IMPU
    assert message["Server-Name"] == SERVER_NAME
    assert message["SIP-Number-Auth-Items"] == 1
    assert message.find("SIP-Auth-Data-Item").get("SIP-Authentication-Scheme") == SCHEME_AKA


def test_scapy_maa_decodes_strictly_in_cx_codec():
    item = [
        _cx(613, 1),
        _cx(608, SCHEME_AKA),
        _cx(609, RAND + AUTN),
        _cx(610, XRES),
        _cx(625, CK),
        _cx(626, IK),
    ]
    avps = _header_avps("hss.partner.example")
    avps.insert(2, _base(268, 2001))
    avps += [_base(1, IMPI), _cx(601, IMPU), _cx(607, 1), _cx(612, item)]
    packet = DiamG(drFlags=0x40, drCode=303, drAppId=APPLICATION_CX, drHbHId=0x31, drEtEId=0x32, avpList=avps)
    data = bytes(packet)
    message = decode(data)
    assert message.name == "Multimedia-Auth-Answer" and message.result_code == 2001
    assert message.encode() == data
    (decoded,) = message.find_all("SIP-Auth-Data-Item")
    assert decoded.get("SIP-Item-Number") == 1
    assert decoded.get("SIP-Authenticate") == RAND + AUTN
    assert decoded.get("SIP-Authorization") == XRES
    assert decoded.get("Confidentiality-Key") == CK
    assert decoded.get("Integrity-Key") == IK


def _scapy_tree(avps: list) -> list[tuple]:
    tree = []
    for avp in avps:
        children = None
        if isinstance(avp.val, list):  # a Grouped AVP scapy knows
            children = _scapy_tree(avp.val)
        tree.append((avp.avpCode, int(getattr(avp, "avpVnd", 0) or 0), int(avp.avpFlags), children))
    return tree


def _our_tree(avps: list, scapy_avps: list) -> list[tuple]:
    tree = []
    for avp, other in zip(avps, scapy_avps, strict=True):
        children = None
        if isinstance(other.val, list):
            assert avp.is_grouped, f"scapy says {avp.name} is Grouped"
            children = _our_tree(avp.children, other.val)
        tree.append((avp.code, avp.vendor, avp.flags, children))
    return tree


SAMPLES = all_samples()


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_scapy_dissects_our_bytes_to_the_same_avps(name):
    data = SAMPLES[name].encode()
    ours = decode(data)
    packet = DiamG(data)
    assert (packet.drCode, packet.drAppId, int(packet.drFlags)) == (ours.command_code, ours.application_id, ours.flags)
    assert packet.drLen == len(data)
    assert _scapy_tree(packet.avpList) == _our_tree(list(ours.avps), packet.avpList)
    assert bytes(packet) == data
