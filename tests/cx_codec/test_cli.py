"""`cxgw decode`: hex, raw and capture input, samples, and the errors users see."""

from __future__ import annotations

import io
import sys

import pytest

from captures.pcap import PcapngWriter, PcapWriter
from cx_codec.samples import SAMPLE_MAA, SAMPLE_MAR, all_samples
from gateway.cli import main

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 3868)
T0 = 1_714_564_800.25  # 2024-05-01T12:00:00.25Z


class _Stdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def decode(capsys, *args: str, stdin: bytes | None = None, monkeypatch=None) -> tuple[int, str, str]:
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", _Stdin(stdin))
    status = main(["decode", *args])
    out, err = capsys.readouterr()
    return status, out, err


def write_capture(path, writer_class=PcapWriter) -> bytes:
    with writer_class(path) as writer:
        writer.write_message(SAMPLE_MAR, src=CLIENT, dst=SERVER, timestamp=T0, comment="first")
        writer.write_message(SAMPLE_MAA, src=SERVER, dst=CLIENT, timestamp=T0 + 1)
    return path.read_bytes()


# -- captures -----------------------------------------------------------------------------------
@pytest.mark.parametrize("writer_class", [PcapWriter, PcapngWriter])
def test_a_capture_prints_every_message_with_frame_time_stream_and_direction(capsys, tmp_path, writer_class):
    path = tmp_path / "cx.cap"
    write_capture(path, writer_class)
    status, out, err = decode(capsys, str(path))
    assert status == 0 and err == ""
    blocks = out.split("\n\n")
    assert blocks[0].splitlines()[0] == "frame 4  2024-05-01T12:00:00.250000Z  stream 0 (tcp)  10.0.0.1:40000 -> 10.0.0.2:3868"
    assert blocks[0].splitlines()[1].startswith("Multimedia-Auth-Request (command 303")
    assert blocks[0].splitlines()[-1] == "verdict: valid"
    assert blocks[1].splitlines()[0] == "frame 5  2024-05-01T12:00:01.250000Z  stream 0 (tcp)  10.0.0.2:3868 -> 10.0.0.1:40000"
    assert blocks[1].splitlines()[1].startswith("Multimedia-Auth-Answer (command 303")
    assert blocks[2] == f"{path}: 2 Diameter messages (0 invalid) in 1 streams; 0 problems\n"


def test_a_damaged_capture_lists_its_problems_and_fails(capsys, tmp_path):
    path = tmp_path / "cut.pcap"
    data = write_capture(path)
    path.write_bytes(data[:-30])
    status, out, _ = decode(capsys, str(path))
    assert status == 1
    assert out.count("verdict: valid") == 1
    summary = out.split("\n\n")[-1].splitlines()
    assert summary[0] == f"{path}: 1 Diameter messages (0 invalid) in 1 streams; 3 problems"
    assert summary[1].startswith("  frame 5: the file ends inside it (")
    assert summary[2].startswith("  frame 5: snaplen cut ")
    assert summary[3].startswith("  frame 5: stream 0 (10.0.0.2:3868 -> 10.0.0.1:40000): ")


def test_a_capture_on_standard_input(capsys, tmp_path, monkeypatch):
    data = write_capture(tmp_path / "cx.pcap")
    status, out, _ = decode(capsys, "-", stdin=data, monkeypatch=monkeypatch)
    assert status == 0
    assert out.splitlines()[0].startswith("frame 4  2024-05-01T12:00:00.250000Z")
    assert out.splitlines()[-1] == "standard input: 2 Diameter messages (0 invalid) in 1 streams; 0 problems"


# -- hex and raw ---------------------------------------------------------------------------------
def test_hex_with_prefixes_colons_and_newlines(capsys, tmp_path):
    text = "0x" + SAMPLE_MAR.hex() + "\n" + ":".join(f"{byte:02X}" for byte in SAMPLE_MAA) + "\n"
    path = tmp_path / "pair.hex"
    path.write_text(text)
    status, out, err = decode(capsys, str(path))
    assert status == 0 and err == ""
    assert out.count("verdict: valid") == 2


def test_a_typo_in_hex_names_its_offset(capsys, tmp_path):
    path = tmp_path / "typo.hex"
    text = SAMPLE_MAR.hex()
    path.write_text(text[:41] + "g" + text[42:])
    status, out, err = decode(capsys, str(path))
    assert status == 2 and out == ""
    assert err == (
        f"cxgw decode: {path}: not hexadecimal at offset 41: 'g' "
        "(read as hex because every byte of it is printable text)\n"
    )


def test_an_odd_number_of_hex_digits(capsys, monkeypatch):
    status, _, err = decode(capsys, "-", stdin=b"01 00 00 1", monkeypatch=monkeypatch)
    assert status == 2
    assert err == ("cxgw decode: standard input: an odd number of hex digits (7): the last byte is cut in half "
                   "(read as hex because every byte of it is printable text)\n")


def test_raw_bytes_and_forced_hex(capsys, tmp_path):
    path = tmp_path / "mar.bin"
    path.write_bytes(SAMPLE_MAR)
    status, out, _ = decode(capsys, str(path))
    assert status == 0 and out.splitlines()[-1] == "verdict: valid"
    status, out, err = decode(capsys, "--hex", str(path))
    assert status == 2
    assert err == f"cxgw decode: {path}: not hexadecimal at offset 0: '\\x01'\n"


def test_an_invalid_message_fails(capsys, tmp_path):
    path = tmp_path / "bad.hex"
    path.write_text(SAMPLE_MAR[:-4].hex())  # a message shorter than its length says
    status, out, _ = decode(capsys, str(path))
    assert status == 1 and "verdict: invalid" in out


# -- samples and empty input -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["MAR", "mar", "Mar", "mar-RESYNC", "ERROR-3002"])
def test_sample_names_are_case_insensitive(capsys, name):
    status, out, _ = decode(capsys, "--sample", name)
    assert status == 0 and out.splitlines()[-1] == "verdict: valid"


def test_unknown_sample(capsys):
    status, out, err = decode(capsys, "--sample", "MARR")
    assert status == 2 and out == ""
    assert err == f"cxgw decode: unknown sample 'MARR'; known: {', '.join(all_samples())}\n"


def test_sample_list(capsys):
    status, out, _ = decode(capsys, "--sample", "LIST")
    assert status == 0 and out == f"samples: {', '.join(all_samples())}\n"


def test_empty_standard_input(capsys, monkeypatch):
    status, out, err = decode(capsys, "-", stdin=b"", monkeypatch=monkeypatch)
    assert status == 2 and out == ""
    assert err == (
        "cxgw decode: standard input is empty; pipe a Diameter message into it as hex or raw bytes, "
        "or a pcap/pcapng capture\n"
    )


def test_empty_and_missing_files(capsys, tmp_path):
    path = tmp_path / "empty.hex"
    path.write_bytes(b"")
    status, _, err = decode(capsys, str(path))
    assert status == 2 and err == f"cxgw decode: {path} is empty; give a Diameter message as hex or raw bytes, or a pcap/pcapng capture\n"
    status, _, err = decode(capsys, str(tmp_path / "nowhere"))
    assert status == 2 and err == f"cxgw decode: cannot read {tmp_path / 'nowhere'}: No such file or directory\n"
