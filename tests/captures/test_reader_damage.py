"""captures.reader on damaged captures: every damage is a Problem with its frame number,
nothing raises but NotACapture, memory stays bounded (example tests and a property test
over truncated and mutated files)."""

from __future__ import annotations

import io
import struct
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captures.pcap import PcapngWriter, PcapWriter
from captures.reader import CaptureReader, NotACapture
from captures.reader.tcp import MAX_HELD
from cx_codec.samples import all_samples

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 3868)
T0 = 1_764_547_200.0


def capture(writer_class=PcapWriter, *, mss: int = 1460, rounds: int = 1) -> tuple[bytes, list[bytes]]:
    buffer = io.BytesIO()
    writer = writer_class(buffer, mss=mss)
    sent = []
    for _ in range(rounds):
        for index, message in enumerate(all_samples().values()):
            data = message.encode()
            src, dst = (CLIENT, SERVER) if message.is_request else (SERVER, CLIENT)
            writer.write_message(data, src=src, dst=dst, timestamp=T0 + index)
            sent.append(data)
    return buffer.getvalue(), sent


def read(data: bytes) -> tuple[list, list[str], CaptureReader]:
    reader = CaptureReader(io.BytesIO(data))
    messages = list(reader)
    return messages, [p.text for p in reader.problems], reader


def record_offsets(data: bytes) -> list[int]:
    """Where each pcap record header starts."""
    offsets, at = [], 24
    while at + 16 <= len(data):
        offsets.append(at)
        at += 16 + struct.unpack_from("=I", data, at + 8)[0]
    return offsets


def test_truncated_inside_the_file_header():
    data, _ = capture()
    messages, problems, _ = read(data[:10])
    assert messages == []
    assert problems == ["the file ends inside its pcap file header (10 of 24 bytes): no frames"]


def test_truncated_inside_a_record_header():
    data, sent = capture()
    offsets = record_offsets(data)
    messages, problems, _ = read(data[: offsets[6] + 5])
    assert [m.data for m in messages] == sent[:3]  # frames 4, 5, 6
    assert problems == ["frame 7: the file ends inside its record header (5 of 16 bytes; truncated capture)"]


def test_truncated_inside_a_record():
    data, sent = capture()
    offsets = record_offsets(data)
    messages, problems, reader = read(data[: offsets[6] + 16 + 100])
    assert [m.data for m in messages] == sent[:3]
    included = struct.unpack_from("=I", data, offsets[6] + 8)[0]
    assert problems[0] == f"frame 7: the file ends inside it (100 of {included} bytes; truncated capture)"
    assert problems[1] == f"frame 7: snaplen cut 100 of {included} bytes"
    assert problems[2].startswith("frame 7: stream 0 (10.0.0.2:3868 -> 10.0.0.1:40000): ")
    assert problems[2].endswith(f"bytes missing from the capture: a message of {len(sent[3])} bytes lost")
    assert reader.problems[0].frame == 7


def test_implausible_record_length_is_skipped_to_the_next_plausible_record():
    data, sent = capture()
    offsets = record_offsets(data)
    broken = bytearray(data)
    struct.pack_into("=I", broken, offsets[5] + 8, 0x7FFFFFFF)  # frame 6, the third message
    messages, problems, reader = read(bytes(broken))
    assert [m.data for m in messages] == sent[:2] + sent[3:]
    # frame numbers kept; frame 8's request, held until frame 9's ACK gives up the hole before
    # it, is still the message of frame 8
    assert [m.frame for m in messages] == [4, 5, *range(7, 4 + len(sent))]
    skipped = offsets[6] - offsets[5]
    assert problems == [
        f"frame 6: record length 2147483647 is not plausible (over 1048576); {skipped} bytes skipped to the next plausible record",
        f"frame 9: stream 0 (10.0.0.1:40000 -> 10.0.0.2:3868): {len(sent[2])} bytes missing from the capture; "
        "resynchronising on the next message header",
    ]


def test_implausible_record_length_with_nothing_after_it():
    data, sent = capture()
    offsets = record_offsets(data)
    broken = bytearray(data[: offsets[5] + 16 + 40])
    struct.pack_into("=I", broken, offsets[5] + 8, 0x7FFFFFFF)
    messages, problems, _ = read(bytes(broken))
    assert [m.data for m in messages] == sent[:2]
    assert problems == [
        "frame 6: record length 2147483647 is not plausible (over 1048576); "
        "no plausible record follows: the rest of the file is not readable"
    ]


def test_zero_length_record():
    data, sent = capture()
    offsets = record_offsets(data)
    empty = struct.pack("=IIII", int(T0), 0, 0, 0)
    messages, problems, _ = read(data[: offsets[4]] + empty + data[offsets[4] :])
    assert [m.data for m in messages] == sent
    assert problems == ["frame 5: an empty record (0 bytes captured)"]


def _pcapng_blocks(data: bytes) -> list[int]:
    offsets, at = [], 0
    while at + 8 <= len(data):
        offsets.append(at)
        at += struct.unpack_from("=I", data, at + 4)[0]
    return offsets


@pytest.mark.parametrize("length", [7, 13, 0, 0x7FFFFFF0])
def test_pcapng_impossible_block_length(length):
    data, sent = capture(PcapngWriter)
    blocks = _pcapng_blocks(data)  # SHB, IDB, then one EPB per frame
    broken = bytearray(data)
    struct.pack_into("=I", broken, blocks[2 + 5] + 4, length)  # frame 6, the third message
    messages, problems, _ = read(bytes(broken))
    assert [m.data for m in messages] == sent[:2] + sent[3:]
    assert problems[0] == (
        f"frame 6: its block (type 0x00000006) has an impossible length {length} "
        f"(needs 12 or more, a multiple of 4); {blocks[2 + 6] - blocks[2 + 5]} bytes skipped to the next plausible block"
    )
    assert problems[1].startswith("frame 9: stream 0 (10.0.0.1:40000 -> 10.0.0.2:3868): ")
    assert len(problems) == 2


def test_pcapng_block_lengths_that_disagree():
    data, sent = capture(PcapngWriter)
    blocks = _pcapng_blocks(data)
    broken = bytearray(data)
    end = blocks[2 + 5 + 1]
    struct.pack_into("=I", broken, end - 4, 12345)
    messages, problems, _ = read(bytes(broken))
    assert [m.data for m in messages] == sent[:2] + sent[3:]
    assert [m.frame for m in messages][:5] == [4, 5, 7, 8, 9]
    length = end - blocks[2 + 5]
    assert problems[0] == (
        f"frame 6: its block (type 0x00000006) says length {length} at its start and 12345 at its end (corrupt block); "
        f"{length} bytes skipped to the next plausible block"
    )


def test_garbage_between_pcapng_blocks_is_skipped():
    data, sent = capture(PcapngWriter)
    blocks = _pcapng_blocks(data)
    garbage = bytes(range(256)) * 4
    messages, problems, _ = read(data[: blocks[2 + 5]] + garbage + data[blocks[2 + 5] :])
    assert [m.data for m in messages] == sent
    assert problems == [
        "a block after frame 5 (type 0x03020100) has an impossible length 117835012 "
        "(needs 12 or more, a multiple of 4); 1024 bytes skipped to the next plausible block"
    ]


def test_pcapng_truncated_inside_a_block_and_an_undescribed_interface():
    data, sent = capture(PcapngWriter)
    blocks = _pcapng_blocks(data)
    broken = bytearray(data[: blocks[2 + 7] + 20])
    struct.pack_into("=I", broken, blocks[2 + 4] + 8, 3)  # frame 5 on interface 3
    messages, problems, _ = read(bytes(broken))
    assert problems[0] == "frame 5: interface 3 was not described (the section has 1); skipped"
    assert problems[1] == f"frame 8: the file ends inside its block (20 of {blocks[2 + 8] - blocks[2 + 7]} bytes; truncated capture)"
    assert [m.data for m in messages] == [sent[0], sent[2], sent[3]]  # the message of frame 5 is lost
    assert any("missing from the capture" in text for text in problems)


def test_not_a_capture_names_its_first_bytes():
    with pytest.raises(NotACapture, match=r"<file> is not a pcap or pcapng file \(starts with 3c3f786d\)"):
        CaptureReader(io.BytesIO(b"<?xml version='1.0'?>"))


# -- memory ------------------------------------------------------------------------------------
def _segments_capture(payloads: list[tuple[int, bytes]]) -> bytes:
    """A raw-IP pcap of client->server TCP segments (offset, payload) after a SYN."""
    out = bytearray(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))

    def packet(seq: int, flags: int, payload: bytes) -> None:
        tcp = struct.pack("!HHIIBBHHH", 40000, 3868, seq & 0xFFFFFFFF, 0, 5 << 4, flags, 65535, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0, 64, 6, 0, b"\n\0\0\1", b"\n\0\0\2")
        frame = ip + tcp + payload
        out.extend(struct.pack("=IIII", int(T0), 0, len(frame), len(frame)) + frame)

    packet(0, 0x02, b"")
    for offset, payload in payloads:
        packet(1 + offset, 0x18, payload)
    return bytes(out)


def _peak(data: bytes) -> tuple[int, CaptureReader, int]:
    tracemalloc.start()
    try:
        reader = CaptureReader(io.BytesIO(data))
        count = sum(1 for _ in reader)
        return tracemalloc.get_traced_memory()[1], reader, count
    finally:
        tracemalloc.stop()


def test_garbage_stream_keeps_memory_bounded():
    chunk = bytes((index * 37 + 11) & 0xFF for index in range(60000)).replace(b"\x01", b"\x02")
    valid = next(iter(all_samples().values())).encode()
    segments = [(0, b"\x01\x00\x00\x14" + bytes(16))]  # a valid empty header, then garbage
    offset = 20
    for _ in range(120):  # some 7 MB of garbage
        segments.append((offset, chunk))
        offset += len(chunk)
    segments.append((offset, valid))
    data = _segments_capture(segments)
    peak, reader, count = _peak(data)
    assert count == 2  # the empty header, and the message after the garbage
    assert peak < 4 << 20, peak
    assert any("resynchronised" in p.text for p in reader.problems)


def test_out_of_order_flood_keeps_memory_bounded():
    chunk = bytes(50000)
    segments = [(100 + index * 50000, chunk) for index in range(200)]  # 10 MB, none at the start
    peak, reader, _ = _peak(_segments_capture(segments))
    assert peak < MAX_HELD + (4 << 20), peak
    assert any("missing from the capture" in p.text for p in reader.problems)


def test_problems_are_capped():
    data = _segments_capture([])
    header, syn = data[:24], data[24:]
    flood = header + struct.pack("=IIII", 0, 0, 0, 0) * 1500 + syn
    reader = CaptureReader(io.BytesIO(flood), max_problems=1000)
    assert list(reader) == []
    assert len(reader.problems) == 1000 and reader.problems_omitted == 500


# -- property: mutated and truncated captures ----------------------------------------------------
def mixed_capture() -> bytes:
    """Ethernet with VLAN tags: IPv4 fragments of a TCP segment, IPv6 with extension
    headers, SCTP with bundled and fragmented DATA chunks (scapy builds it)."""
    from scapy.layers.inet import IP, TCP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
    from scapy.layers.l2 import Dot1Q, Ether
    from scapy.layers.sctp import SCTP, SCTPChunkData
    from scapy.utils import PcapWriter as ScapyWriter

    samples = [message.encode() for message in all_samples().values()]
    ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / Dot1Q(vlan=5)
    packets = [ether / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=3868, flags="S", seq=99)]
    packets += [ether / p for p in fragment(
        IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=40000, dport=3868, flags="PA", seq=100) / (samples[0] + samples[2]),
        fragsize=128)]
    packets.append(ether / IPv6(src="::1", dst="::2") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
                   / TCP(sport=40001, dport=3868, flags="PA", seq=5) / samples[4])
    sctp = IP(src="10.0.0.3", dst="10.0.0.4") / SCTP(sport=3868, dport=3868, tag=1)
    packets.append(ether / sctp / SCTPChunkData(tsn=1, proto_id=46, beginning=1, ending=1, data=samples[6])
                   / SCTPChunkData(tsn=2, proto_id=0, beginning=1, ending=1, data=samples[8]))
    packets.append(ether / sctp / SCTPChunkData(tsn=3, proto_id=46, beginning=1, ending=0, data=samples[10][:100]))
    packets.append(ether / sctp / SCTPChunkData(tsn=4, proto_id=46, beginning=0, ending=1, data=samples[10][100:]))
    buffer = io.BytesIO()
    writer = ScapyWriter(buffer, linktype=1, sync=True)
    for index, packet in enumerate(packets):
        packet.time = T0 + index
        writer.write(packet)
    return buffer.getvalue()


MIXED = mixed_capture()
BASES = [capture(PcapWriter, mss=200)[0], capture(PcapngWriter, mss=200)[0], MIXED]


def test_the_mixed_capture_reads_whole():
    messages, problems, _ = read(MIXED)
    assert problems == []
    samples = [message.encode() for message in all_samples().values()]
    assert [m.data for m in messages] == [samples[0], samples[2], samples[4], samples[6], samples[8], samples[10]]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(BASES)))
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.sampled_from(["flip", "insert", "delete", "word"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip":
            data[at] ^= draw(st.integers(1, 255))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 300))]
        else:  # a length or a sequence number replaced by an extreme value
            data[at : at + 4] = draw(st.sampled_from([b"\0\0\0\0", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff", b"\x00\x10\x00\x00"]))
    cut = draw(st.integers(0, len(data)))
    return bytes(data[:cut]) if draw(st.booleans()) else bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged())
def test_damaged_captures_never_raise(data):
    try:
        reader = CaptureReader(io.BytesIO(data))
    except NotACapture:
        assert data[:4] not in (b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a")
        return
    tracemalloc.start()
    try:
        messages = list(reader)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20
    for message in messages:
        assert message.data[0] == 1 and int.from_bytes(message.data[1:4], "big") == len(message.data)
        assert message.frame >= 1
    assert all(p.frame is None or p.frame >= 1 for p in reader.problems)


def test_out_of_order_data_of_many_streams_keeps_memory_bounded(monkeypatch):
    """Each stream under its own bound, all of them together over the capture's: the stream
    holding most gives up its holes, and its held message is still read."""
    from captures.reader import tcp

    monkeypatch.setattr(tcp, "MAX_HELD_TOTAL", 64 << 10)
    message = next(iter(all_samples().values())).encode()
    out = bytearray(struct.pack("=IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 101))
    for port in range(40000, 40040):  # 40 streams, each holding 4 KB after a hole
        for seq, flags, payload in ((0, 0x02, b""), (1 + 100, 0x18, message + bytes(4000))):
            tcp_header = struct.pack("!HHIIBBHHH", port, 3868, seq, 0, 5 << 4, flags, 65535, 0, 0)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0, 64, 6, 0, b"\n\0\0\1", b"\n\0\0\2")
            frame = ip + tcp_header + payload
            out.extend(struct.pack("=IIII", int(T0), 0, len(frame), len(frame)) + frame)
    reader = CaptureReader(io.BytesIO(bytes(out)))
    most, read_back = 0, []
    for captured in reader:
        most = max(most, reader._held_total)
        read_back.append(captured.data)
    assert most <= 64 << 10
    assert read_back == [message] * 40
    given_up = [p for p in reader.problems if "beyond 65536 bytes" in p.text]
    assert len(given_up) >= 40 - (64 << 10) // (len(message) + 4000) - 1
    streams = {p.stream for p in reader.problems if "missing from the capture" in p.text}
    assert len(streams) == 40
