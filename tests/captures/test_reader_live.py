"""captures.reader on real captures: dumpcap records a real TCP connection on loopback
(Ethernet on ``lo``, Linux cooked SLL and SLL2 on ``any``), the reader finds every
message, and tshark reads the same frames."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time

import pytest

from captures.reader import CaptureReader, Endpoint
from cx_codec.samples import SAMPLE_MAA, SAMPLE_MAR, all_samples

pytestmark = pytest.mark.interop

REQUESTS = [message.encode() for message in all_samples().values() if message.is_request]


def _server(listener: socket.socket, done: threading.Event) -> None:
    """Reads all the client sends, then answers with two MAAs in one write and closes."""
    connection, _ = listener.accept()
    with connection:
        expected = sum(map(len, REQUESTS)) + len(SAMPLE_MAR)
        received = b""
        while len(received) < expected:
            data = connection.recv(65536)
            if not data:
                break
            received += data
        connection.sendall(SAMPLE_MAA + SAMPLE_MAA)
        connection.shutdown(socket.SHUT_WR)
        connection.recv(1)
    done.set()


def _capture(tmp_path, require_program, interface: str, linktype: str | None):
    dumpcap = require_program("dumpcap")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    path = tmp_path / f"{interface}.pcapng"
    command = [dumpcap, "-q", "-i", interface, "-f", f"tcp port {port}", "-w", str(path)]
    if linktype:
        command[4:4] = ["-y", linktype]  # after the -i it applies to
    log = (tmp_path / f"{interface}.log").open("w+")  # not a pipe: dumpcap must never block on it
    process = subprocess.Popen(command, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while "Capturing on" not in (tmp_path / f"{interface}.log").read_text():
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / f"{interface}.log").read_text()
            time.sleep(0.05)
        done = threading.Event()
        thread = threading.Thread(target=_server, args=(listener, done), daemon=True)
        thread.start()
        with socket.create_connection(("127.0.0.1", port)) as client:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for request in REQUESTS:
                client.sendall(request)
            client.sendall(SAMPLE_MAR[:7])  # a message in two writes
            client.sendall(SAMPLE_MAR[7:])
            answers = b""
            while len(answers) < 2 * len(SAMPLE_MAA):
                answers += client.recv(65536)
            client.shutdown(socket.SHUT_WR)
        assert done.wait(30)
        # dumpcap writes as packets come; SIGINT below flushes the rest and closes the file
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if path.exists() and path.stat().st_size and len(list(CaptureReader(path))) == len(REQUESTS) + 3:
                break
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(30)
        listener.close()
        log.close()
    return path, port


@pytest.mark.parametrize(
    ("interface", "linktype"), [("lo", None), ("any", "LINUX_SLL"), ("any", "LINUX_SLL2")], ids=["ethernet", "sll", "sll2"]
)
def test_a_real_loopback_capture(tmp_path, require_program, interface, linktype):
    path, port = _capture(tmp_path, require_program, interface, linktype)
    reader = CaptureReader(path)
    messages = list(reader)
    assert reader.problems == []
    assert [m.data for m in messages] == [*REQUESTS, SAMPLE_MAR, SAMPLE_MAA, SAMPLE_MAA]
    server = Endpoint("127.0.0.1", port)
    assert [m.destination == server for m in messages] == [True] * (len(REQUESTS) + 1) + [False, False]
    (transport, client, found_server), = reader.streams.values()
    assert transport == "tcp" and found_server == server and client.address == "127.0.0.1"
    # tshark reads the same frames (with ``any``, every packet is seen once: out and in on lo)
    tshark = require_program("tshark")
    done = subprocess.run(
        [tshark, "-r", str(path), "-d", f"tcp.port=={port},diameter", "-Y", "diameter",
         "-T", "fields", "-e", "frame.number", "-e", "diameter.hopbyhopid"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    theirs: list[tuple[int, str]] = []
    for line in done.stdout.splitlines():
        frame, ids = line.split("\t")
        theirs += [(int(frame), hop) for hop in ids.split(",")]
    ours = [(m.frame, f"0x{int.from_bytes(m.data[12:16], 'big'):08x}") for m in messages]
    assert ours == theirs
