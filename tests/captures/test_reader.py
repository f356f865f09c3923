"""captures.reader: files written by the project's own writer and recorder read back."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from twisted.internet.address import IPv4Address, IPv6Address

from captures.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, PcapngWriter, PcapWriter
from captures.reader import (
    CapturedMessage,
    CaptureReader,
    Endpoint,
    NotACapture,
    Problem,
    read_messages,
)
from captures.recorder import Recorder
from cx_codec.samples import (
    SAMPLE_MAA,
    SAMPLE_MAR,
    all_samples,
    capabilities_exchange_answer,
    capabilities_exchange_request,
)

CLIENT = ("10.0.0.1", 40000)
SERVER = ("10.0.0.2", 3868)
CLIENT6 = ("2001:db8::1", 40000)
SERVER6 = ("2001:db8::2", 3868)
T0 = 1_764_547_200.0


def exchange() -> list[bytes]:
    return [message.encode() for message in all_samples().values()]


def write(writer_class, *, linktype=LINKTYPE_ETHERNET, ends=(CLIENT, SERVER), mss=1460, comment=None) -> tuple[bytes, list]:
    """A capture of every sample on one connection; the expected (data, src, dst, time)."""
    buffer = io.BytesIO()
    writer = writer_class(buffer, linktype=linktype, mss=mss)
    expected = []
    for index, message in enumerate(all_samples().values()):
        data = message.encode()
        src, dst = ends if message.is_request else ends[::-1]
        writer.write_message(data, src=src, dst=dst, timestamp=T0 + index * 0.5, comment=comment)
        expected.append((data, src, dst, T0 + index * 0.5))
    writer.close_connection(*ends, timestamp=T0 + 100)
    return buffer.getvalue(), expected


@pytest.mark.parametrize("writer_class", [PcapWriter, PcapngWriter])
@pytest.mark.parametrize("linktype", [LINKTYPE_ETHERNET, LINKTYPE_RAW])
@pytest.mark.parametrize("ends", [(CLIENT, SERVER), (CLIENT6, SERVER6)], ids=["ipv4", "ipv6"])
def test_every_message_written_by_the_writer_is_read_back(writer_class, linktype, ends):
    capture, expected = write(writer_class, linktype=linktype, ends=ends)
    reader = CaptureReader(io.BytesIO(capture))
    messages = list(reader)
    assert [m.data for m in messages] == [data for data, *_ in expected]
    assert [(m.source, m.destination) for m in messages] == [
        (Endpoint(*src), Endpoint(*dst)) for _, src, dst, _ in expected
    ]
    assert [m.time for m in messages] == pytest.approx([when for *_, when in expected])
    assert {m.stream for m in messages} == {0} and {m.transport for m in messages} == {"tcp"}
    assert reader.streams == {0: ("tcp", Endpoint(*ends[0]), Endpoint(*ends[1]))}
    assert reader.problems == []
    # three handshake segments, then one segment per message (all under the MSS)
    assert [m.frame for m in messages] == list(range(4, 4 + len(expected)))


def test_a_message_over_many_segments_is_completed_by_its_last_one():
    capture, expected = write(PcapngWriter, mss=64, comment="note")
    messages = read_messages(io.BytesIO(capture))
    assert [m.data for m in messages] == [data for data, *_ in expected]
    first = messages[0]
    segments = -(-len(expected[0][0]) // 64)
    assert first.frame == 3 + segments
    # the writer puts the comment on the first segment of each message, not on the one completing it
    assert all(m.comment is None for m in messages if len(m.data) > 64)


def test_comment_of_the_completing_frame():
    capture, expected = write(PcapngWriter, comment="hello")
    messages = read_messages(io.BytesIO(capture))
    # the comment goes on the first packet written: the SYN for the first message
    assert messages[0].comment is None
    assert [m.comment for m in messages[1:]] == ["hello"] * (len(messages) - 1)  # one segment each
    assert isinstance(messages[0], CapturedMessage)


def test_path_and_reiteration(tmp_path):
    capture, expected = write(PcapWriter)
    path = tmp_path / "cx.pcap"
    path.write_bytes(capture)
    reader = CaptureReader(path)
    assert len(list(reader)) == len(expected)
    assert len(list(reader)) == len(expected)  # iterating again reads the file again
    reader = CaptureReader(str(path))
    assert [m.data for m in reader] == [data for data, *_ in expected]


def test_nanosecond_pcap_and_big_endian(tmp_path):
    capture, expected = write(PcapWriter)
    # rewrite the file header and records as big-endian with nanosecond timestamps
    import struct

    out = bytearray(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
    offset = 24
    while offset < len(capture):
        seconds, micros, included, original = struct.unpack_from("=IIII", capture, offset)
        out += struct.pack(">IIII", seconds, micros * 1000 + 7, included, original)
        out += capture[offset + 16 : offset + 16 + included]
        offset += 16 + included
    messages = read_messages(io.BytesIO(bytes(out)))
    assert [m.data for m in messages] == [data for data, *_ in expected]
    assert messages[1].time == pytest.approx(expected[1][3] + 7e-9)


class _Transport:
    def __init__(self, local, remote) -> None:
        kind = IPv6Address if ":" in local[0] else IPv4Address
        self.local, self.remote = kind("TCP", *local), kind("TCP", *remote)

    def getHost(self):
        return self.local

    def getPeer(self):
        return self.remote


class _Connection:
    def __init__(self, local, remote, role) -> None:
        self.transport = _Transport(local, remote)
        self.role = role
        self.tap = None


@pytest.mark.parametrize("name", ["cx.pcap", "cx.pcapng"])
def test_recorder_files_are_read_back(tmp_path, name):
    now = [T0]
    recorder = Recorder(tmp_path / name, clock=lambda: now[0], keep_key_material=True)
    recorder.open()
    accepted = _Connection(("127.0.0.1", 3868), ("127.0.0.2", 41000), "R")
    opened = _Connection(("::1", 45000), ("::1", 3869), "I")
    cer, cea = capabilities_exchange_request().encode(), capabilities_exchange_answer().encode()
    recorder.attach(accepted)
    recorder.attach(opened)
    recorder.received(accepted, cer[:30])
    recorder.received(accepted, cer[30:] + SAMPLE_MAR)
    now[0] += 1
    recorder.sent(accepted, cea)
    recorder.sent(opened, SAMPLE_MAR)
    recorder.received(opened, SAMPLE_MAA)
    recorder.sent(accepted, SAMPLE_MAA)
    recorder.lost(accepted)
    recorder.lost(opened)
    recorder.drain()
    recorder.close()
    reader = CaptureReader(tmp_path / name)
    messages = list(reader)
    assert reader.problems == []
    peer, node, node6, hss = (
        Endpoint("127.0.0.2", 41000), Endpoint("127.0.0.1", 3868), Endpoint("::1", 45000), Endpoint("::1", 3869)
    )
    assert [(m.stream, m.source, m.destination, m.data) for m in messages] == [
        (0, peer, node, cer),
        (0, peer, node, SAMPLE_MAR),
        (0, node, peer, cea),
        (1, node6, hss, SAMPLE_MAR),
        (1, hss, node6, SAMPLE_MAA),
        (0, node, peer, SAMPLE_MAA),
    ]
    assert reader.streams == {0: ("tcp", peer, node), 1: ("tcp", node6, hss)}
    assert messages[2].time == T0 + 1


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"/* not a capture */", "is not a pcap or pcapng file (starts with 2f2a206e)"),
        (b"", "is empty: not a pcap or pcapng file"),
    ],
)
def test_not_a_capture_is_the_one_error(tmp_path, content, error):
    path = tmp_path / "x.pcap"
    path.write_bytes(content)
    with pytest.raises(NotACapture, match=re.escape(error)) as raised:
        CaptureReader(path)
    assert str(raised.value).startswith(str(path))
    assert isinstance(raised.value, ValueError)


def test_problem_reads_as_its_text():
    assert str(Problem(17, None, "frame 17: snaplen cut 1200 of 1514 bytes")) == "frame 17: snaplen cut 1200 of 1514 bytes"
    assert str(Endpoint("::1", 3868)) == "[::1]:3868" and str(Endpoint("127.0.0.1", 3868)) == "127.0.0.1:3868"


SAMPLES = sorted((Path(__file__).parents[2] / "captures" / "samples").glob("*.pcapng"))


def test_the_sample_captures_exist():
    assert len(SAMPLES) >= 4, SAMPLES  # the parametrised test below must not run on nothing


@pytest.mark.parametrize("path", SAMPLES, ids=[path.stem for path in SAMPLES])
def test_the_recorders_sample_captures_read_as_tshark_reads_them(path, require_program):
    tshark = require_program("tshark")
    reader = CaptureReader(path)
    messages = list(reader)
    assert messages and reader.problems == []
    ports = sorted({server.port for _, _, server in reader.streams.values()})
    decode_as = [option for port in ports for option in ("-d", f"tcp.port=={port},diameter")]
    done = subprocess.run(
        [tshark, "-r", str(path), *decode_as, "-Y", "diameter", "-T", "fields",
         "-e", "frame.number", "-e", "diameter.cmd.code", "-e", "diameter.hopbyhopid", "-e", "tcp.stream"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    theirs = [tuple(line.split("\t")) for line in done.stdout.splitlines()]
    ours = [
        (str(m.frame), str(int.from_bytes(m.data[5:8], "big")), f"0x{int.from_bytes(m.data[12:16], 'big'):08x}", str(m.stream))
        for m in messages
    ]
    assert ours == theirs
