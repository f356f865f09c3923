"""Wireshark's Diameter dissector (tshark, Debian package ``tshark``) as an oracle.

All samples go into one pcap written by ``captures.pcap`` (one TCP connection, port
3868 on the HSS side); tshark reads it once for fields and once for problems:

- every message is dissected as Diameter with the right command code, application-id
  (16777216 for Cx) and R bit, and the values of a few AVPs (nested ones included) are
  the ones cx_codec decodes;
- ``_ws.malformed || _ws.expert.severity >= "Warning"`` (with IP and TCP checksum
  validation on) matches no frame;
- a negative control: the same filter does flag a deliberately broken message.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from captures.pcap import PcapWriter
from cx_codec import decode
from cx_codec.message import Message
from cx_codec.samples import SAMPLE_MAR, all_samples

pytestmark = pytest.mark.interop

SCSCF_SIDE = ("192.0.2.10", 40001)
HSS_SIDE = ("192.0.2.20", 3868)
START = 1714564800.0

# conversation order: capabilities, watchdog, Cx, then the special cases, then DPR/DPA
ORDER = [
    "CER", "CEA", "DWR", "DWA",
    "UAR", "UAA", "MAR", "MAA", "SAR", "SAA", "LIR", "LIA", "RTR", "RTA", "PPR", "PPA",
    "MAR-resync", "MAA-user-unknown", "error-3002",
    "DPR", "DPA",
]  # fmt: skip
FROM_HSS_SIDE = {"RTR", "PPR"}  # requests the HSS sends (TS 29.229 §6.1.9, §6.1.11)

# Wireshark field -> our AVP name (Wireshark 4.0 names some Cx AVPs "3GPP-...")
FIELDS = {
    "diameter.Session-Id": "Session-Id",
    "diameter.Origin-Host": "Origin-Host",
    "diameter.User-Name": "User-Name",
    "diameter.Public-Identity": "Public-Identity",
    "diameter.Result-Code": "Result-Code",
    "diameter.Experimental-Result-Code": "Experimental-Result-Code",
    "diameter.3GPP-SIP-Authentication-Scheme": "SIP-Authentication-Scheme",
    "diameter.3GPP-SIP-Authenticate": "SIP-Authenticate",
    "diameter.Server-Assignment-Type": "Server-Assignment-Type",
    "diameter.Server-Name": "Server-Name",
}
HEADER_FIELDS = ["frame.number", "diameter.cmd.code", "diameter.applicationId", "diameter.flags.request"]


def _write(path: Path, messages: list[tuple[str, Message | bytes]]) -> None:
    with PcapWriter(path) as pcap:
        for index, (name, message) in enumerate(messages):
            data = message if isinstance(message, bytes) else message.encode()
            request = bool(data[4] & 0x80)
            upward = request != (name in FROM_HSS_SIDE)
            src, dst = (SCSCF_SIDE, HSS_SIDE) if upward else (HSS_SIDE, SCSCF_SIDE)
            pcap.write_message(data, src=src, dst=dst, timestamp=START + index * 0.001)


def _tshark(tshark: str, *args: str) -> list[str]:
    result = subprocess.run(
        [tshark, "-n", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, Message]]]:
    samples = all_samples()
    assert sorted(ORDER) == sorted(samples), "ORDER must list every sample"
    messages = [(name, samples[name]) for name in ORDER]
    path = tmp_path_factory.mktemp("tshark") / "samples.pcap"
    _write(path, messages)
    return path, messages


def _walk_values(message: Message, name: str) -> list[object]:
    values = []
    for top in message.avps:
        for _, avp in top.walk():
            if avp.definition is not None and avp.definition.name == name:
                values.append(avp.value)
    return values


def _render(value: object) -> str:
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def test_every_sample_is_dissected_with_the_right_header_and_values(require_program, capture):
    tshark = require_program("tshark")
    path, messages = capture
    fields = [*HEADER_FIELDS, *FIELDS]
    args = ["-r", str(path), "-Y", "diameter", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]
    for field in fields:
        args += ["-e", field]
    lines = _tshark(tshark, *args)
    assert len(lines) == len(messages), "\n".join(lines)
    for line, (name, message) in zip(lines, messages, strict=True):
        columns = line.split("\t")
        columns += [""] * (len(fields) - len(columns))
        row = dict(zip(fields, columns, strict=True))
        assert int(row["diameter.cmd.code"]) == message.command_code, name
        assert int(row["diameter.applicationId"]) == message.application_id, name
        expected_r = ("1", "True") if message.is_request else ("0", "False")
        assert row["diameter.flags.request"] in expected_r, name
        for field, avp_name in FIELDS.items():
            expected = [_render(value) for value in _walk_values(message, avp_name)]
            got = [item for item in row[field].split(",") if item] if row[field] else []
            assert got == expected, f"{name}: {field}"
    cx = [m for _, m in messages if m.command_code in range(300, 306)]
    assert all(m.application_id == 16777216 for m in cx) and len(cx) == 15


def test_no_malformed_frames_and_no_expert_warnings(require_program, capture):
    tshark = require_program("tshark")
    path, _ = capture
    problems = _tshark(tshark, "-r", str(path), "-Y", '_ws.malformed || _ws.expert.severity >= "Warning"')
    assert problems == []


def test_negative_control_a_broken_message_is_flagged(require_program, tmp_path):
    # the problem filter must be able to fail: User-Name claims more bytes than there are
    tshark = require_program("tshark")
    broken = bytearray(SAMPLE_MAR)
    message = decode(SAMPLE_MAR)
    offset = 20 + sum(len(avp) for avp in message.avps[: message.avps.index(message.find("User-Name"))])
    broken[offset + 5 : offset + 8] = (0x7FFF).to_bytes(3, "big")
    path = tmp_path / "broken.pcap"
    _write(path, [("MAR", bytes(broken))])
    problems = _tshark(tshark, "-r", str(path), "-Y", '_ws.malformed || _ws.expert.severity >= "Warning"')
    assert len(problems) == 1
