"""captures.pcap: the pcap writer, read back with scapy (rdpcap)."""

from __future__ import annotations

import io
import struct
from datetime import UTC, datetime

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.utils import rdpcap

from captures.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_RAW,
    PcapWriter,
    internet_checksum,
)
from cx_codec.samples import SAMPLE_MAA, SAMPLE_MAR, all_samples

CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 3868)
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01


def _write(path, exchange, **options):
    with PcapWriter(path, **options) as pcap:
        for index, (data, src, dst) in enumerate(exchange):
            pcap.write_message(data, src=src, dst=dst, timestamp=1714564800 + index * 0.25)
    return rdpcap(str(path))


def _payload(packet) -> bytes:
    return bytes(packet[TCP].payload)


def test_global_header(tmp_path):
    path = tmp_path / "empty.pcap"
    PcapWriter(path).close()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("=IHHiIII", path.read_bytes())
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, LINKTYPE_ETHERNET)
    assert snaplen >= 65535


def test_mar_maa_read_back_with_handshake_and_payloads(tmp_path):
    packets = _write(tmp_path / "cx.pcap", [(SAMPLE_MAR, CLIENT, SERVER), (SAMPLE_MAA, SERVER, CLIENT)])
    assert len(packets) == 5
    flags = [int(p[TCP].flags) for p in packets]
    assert flags == [SYN, SYN | ACK, ACK, PSH | ACK, PSH | ACK]
    assert all(p.haslayer(Ether) and p[Ether].type == 0x0800 for p in packets)
    mar, maa = packets[3], packets[4]
    assert (mar[IP].src, mar[TCP].sport, mar[IP].dst, mar[TCP].dport) == ("10.0.0.1", 40000, "10.0.0.2", 3868)
    assert (maa[IP].src, maa[TCP].sport) == ("10.0.0.2", 3868)
    assert _payload(mar) == SAMPLE_MAR
    assert _payload(maa) == SAMPLE_MAA
    assert mar[IP].len == 20 + 20 + len(SAMPLE_MAR)
    assert mar[IP].ttl == 64 and mar[IP].flags.DF


def test_sequence_and_acknowledgement_numbers_make_a_clean_stream(tmp_path):
    samples = list(all_samples().values())
    exchange = [(m.encode(), CLIENT, SERVER) if m.is_request else (m.encode(), SERVER, CLIENT) for m in samples]
    packets = _write(tmp_path / "all.pcap", exchange)
    syn, syn_ack, ack = packets[:3]
    assert syn_ack[TCP].ack == syn[TCP].seq + 1
    assert ack[TCP].seq == syn[TCP].seq + 1 and ack[TCP].ack == syn_ack[TCP].seq + 1
    next_seq = {CLIENT: syn[TCP].seq + 1, SERVER: syn_ack[TCP].seq + 1}
    streams = {CLIENT: b"", SERVER: b""}
    for packet in packets[3:]:
        src = (packet[IP].src, packet[TCP].sport)
        dst = SERVER if src == CLIENT else CLIENT
        assert packet[TCP].seq == next_seq[src]
        assert packet[TCP].ack == next_seq[dst]  # acknowledges everything the peer sent
        next_seq[src] += len(_payload(packet))
        streams[src] += _payload(packet)
    assert streams[CLIENT] == b"".join(data for data, src, _ in exchange if src == CLIENT)
    assert streams[SERVER] == b"".join(data for data, src, _ in exchange if src == SERVER)


def _checksums_ok(packet) -> bool:
    ip = packet[IP]
    rebuilt = ip.copy()
    del rebuilt.chksum
    del rebuilt[TCP].chksum
    rebuilt = IP(bytes(rebuilt))
    return rebuilt.chksum == ip.chksum and rebuilt[TCP].chksum == ip[TCP].chksum


@pytest.mark.parametrize("size", [0, 1, 3, 359, 1460, 1461, 4001])
def test_ip_and_tcp_checksums_match_scapys(tmp_path, size):
    data = bytes((index * 7 + 13) & 0xFF for index in range(size))
    packets = _write(tmp_path / "c.pcap", [(data, CLIENT, SERVER), (SAMPLE_MAA, SERVER, CLIENT)])
    assert all(_checksums_ok(p) for p in packets)


def test_large_message_is_segmented_at_mss(tmp_path):
    data = SAMPLE_MAA * 10  # 4360 bytes
    packets = _write(tmp_path / "big.pcap", [(data, CLIENT, SERVER)], mss=1000)
    segments = packets[3:]
    assert [len(_payload(p)) for p in segments] == [1000, 1000, 1000, 1000, 360]
    assert b"".join(_payload(p) for p in segments) == data
    assert all(int(p[TCP].flags) == PSH | ACK for p in segments)


def test_raw_ip_linktype(tmp_path):
    path = tmp_path / "raw.pcap"
    packets = _write(path, [(SAMPLE_MAR, CLIENT, SERVER)], linktype=LINKTYPE_RAW)
    assert struct.unpack("=I", path.read_bytes()[20:24])[0] == LINKTYPE_RAW
    assert not packets[3].haslayer(Ether)
    assert _payload(packets[3]) == SAMPLE_MAR
    assert _checksums_ok(packets[3])


def test_timestamps_float_and_datetime(tmp_path):
    path = tmp_path / "t.pcap"
    with PcapWriter(path, handshake=False) as pcap:
        pcap.write_message(SAMPLE_MAR, src=CLIENT, dst=SERVER, timestamp=1714564800.123456)
        when = datetime(2024, 5, 1, 12, 0, 1, 500000, tzinfo=UTC)
        pcap.write_message(SAMPLE_MAA, src=SERVER, dst=CLIENT, timestamp=when)
    packets = rdpcap(str(path))
    assert len(packets) == 2  # no handshake
    assert float(packets[0].time) == pytest.approx(1714564800.123456, abs=1e-6)
    assert float(packets[1].time) == pytest.approx(when.timestamp(), abs=1e-6)


def test_file_object_is_left_open_and_output_is_deterministic():
    outputs = []
    for _ in range(2):
        buffer = io.BytesIO()
        with PcapWriter(buffer) as pcap:
            written = pcap.write_message(SAMPLE_MAR, src=CLIENT, dst=SERVER, timestamp=1.5)
            assert written == 4 and pcap.packets == 4
        assert not buffer.closed
        outputs.append(buffer.getvalue())
    assert outputs[0] == outputs[1]


def test_close_connection_sends_fin_and_a_new_message_reopens(tmp_path):
    path = tmp_path / "fin.pcap"
    with PcapWriter(path) as pcap:
        pcap.write_message(SAMPLE_MAR, src=CLIENT, dst=SERVER, timestamp=1.0)
        assert pcap.close_connection(CLIENT, SERVER, timestamp=2.0) == 3
        pcap.write_message(SAMPLE_MAR, src=CLIENT, dst=SERVER, timestamp=3.0)
    flags = [int(p[TCP].flags) for p in rdpcap(str(path))]
    assert flags == [SYN, SYN | ACK, ACK, PSH | ACK, FIN | ACK, FIN | ACK, ACK, SYN, SYN | ACK, ACK, PSH | ACK]


def test_scapy_dissects_the_diameter_inside(tmp_path):
    from scapy.contrib.diameter import DiamG

    packets = _write(tmp_path / "d.pcap", [(SAMPLE_MAR, CLIENT, SERVER), (SAMPLE_MAA, SERVER, CLIENT)])
    assert [p[DiamG].drCode for p in packets[3:]] == [303, 303]
    assert [int(p[DiamG].drFlags) for p in packets[3:]] == [0xC0, 0x40]


@pytest.mark.parametrize(
    ("src", "message"),
    [(("2001:db8::1", 3868), "one family"), (("10.0.0.1", 70000), "0..65535"), (("not-an-ip", 1), "not an IPv4 or IPv6")],
)
def test_bad_endpoints_are_refused(src, message):
    with pytest.raises(ValueError, match=message):
        PcapWriter(io.BytesIO()).write_message(b"x", src=src, dst=SERVER)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="linktype"):
        PcapWriter(io.BytesIO(), linktype=228)
    with pytest.raises(ValueError, match="mss"):
        PcapWriter(io.BytesIO(), mss=0)


def test_internet_checksum_rfc1071_example():
    # RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (folded); checksum is ~ddf2
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == bytes.fromhex("220d")
    assert internet_checksum(b"\x45") == bytes.fromhex("baff")  # odd length pads a zero
