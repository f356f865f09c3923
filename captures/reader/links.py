"""Link layers: where the IP packet starts in a frame, by the file's link type.

Link types are those of https://www.tcpdump.org/linktypes.html. Each entry of LINK_LAYERS
takes the frame and returns ``(offset, ethertype)`` of the network layer, or None when the
frame carries no IP (ARP, LLC, STP, ...: skipped silently). 802.1Q, 802.1ad (QinQ) and
the old 0x9100 VLAN tags are skipped wherever an EtherType is read (IEEE 802.1Q §9.6).
"""

from __future__ import annotations

from collections.abc import Callable

ETHERTYPE_IPV4, ETHERTYPE_IPV6 = 0x0800, 0x86DD
VLAN_TAGS = frozenset({0x8100, 0x88A8, 0x9100})
IP_ETHERTYPES = frozenset({ETHERTYPE_IPV4, ETHERTYPE_IPV6})

# DLT_NULL (0): the address family in the capturing host's byte order; AF_INET is 2
# everywhere, AF_INET6 is 10 (Linux), 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS).
NULL_FAMILIES = {2: ETHERTYPE_IPV4, 10: ETHERTYPE_IPV6, 24: ETHERTYPE_IPV6, 28: ETHERTYPE_IPV6, 30: ETHERTYPE_IPV6}

Located = tuple[int, int] | None


def _after_ethertype(data: bytes, offset: int) -> Located:
    """The EtherType at ``offset`` (2 bytes), VLAN tags skipped; the payload follows."""
    while len(data) >= offset + 2:
        ethertype = (data[offset] << 8) | data[offset + 1]
        if ethertype in VLAN_TAGS:
            offset += 4  # the tag's TCI and the next EtherType
            continue
        return (offset + 2, ethertype) if ethertype in IP_ETHERTYPES else None
    return None


def ethernet(data: bytes) -> Located:
    # destination MAC, source MAC, EtherType (IEEE 802.3 §3.1.1)
    return _after_ethertype(data, 12)


def linux_sll(data: bytes) -> Located:
    # packet type, ARPHRD type, address length, 8 bytes of address, protocol (LINKTYPE_LINUX_SLL)
    return _after_ethertype(data, 14)


def linux_sll2(data: bytes) -> Located:
    # protocol, reserved, interface index, ARPHRD type, packet type, address length, address
    if len(data) < 20:
        return None
    ethertype = (data[0] << 8) | data[1]
    if ethertype in VLAN_TAGS:
        return _after_ethertype(data, 22)  # the tag's TCI at 20, then the next EtherType
    return (20, ethertype) if ethertype in IP_ETHERTYPES else None


def raw_ip(data: bytes) -> Located:
    # no link header: the IP version nibble says which
    if not data:
        return None
    version = data[0] >> 4
    return (0, ETHERTYPE_IPV4) if version == 4 else (0, ETHERTYPE_IPV6) if version == 6 else None


def raw_ipv4(data: bytes) -> Located:
    return (0, ETHERTYPE_IPV4)


def raw_ipv6(data: bytes) -> Located:
    return (0, ETHERTYPE_IPV6)


def null(data: bytes) -> Located:
    if len(data) < 4:
        return None
    family = int.from_bytes(data[:4], "little")
    if family > 0xFFFF:  # written by a big-endian host
        family = int.from_bytes(data[:4], "big")
    ethertype = NULL_FAMILIES.get(family)
    return (4, ethertype) if ethertype else None


def loop(data: bytes) -> Located:
    # LINKTYPE_LOOP (108): like NULL, always in network byte order
    ethertype = NULL_FAMILIES.get(int.from_bytes(data[:4], "big")) if len(data) >= 4 else None
    return (4, ethertype) if ethertype else None


LINK_LAYERS: dict[int, Callable[[bytes], Located]] = {
    0: null,
    1: ethernet,
    12: raw_ip,  # DLT_RAW on most platforms
    14: raw_ip,  # DLT_RAW on OpenBSD
    101: raw_ip,
    108: loop,
    113: linux_sll,
    228: raw_ipv4,
    229: raw_ipv6,
    276: linux_sll2,
}

LINK_NAMES = {
    0: "NULL/loopback", 1: "Ethernet", 12: "raw IP", 14: "raw IP", 101: "raw IP", 108: "OpenBSD loopback",
    113: "Linux cooked (SLL)", 228: "raw IPv4", 229: "raw IPv6", 276: "Linux cooked v2 (SLL2)",
}
