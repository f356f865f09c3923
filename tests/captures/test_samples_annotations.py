"""The binding comment the samples show, as `cxgw gateway` makes it: the recorder's
writer thread holds reads and writes once annotations are on, so that a comment given
after the request was read (the store named the binding) still reaches its frame; a
partner role built from a configuration with [capture] annotates through the recorder."""

from __future__ import annotations

import time
from pathlib import Path

from twisted.internet import reactor
from twisted.internet.address import IPv4Address

from captures.reader import CaptureReader
from captures.recorder import Recorder
from cx_codec.samples import all_samples
from gateway.applications.assemble import install_roles
from gateway.applications.cx import CX
from gateway.config import parse_config

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
