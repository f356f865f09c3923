"""captures.reader on captures built with scapy: link layers (Ethernet, VLAN, SLL, SLL2,
raw IP, NULL), IPv6 extension headers, IP fragments, TCP reassembly (out of order,
retransmissions, overlaps, gaps, several messages per segment, TLS) and SCTP."""

from __future__ import annotations

import io
import struct
import subprocess
from dataclasses import dataclass

import pytest
from scapy.layers.inet import IP, TCP, fragment
from scapy.layers.inet6 import (
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    fragment6,
)
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1Q, Ether, Loopback
from scapy.layers.sctp import SCTP, SCTPChunkData, SCTPChunkInit
from scapy.packet import Packet
from scapy.utils import PcapNgWriter, PcapWriter

from captures.reader import CaptureReader, Endpoint, Problem, read_messages
from cx_codec.samples import SAMPLE_MAA, SAMPLE_MAR, all_samples

T0 = 1_764_547_200.0


MAC = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}  # given: scapy would resolve them


def big_message(size: int) -> bytes:
    """A Diameter request of ``size`` bytes (a multiple of 4): one AVP of filler data."""
    length = size - 20
    avp = struct.pack("!II", 1000, length) + bytes(index & 0xFF for index in range(length - 8))
    return struct.pack("!IIIII", 1 << 24 | size, 0x80 << 24 | 303, 16777216, 7, 8) + avp


def requests() -> list[bytes]:
    return [message.encode() for message in all_samples().values() if message.is_request]


@dataclass
class TcpFlow:
    """One TCP connection; ``segment`` builds the IP/TCP packet of a byte range."""

    client: tuple[str, int] = ("10.1.1.1", 40000)
    server: tuple[str, int] = ("10.1.1.2", 3868)
    client_isn: int = 1000
    server_isn: int = 0xFFFFFF00  # the server's sequence numbers wrap within a few messages

    def _ip(self, way: int) -> Packet:
        src, dst = (self.client, self.server) if way == 0 else (self.server, self.client)
        layer = IPv6 if ":" in src[0] else IP
        return layer(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1])

    def handshake(self) -> list[Packet]:
        syn = self._ip(0)
        syn[TCP].flags, syn[TCP].seq = "S", self.client_isn
        syn_ack = self._ip(1)
        syn_ack[TCP].flags, syn_ack[TCP].seq, syn_ack[TCP].ack = "SA", self.server_isn, self.client_isn + 1
        ack = self._ip(0)
        ack[TCP].flags, ack[TCP].seq, ack[TCP].ack = "A", self.client_isn + 1, (self.server_isn + 1) & 0xFFFFFFFF
        return [syn, syn_ack, ack]

    def segment(self, way: int, offset: int, payload: bytes, *, ack: int = 0, flags: str = "PA") -> Packet:
        """``payload`` at byte ``offset`` of direction ``way`` (0: client to server);
        ``ack``: how many bytes of the other direction it acknowledges."""
        packet = self._ip(way)
        isn, peer = (self.client_isn, self.server_isn) if way == 0 else (self.server_isn, self.client_isn)
        packet[TCP].flags = flags
        packet[TCP].seq = (isn + 1 + offset) & 0xFFFFFFFF
        packet[TCP].ack = (peer + 1 + ack) & 0xFFFFFFFF
        return packet / payload if payload else packet

    def fin(self, way: int, offset: int, ack: int) -> Packet:
        return self.segment(way, offset, b"", ack=ack, flags="FA")


def pcap(packets: list, *, linktype: int | None = None, start: float = T0) -> bytes:
    """A classic pcap file of the packets (scapy's writer), one every 10 ms."""
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, linktype=linktype, sync=True)
    for index, packet in enumerate(packets):
        if isinstance(packet, Packet):
            packet.time = start + index * 0.01
            writer.write(packet)
        else:
            seconds = start + index * 0.01
            if not writer.header_present:
                writer.write_header(None)
            writer.write_packet(packet, sec=int(seconds), usec=int((seconds % 1) * 1e6))
    writer.flush()
    return buffer.getvalue()


def read(capture: bytes) -> CaptureReader:
    reader = CaptureReader(io.BytesIO(capture))
    reader.messages = list(reader)  # type: ignore[attr-defined]
    return reader


def conversation(flow: TcpFlow) -> tuple[list[Packet], list[tuple[int, bytes]]]:
    """Handshake, then each sample in its direction, one segment each, acknowledged."""
    packets = flow.handshake()
    sent = [0, 0]
    expected = []
    for message in all_samples().values():
        data = message.encode()
        way = 0 if message.is_request else 1
        packets.append(flow.segment(way, sent[way], data, ack=sent[1 - way]))
        sent[way] += len(data)
        expected.append((way, data))
    return packets, expected


# -- link layers ----------------------------------------------------------------------------
LINKS = {
    "ethernet": (None, lambda ip: Ether(**MAC) / ip),
    "vlan": (None, lambda ip: Ether(**MAC) / Dot1Q(vlan=42) / ip),
    "qinq": (None, lambda ip: Ether(**MAC, type=0x88A8) / Dot1Q(vlan=7, type=0x8100) / Dot1Q(vlan=42) / ip),
    "sll": (None, lambda ip: CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6) / ip),
    "sll2": (None, lambda ip: CookedLinuxV2(pkttype=0, lladdrtype=1, lladdrlen=6) / ip),
    "null": (None, lambda ip: Loopback(type=2 if ip.haslayer(IP) else 10) / ip),
    "raw": (101, lambda ip: bytes(ip)),
    "dlt-raw": (12, lambda ip: bytes(ip)),
    "raw-family": ("family", lambda ip: bytes(ip)),  # 228 for IPv4, 229 for IPv6
}


@pytest.mark.parametrize("link", list(LINKS))
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_link_layers(link, family):
    flow = TcpFlow() if family == "ipv4" else TcpFlow(("2001:db8::1", 40000), ("2001:db8::2", 3868))
    packets, expected = conversation(flow)
    linktype, wrap = LINKS[link]
    if linktype == "family":
        linktype = 228 if family == "ipv4" else 229
    reader = read(pcap([wrap(packet) for packet in packets], linktype=linktype))
    assert [(m.source == Endpoint(*flow.server), m.data) for m in reader.messages] == [
        (way == 1, data) for way, data in expected
    ]
    assert reader.problems == []
    assert reader.streams == {0: ("tcp", Endpoint(*flow.client), Endpoint(*flow.server))}


def test_pcapng_written_by_scapy(tmp_path):
    packets, expected = conversation(TcpFlow())
    path = tmp_path / "scapy.pcapng"
    writer = PcapNgWriter(str(path))
    for index, packet in enumerate(packets):
        framed = Ether(**MAC) / packet
        framed.time = T0 + index
        writer.write(framed)
    writer.close()
    messages = read_messages(path)
    assert [m.data for m in messages] == [data for _, data in expected]
    assert [m.time for m in messages] == [T0 + 3 + index for index in range(len(expected))]


def _block(kind: int, body: bytes, order: str = "<") -> bytes:
    body += b"\0" * (-len(body) & 3)
    return struct.pack(order + "II", kind, len(body) + 12) + body + struct.pack(order + "I", len(body) + 12)


def _option(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) & 3)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_with_two_interfaces_link_types_and_resolutions(order):
    """Two interfaces (SLL with nanosecond, Ethernet with 2^-10 s timestamps and an offset),
    packets interleaved, comments, and a second section; both byte orders."""
    packets, expected = conversation(TcpFlow())
    shb = _block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1), order)
    sll = _block(1, struct.pack(order + "HHI", 113, 0, 0) + _option(9, b"\x09", order) + _option(0, b"", order), order)
    eth = _block(
        1,
        struct.pack(order + "HHI", 1, 0, 0) + _option(9, b"\x8a", order) + _option(14, struct.pack(order + "q", 100), order)
        + _option(0, b"", order),
        order,
    )
    out = shb + sll + eth
    times = []
    for index, packet in enumerate(packets):
        interface = index % 2
        data = bytes(CookedLinux(pkttype=0) / packet) if interface == 0 else bytes(Ether(**MAC) / packet)
        if interface == 0:
            units = int((T0 + index) * 1e9)
            times.append(units / 1e9)
        else:
            units = int((T0 - 100 + index) * 1024)
            times.append(units / 1024 + 100)
        options = _option(1, f"packet {index}".encode(), order) + _option(0, b"", order)
        body = struct.pack(order + "IIIII", interface, units >> 32, units & 0xFFFFFFFF, len(data), len(data))
        out += _block(6, body + data + b"\0" * (-len(data) & 3) + options, order)
        if index == 5:  # a new section: the interfaces are described again
            out += shb + sll + eth
    messages = read_messages(io.BytesIO(out))
    assert [m.data for m in messages] == [data for _, data in expected]
    assert [m.frame for m in messages] == list(range(4, 4 + len(expected)))
    assert [m.time for m in messages] == pytest.approx(times[3:])
    assert [m.comment for m in messages] == [f"packet {frame - 1}" for frame in range(4, 4 + len(expected))]


def test_ipv6_extension_headers():
    flow = TcpFlow(("2001:db8::1", 40000), ("2001:db8::2", 3868))
    packets, expected = conversation(flow)
    extended = []
    for packet in packets:
        ip = packet[IPv6]
        tcp = ip.payload
        ip.remove_payload()
        extended.append(Ether(**MAC) / ip / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting() / tcp)
    messages = read_messages(io.BytesIO(pcap(extended)))
    assert [m.data for m in messages] == [data for _, data in expected]


@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_ip_fragments_are_reassembled(family):
    flow = TcpFlow() if family == "ipv4" else TcpFlow(("2001:db8::1", 40000), ("2001:db8::2", 3868))
    big = big_message(1600)
    packets = flow.handshake() + [flow.segment(0, 0, SAMPLE_MAR), flow.segment(1, 0, big, ack=len(SAMPLE_MAR))]
    if family == "ipv4":
        pieces = fragment(packets[-1], fragsize=400)
    else:
        ip = packets[-1][IPv6]
        tcp = ip.payload
        ip.remove_payload()
        pieces = fragment6(ip / IPv6ExtHdrFragment(id=77) / tcp, 500)
    assert len(pieces) > 2
    pieces = pieces[1:] + pieces[:1]  # the first fragment last
    reader = read(pcap([Ether(**MAC) / p for p in [*packets[:-1], *pieces]]))
    assert [m.data for m in reader.messages] == [SAMPLE_MAR, big]
    assert reader.messages[1].frame == 4 + len(pieces)  # completed by the first fragment, sent last
    assert reader.problems == []


def test_fragments_never_completed_are_reported():
    flow = TcpFlow()
    packets = flow.handshake() + fragment(flow.segment(0, 0, big_message(1600)), fragsize=400)[:-1]
    reader = read(pcap([Ether(**MAC) / p for p in packets]))
    assert reader.messages == []
    assert any("IP fragments of datagram" in p.text and p.frame == 4 for p in reader.problems)


# -- TCP reassembly ---------------------------------------------------------------------------
def test_out_of_order_retransmitted_overlapping_and_bundled_segments():
    flow = TcpFlow()
    first, second, third = requests()[:3]
    stream = first + second + third
    cut = len(first) + 10
    packets = flow.handshake() + [
        flow.segment(0, cut, stream[cut:]),  # from the future: held
        flow.segment(0, 0, stream[:25]),  # the start
        flow.segment(0, 0, stream[:25]),  # a retransmission
        flow.segment(0, 20, stream[20:cut]),  # overlaps the start, fills the hole
        flow.segment(1, 0, SAMPLE_MAA + SAMPLE_MAA, ack=len(stream)),  # two answers in one segment
    ]
    reader = read(pcap(packets))
    assert [(m.frame, m.data) for m in reader.messages] == [
        (7, first), (7, second), (7, third), (8, SAMPLE_MAA), (8, SAMPLE_MAA)
    ]
    assert reader.problems == []


def test_one_message_over_many_segments_in_reverse_order():
    flow = TcpFlow()
    data = big_message(2600)
    segments = [flow.segment(1, start, data[start : start + 100]) for start in range(0, len(data), 100)]
    reader = read(pcap(flow.handshake() + segments[::-1]))
    assert [(m.frame, m.data, m.source) for m in reader.messages] == [(3 + len(segments), data, Endpoint(*flow.server))]


def test_a_gap_loses_one_message_and_the_stream_resumes():
    flow = TcpFlow()
    first, second, third = requests()[:3]
    stream = first + second + third
    lost = (len(first) + 4, len(first) + 50)  # inside the second message
    packets = flow.handshake() + [
        flow.segment(0, 0, stream[: lost[0]]),
        flow.segment(0, lost[1], stream[lost[1] :]),
        flow.segment(1, 0, SAMPLE_MAA, ack=len(stream)),  # the server had it all: the hole is the capture's
    ]
    reader = read(pcap(packets))
    assert [m.data for m in reader.messages] == [first, third, SAMPLE_MAA]
    assert [m.frame for m in reader.messages] == [4, 5, 6]  # the third, held until the hole is given up, is frame 5's
    (problem,) = reader.problems
    assert problem.frame == 6 and problem.stream == 0
    assert problem.text == (
        "frame 6: stream 0 (10.1.1.1:40000 -> 10.1.1.2:3868): "
        f"46 bytes missing from the capture: a message of {len(second)} bytes lost"
    )


def test_a_gap_at_the_end_of_the_capture_is_reported():
    flow = TcpFlow()
    first, second = requests()[:2]
    packets = flow.handshake() + [flow.segment(0, 0, first), flow.segment(0, len(first) + 30, second[30:])]
    reader = read(pcap(packets))
    assert [m.data for m in reader.messages] == [first]
    texts = [p.text for p in reader.problems]
    assert any("30 bytes missing from the capture" in text for text in texts), texts


def test_garbage_inside_a_stream_is_skipped_and_reported():
    flow = TcpFlow()
    first, second, third = requests()[:3]
    garbage = b"\x01\xff\xff\xff" + bytes(range(200, 256)) * 3
    data = first + garbage + second + third
    cut = len(first) + 10
    reader = read(pcap(flow.handshake() + [flow.segment(0, 0, data[:cut]), flow.segment(0, cut, data[cut:])]))
    assert [m.data for m in reader.messages] == [first, second, third]
    texts = [p.text for p in reader.problems]
    assert texts[0].startswith("frame 4: stream 0 (10.1.1.1:40000 -> 10.1.1.2:3868): not a Diameter header (version 1, length 16777215")
    assert texts[1] == f"frame 5: stream 0 (10.1.1.1:40000 -> 10.1.1.2:3868): {len(garbage)} bytes that are not Diameter skipped; resynchronised on a message header"
    assert len(texts) == 2


def test_capture_starting_inside_a_connection_reads_from_the_first_header():
    flow = TcpFlow()
    first, second = requests()[:2]
    data = first + second
    reader = read(pcap([flow.segment(0, 100, data[100:]), flow.segment(1, 0, SAMPLE_MAA, ack=len(data))]))
    assert [m.data for m in reader.messages] == [second, SAMPLE_MAA]
    assert reader.problems == []  # expected when a capture starts late: nothing to report
    # the first sender is taken as the client
    assert reader.streams[0] == ("tcp", Endpoint(*flow.client), Endpoint(*flow.server))


def test_tls_is_reported_not_misparsed():
    flow = TcpFlow(server=("10.1.1.2", 5658))
    client_hello = bytes.fromhex("160301020001") + bytes(300)
    # a TLS record that happens to hold bytes looking like a Diameter header must not be read
    packets = flow.handshake() + [
        flow.segment(0, 0, client_hello),
        flow.segment(1, 0, bytes.fromhex("1603030040") + SAMPLE_MAA, ack=len(client_hello)),
        flow.segment(0, len(client_hello), bytes.fromhex("1703030200") + SAMPLE_MAR),
    ]
    reader = read(pcap(packets))
    assert reader.messages == []
    assert [p.text for p in reader.problems] == ["frame 4: stream 0 (10.1.1.1:40000 -> 10.1.1.2:5658): TLS, not readable without keys"]


def test_a_stream_that_is_not_diameter_is_skipped_once():
    flow = TcpFlow(server=("10.1.1.2", 80))
    packets = flow.handshake() + [flow.segment(0, 0, b"GET / HTTP/1.1\r\n\r\n"), flow.segment(0, 18, SAMPLE_MAR)]
    reader = read(pcap(packets))
    assert reader.messages == []
    assert [p.text for p in reader.problems] == [
        "frame 4: stream 0 (10.1.1.1:40000 -> 10.1.1.2:80): not Diameter (its first bytes are 474554202f204854); skipped"
    ]


def test_streams_are_numbered_in_order_of_appearance_and_a_reused_port_is_a_new_stream():
    one, two = TcpFlow(), TcpFlow(client=("10.1.1.3", 41000))
    again = TcpFlow(client_isn=90000)
    packets = [
        *one.handshake(), *two.handshake(),
        two.segment(0, 0, SAMPLE_MAR), one.segment(0, 0, SAMPLE_MAR),
        one.fin(0, len(SAMPLE_MAR), 0), one.fin(1, 0, len(SAMPLE_MAR) + 1),
        *again.handshake(), again.segment(0, 0, SAMPLE_MAR),
    ]
    reader = read(pcap(packets))
    assert [m.stream for m in reader.messages] == [1, 0, 2]
    assert reader.streams[2] == reader.streams[0]
    assert reader.problems == []


def test_snaplen_cut_segment_is_a_gap():
    flow = TcpFlow()
    first, second, third = requests()[:3]
    packets = [bytes(Ether(**MAC) / p) for p in flow.handshake() + [flow.segment(0, 0, first + second), flow.segment(0, len(first + second), third)]]
    buffer = io.BytesIO()
    writer = PcapWriter(buffer, linktype=1, snaplen=200, sync=True)
    writer.write_header(None)
    for index, data in enumerate(packets):
        writer.write_packet(data[: 14 + 40 + len(first) + 20] if index == 3 else data, sec=int(T0), usec=index, wirelen=len(data))
    reader = read(buffer.getvalue())
    assert [m.data for m in reader.messages] == [first, third]
    cut = len(packets[3])
    assert reader.problems[0] == Problem(4, None, f"frame 4: snaplen cut {14 + 40 + len(first) + 20} of {cut} bytes")
    assert "a message of" in reader.problems[1].text and reader.problems[1].frame == 4


# -- SCTP -------------------------------------------------------------------------------------
def sctp(src: tuple[str, int], dst: tuple[str, int], *chunks: Packet) -> Packet:
    packet = IP(src=src[0], dst=dst[0]) / SCTP(sport=src[1], dport=dst[1], tag=1)
    for chunk in chunks:
        packet = packet / chunk
    return Ether(**MAC) / packet


def data_chunk(tsn: int, data: bytes, *, ppid: int = 46, begin: bool = True, end: bool = True, stream: int = 0) -> Packet:
    return SCTPChunkData(tsn=tsn, stream_id=stream, proto_id=ppid, beginning=int(begin), ending=int(end), data=data)


def test_sctp_data_chunks():
    client, server = ("10.2.2.1", 3868), ("10.2.2.2", 3868)
    big = big_message(1200)
    parts = [big[:400], big[400:800], big[800:]]
    packets = [
        sctp(client, server, SCTPChunkInit(init_tag=1, a_rwnd=65535, n_out_streams=2, n_in_streams=2, init_tsn=10)),
        sctp(client, server, data_chunk(10, SAMPLE_MAR), data_chunk(11, SAMPLE_MAR, ppid=0, stream=1)),  # bundled
        sctp(server, client, data_chunk(20, parts[2], begin=False)),  # fragments out of order
        sctp(server, client, data_chunk(18, parts[0], end=False)),
        sctp(client, server, data_chunk(10, SAMPLE_MAR)),  # a retransmission
        sctp(server, client, data_chunk(19, parts[1], begin=False, end=False)),
        sctp(server, client, data_chunk(21, b"\x17\x03\x03" + bytes(40), ppid=47)),
        sctp(server, client, data_chunk(22, b"hello", ppid=51)),
    ]
    reader = read(pcap(packets))
    assert [(m.frame, m.transport, m.source, m.data) for m in reader.messages] == [
        (2, "sctp", Endpoint(*client), SAMPLE_MAR),
        (2, "sctp", Endpoint(*client), SAMPLE_MAR),
        (6, "sctp", Endpoint(*server), big),
    ]
    assert reader.streams == {0: ("sctp", Endpoint(*client), Endpoint(*server))}
    assert [p.text for p in reader.problems] == [
        "frame 7: stream 0 (10.2.2.2:3868 -> 10.2.2.1:3868): DTLS, not readable without keys",
        "frame 8: stream 0 (10.2.2.2:3868 -> 10.2.2.1:3868): payload protocol 51, not Diameter; skipped",
    ]


def test_unknown_link_type_is_reported_once():
    packets, expected = conversation(TcpFlow())
    reader = read(pcap([bytes(p) for p in packets], linktype=147))
    assert reader.messages == []
    assert [p.text for p in reader.problems] == [
        "frame 1: link type 147 is not supported; frames of this link type are skipped"
    ]


# -- tshark reads the same messages -----------------------------------------------------------
def tshark_fields(require_program, path) -> list[tuple[int, str, str]]:
    """(frame, command codes, hop-by-hop ids) of every frame tshark dissects Diameter in,
    with out-of-order TCP and SCTP reassembly on."""
    tshark = require_program("tshark")
    command = [
        tshark, "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-o", "sctp.reassembly:TRUE",
        "-Y", "diameter", "-T", "fields", "-e", "frame.number", "-e", "diameter.cmd.code", "-e", "diameter.hopbyhopid",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    return [(int(frame), codes, ids) for frame, codes, ids in (line.split("\t") for line in done.stdout.splitlines())]


def our_fields(path) -> list[tuple[int, str, str]]:
    """The same, from the reader: messages completed by one frame joined as tshark does."""
    ours: dict[int, list[bytes]] = {}
    for message in read_messages(path):
        ours.setdefault(message.frame, []).append(message.data)
    return [
        (
            frame,
            ",".join(str(int.from_bytes(data[5:8], "big")) for data in found),
            ",".join(f"0x{int.from_bytes(data[12:16], 'big'):08x}" for data in found),
        )
        for frame, found in sorted(ours.items())
    ]


def test_tshark_agrees_on_a_multi_message_out_of_order_retransmitted_capture(tmp_path, require_program):
    flow, other = TcpFlow(), TcpFlow(client=("10.1.1.3", 41000))
    first, second, third, fourth = requests()[:4]
    stream = first + second + third
    cut = len(first) + 10
    big = big_message(3000)
    packets = [
        *flow.handshake(), *other.handshake(),
        flow.segment(0, cut, stream[cut:]),  # out of order
        other.segment(0, 0, fourth),
        flow.segment(0, 0, stream[:25]),
        flow.segment(0, 0, stream[:25]),  # retransmitted
        flow.segment(0, 20, stream[20:cut]),  # overlapping, completes three messages
        flow.segment(1, 0, SAMPLE_MAA + SAMPLE_MAA, ack=len(stream)),  # two in one segment
        *(other.segment(1, start, big[start : start + 1000], ack=len(fourth)) for start in (2000, 0, 1000)),
    ]
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap([Ether(**MAC) / packet for packet in packets]))
    theirs = tshark_fields(require_program, path)
    assert len(theirs) == 4
    assert our_fields(path) == theirs
    assert [m.stream for m in read_messages(path)] == [1, 0, 0, 0, 0, 0, 1]  # tshark's tcp.stream


def test_tshark_agrees_on_sctp_and_other_link_layers(tmp_path, require_program):
    client, server = ("10.2.2.1", 3868), ("10.2.2.2", 3868)
    big = big_message(1200)
    sctp_packets = [
        sctp(client, server, SCTPChunkInit(init_tag=1, a_rwnd=65535, n_out_streams=2, n_in_streams=2, init_tsn=10)),
        sctp(client, server, data_chunk(10, SAMPLE_MAR), data_chunk(11, requests()[0], ppid=0, stream=1)),
        sctp(server, client, data_chunk(18, big[:400], end=False)),
        sctp(server, client, data_chunk(19, big[400:800], begin=False, end=False)),
        sctp(server, client, data_chunk(20, big[800:], begin=False)),
        sctp(client, server, data_chunk(10, SAMPLE_MAR)),  # retransmitted
    ]
    tcp6, _ = conversation(TcpFlow(("2001:db8::1", 40000), ("2001:db8::2", 3868)))
    tcp4, _ = conversation(TcpFlow())
    captures = {
        "sctp": pcap(sctp_packets),
        "sll2-ipv6": pcap([CookedLinuxV2(pkttype=0, lladdrtype=1, lladdrlen=6) / p for p in tcp6]),
        "sll-ipv4": pcap([CookedLinux(pkttype=0, lladdrtype=1, lladdrlen=6) / p for p in tcp4]),
        "qinq-ipv6": pcap([Ether(**MAC, type=0x88A8) / Dot1Q(vlan=7, type=0x8100) / Dot1Q(vlan=42) / p for p in tcp6]),
        "raw-ipv4": pcap([bytes(p) for p in tcp4], linktype=101),
    }
    for name, data in captures.items():
        path = tmp_path / f"{name}.pcap"
        path.write_bytes(data)
        theirs = tshark_fields(require_program, path)
        assert len(theirs) >= 2, name
        assert our_fields(path) == theirs, name


def test_a_syn_with_a_new_initial_sequence_number_is_a_new_stream():
    old, new = TcpFlow(), TcpFlow(client_isn=777777)
    packets = [*old.handshake(), old.segment(0, 0, SAMPLE_MAR), *new.handshake(), new.segment(0, 0, SAMPLE_MAR)]
    packets.insert(2, old.handshake()[0])  # a retransmitted SYN is not a new connection
    reader = read(pcap(packets))
    assert [m.stream for m in reader.messages] == [0, 1]
    assert len(reader.streams) == 2 and reader.problems == []


def test_segments_after_a_connection_is_read_to_its_end_start_nothing():
    flow = TcpFlow()
    packets = [
        *flow.handshake(), flow.segment(0, 0, SAMPLE_MAR),
        flow.fin(0, len(SAMPLE_MAR), 0), flow.fin(1, 0, len(SAMPLE_MAR) + 1),
        flow.segment(0, len(SAMPLE_MAR) + 1, b"", ack=1, flags="A"),  # the last ACK
        flow.segment(0, 0, SAMPLE_MAR),  # a late retransmission
    ]
    reader = read(pcap(packets))
    assert [m.frame for m in reader.messages] == [4]
    assert list(reader.streams) == [0] and reader.problems == []


def test_sctp_user_message_ending_inside_a_diameter_message():
    client, server = ("10.2.2.1", 3868), ("10.2.2.2", 3868)
    reader = read(pcap([sctp(client, server, data_chunk(1, SAMPLE_MAR + SAMPLE_MAR[:30]))]))
    assert [m.data for m in reader.messages] == [SAMPLE_MAR]
    assert [p.text for p in reader.problems] == [
        "frame 1: stream 0 (10.2.2.1:3868 -> 10.2.2.2:3868): SCTP stream 0: a user message ends inside a Diameter message (30 bytes); dropped"
    ]


def test_many_tiny_out_of_order_segments_are_bounded():
    flow = TcpFlow()
    data = b"".join(requests())
    tiny = [flow.segment(0, offset, data[offset : offset + 1]) for offset in range(1, len(data))]
    reader = read(pcap(flow.handshake() + tiny[::-1]))  # all held (the first byte is missing), in reverse
    assert any("missing from the capture" in p.text for p in reader.problems)
    # past 1024 held segments the hole is given up: the messages after it are read, the
    # earlier bytes arriving later are in the past (taken as retransmissions)
    assert 1 <= len(reader.messages) < len(requests())
    assert [m.data for m in reader.messages] == requests()[-len(reader.messages) :]


def test_a_datagram_of_too_many_fragments_is_dropped_and_said():
    flow = TcpFlow()
    pieces = fragment(flow.segment(0, 0, big_message(4000)), fragsize=8)
    assert len(pieces) > 256
    reader = read(pcap(flow.handshake() + pieces))
    assert reader.messages == []
    assert any("beyond 64 KiB or 256 pieces; not read" in p.text for p in reader.problems)
