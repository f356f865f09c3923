"""The binding comment the samples show, as `cxgw gateway` makes it: the recorder's
writer thread holds reads and writes once annotations are on, so that a comment given
after the request was read (the store named the binding) still reaches its frame; a
partner role built from a configuration with [capture] annotates through the recorder;
and the shipped loopback examples as real `cxgw gateway` processes record the comment on
both legs."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from captures.reader import CaptureReader
from captures.recorder import Recorder
from captures.samples.make import mar
from cx_codec.samples import all_samples
from gateway.applications.assemble import install_roles
from gateway.applications.cx import CX
from gateway.config import parse_config
from gateway.testing.cores import PARTNER, SCSCF
from gateway.testing.diamtest import RawPeer
from gateway.testing.process import GatewayProcess, provision, until

EXAMPLES = Path(__file__).resolve().parents[2] / "gateway" / "examples"
MAR = all_samples()["MAR"].encode()


class Clock:
    def __init__(self) -> None:
        self.now = 1_764_547_200.0

    def __call__(self) -> float:
        return self.now


class Transport:
    def getHost(self):
        return IPv4Address("TCP", "127.0.0.1", 3868)

    def getPeer(self):
        return IPv4Address("TCP", "127.0.0.1", 40000)


class Connection:
    role, tap, transport = "R", None, Transport()


def test_a_comment_given_after_the_read_reaches_the_frame(tmp_path):
    clock = Clock()
    recorder = Recorder(tmp_path / "held.pcapng", clock=clock)
    annotate = recorder.annotations()
    recorder.start()
    try:
        connection = Connection()
        recorder.attach(connection)
        recorder.received(connection, MAR)
        time.sleep(0.2)  # the writer thread runs; its clock has not moved, so it holds the read
        assert recorder.messages == 0
        forwarded = MAR[:4] + bytes([MAR[4] | 0x10]) + MAR[5:12] + b"\x12\x34\x56\x78" + MAR[16:]  # T flag, new id
        annotate([forwarded], "translated: inbound a ↔ primary b (primary.example)")
        clock.now += 1.0
        deadline = time.monotonic() + 10
        while recorder.messages == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        recorder.stop()
    [message] = list(CaptureReader(tmp_path / "held.pcapng"))
    assert message.data == MAR and message.comment == "translated: inbound a ↔ primary b (primary.example)"


def test_without_annotations_nothing_is_held_and_nothing_commented(tmp_path):
    clock = Clock()
    recorder = Recorder(tmp_path / "plain.pcapng", clock=clock)
    recorder.start()
    try:
        connection = Connection()
        recorder.attach(connection)
        recorder.received(connection, MAR)
        deadline = time.monotonic() + 10
        while recorder.messages == 0 and time.monotonic() < deadline:  # written with the clock standing still
            time.sleep(0.01)
        assert recorder.messages == 1
    finally:
        recorder.stop()
    assert [message.comment for message in CaptureReader(tmp_path / "plain.pcapng")] == [None]


class Node:
    """What install_roles uses of a node."""

    def __init__(self, recorder: Recorder | None) -> None:
        self.recorder, self.applications = recorder, {}

    def send_request(self, data: bytes):
        raise AssertionError("not sent here")

    def new_end_to_end(self) -> int:
        return 1


def test_a_partner_role_with_capture_annotates_through_the_recorder(tmp_path):
    text = (EXAMPLES / "partner-core.toml").read_text() + '\n[capture]\nfile = "partner.pcapng"\n'
    config = parse_config(text, base_dir=tmp_path)
    recorder = Recorder(config.capture.file)
    for node, expected in ((Node(recorder), recorder.annotate), (Node(None), None)):
        roles = install_roles(config, node, reactor)
        try:
            assert node.applications[CX].partner.annotate == expected
        finally:
            roles.stop()
    assert recorder.hold > 0


LISTENING = r"listening on 127\.0\.0\.1:(\d+) \(tcp\)"
K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"


def _example(name: str, folder: Path, extra: str = "", primary_port: int | None = None) -> Path:
    """An example on ports the OS picks (the partner pointed at the primary's), in ``folder``."""
    text = re.sub(r"(?m)^port = \d+", "port = 0", (EXAMPLES / name).read_text())
    if primary_port is not None:  # the [[peers]] entry of gw.primary.example
        text = re.sub(r'(host = "gw\.primary\.example"\s*\nrealm = "primary\.example"\s*\naddress = "127\.0\.0\.1"\n)'
                      r"port = 0\n", rf"\1port = {primary_port}\n", text)
    path = folder / name
    path.write_text(text + extra)
    return path


def _provision(folder: Path) -> tuple[str, str]:
    primary, partner = str(folder / "primary-core.sqlite"), str(folder / "partner-core.sqlite")
    provision(primary, "subscriber", "add", "alice@primary.example", "--impu", "sip:alice@primary.example",
              "--k", K, "--opc", OPC)
    provision(primary, "agreement", "add", "partner-a", "--all")
    provision(primary, "policy", "set", "outbound", "--impi-pattern", "out-{random}@primary.example",
              "--impu-pattern", "sip:out-{random}@primary.example")
    outbound = json.loads(provision(primary, "binding", "allocate-outbound", "--impi", "alice@primary.example",
                                    "--impu", "sip:alice@primary.example", "--partner", "partner-a"))
    provision(partner, "policy", "set", "inbound", "--impi-pattern", "mig-{random}@partner.example",
              "--impu-pattern", "sip:mig-{random}@partner.example")
    inbound = json.loads(provision(partner, "binding", "allocate-inbound", "--primary-realm", "primary.example",
                                   "--primary-host", "gw.primary.example", "--impi", outbound["outbound_impi"],
                                   "--impu", outbound["outbound_impu"]))
    return inbound["inbound_impi"], outbound["outbound_impi"]


@pytest_twisted.ensureDeferred
async def test_cxgw_gateway_with_capture_names_the_binding_on_both_legs(tmp_path):
    """The shipped loopback examples as real processes, [capture] on the partner core."""
    inbound, outbound = _provision(tmp_path)
    primary = GatewayProcess(str(_example("primary-core.toml", tmp_path)))
    partner = scscf = None
    try:
        primary_port = int((await until(lambda: primary.find(LISTENING), "the primary's port", primary)).group(1))
        partner = GatewayProcess(str(_example("partner-core.toml", tmp_path, '\n[capture]\nfile = "partner.pcapng"\n',
                                              primary_port)))
        port = int((await until(lambda: partner.find(LISTENING), "the partner's port", partner)).group(1))
        await until(lambda: partner.find(r"peer gw\.primary\.example: open"), "the interconnect", partner)
        scscf = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawPeer())
        await scscf.exchange_cer(SCSCF, PARTNER)
        scscf.send(mar(7, (inbound, "sip:" + inbound)))
        answer = await scscf.next(timeout=10.0)
        assert answer.result_code == 2001, answer
        partner.process.send_signal(signal.SIGTERM)  # the recording written out and closed
        await until(lambda: partner.process.poll() is not None, "the partner to exit", partner)
    finally:
        if scscf is not None and scscf.connected:
            scscf.transport.abortConnection()
        for process in (partner, primary):
            if process is not None:
                process.stop()
    comment = f"translated: inbound {inbound} ↔ primary {outbound} (primary.example)"
    mars = [message for message in CaptureReader(tmp_path / "partner.pcapng")
            if message.data[4] & 0x80 and message.data[5:8] == (303).to_bytes(3, "big")]
    assert [message.comment for message in mars] == [comment, comment]
    assert inbound.encode() in mars[0].data and outbound.encode() in mars[1].data
