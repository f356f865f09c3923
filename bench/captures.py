"""Capture benchmark: the project's pcap writer, recorder and reader against scapy, in one run.

    python bench/captures.py [--messages 20000] [--scapy-messages 4000] [--repeat 3]

Workload: the samples of ``cx_codec.samples`` (21 Cx and base messages, 80-700 bytes),
cycled, each its own TCP segment on one connection (requests client to server, answers
back), Ethernet + IPv4.

Writing, packets/s (every packet, the handshake included, is a record in the file):
- ``captures.pcap.PcapWriter`` / ``PcapngWriter``: ``write_message`` per message;
- the recorder's writer path: ``Recorder.received``/``sent`` (the tap) then ``drain``
  (framing, filters, redaction of MAR/MAA key material, writing), on a fake connection;
- scapy ``PcapWriter``: building ``Ether()/IP()/TCP()/payload`` per packet and writing
  it (what recording with scapy costs), and writing packets built beforehand (its writer
  alone).

Reading, Diameter messages/s out of the same file:
- ``captures.reader.CaptureReader`` (reassembly, framing, problems);
- scapy ``rdpcap`` then the TCP payload of each packet (no reassembly at all: correct
  here only because every message is one segment);
- scapy ``sniff(offline=..., session=TCPSession)`` with a ``tcp_reassemble`` that returns
  a message when the buffer holds its Diameter length.

Each rate is the best of ``--repeat`` runs; scapy runs on ``--scapy-messages`` (it is
slow) and its rates are per message or packet all the same. Goals (issue 10): writing at
least 50 times scapy, reading at least 5 times.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from captures.pcap import PcapngWriter, PcapWriter  # noqa: E402
from captures.reader import CaptureReader  # noqa: E402
from captures.recorder import Recorder  # noqa: E402
from cx_codec.samples import all_samples  # noqa: E402

CLIENT, SERVER = ("10.0.0.1", 40000), ("10.0.0.2", 3868)
T0 = 1_764_547_200.0


def workload(count: int) -> list[tuple[bytes, bool]]:
    """(message, is request) for ``count`` messages, the samples cycled."""
    samples = [(message.encode(), message.is_request) for message in all_samples().values()]
    return [samples[index % len(samples)] for index in range(count)]


def best(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    """(best units/s, units) of ``repeat`` runs of ``run``, which returns its unit count."""
    rates = []
    units = 0
    for _ in range(repeat):
        started = time.perf_counter()
        units = run()
        rates.append(units / (time.perf_counter() - started))
    return max(rates), units


# -- writing ---------------------------------------------------------------------------------
def ours_write(messages: list[tuple[bytes, bool]], writer_class: type[PcapWriter]) -> int:
    writer = writer_class(io.BytesIO())
    for index, (data, request) in enumerate(messages):
        src, dst = (CLIENT, SERVER) if request else (SERVER, CLIENT)
        writer.write_message(data, src=src, dst=dst, timestamp=T0 + index * 0.001)
    return writer.packets


class _Address:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port


class _Transport:
    def getHost(self) -> _Address:
        return _Address(*SERVER)

    def getPeer(self) -> _Address:
        return _Address(*CLIENT)


class _Connection:
    transport = _Transport()
    role = "R"
    tap = None


def recorder_write(messages: list[tuple[bytes, bool]], directory: str) -> int:
    """The tap then the writer thread's work (``drain``), with redaction on (the default)."""
    now = [T0]
    recorder = Recorder(os.path.join(directory, "bench.pcap"), clock=lambda: now[0], buffer_messages=len(messages) + 10)
    recorder.open()
    connection = _Connection()
    recorder.attach(connection)
    for data, request in messages:
        (recorder.received if request else recorder.sent)(connection, data)
    recorder.drain()
    packets = recorder._writer.packets if recorder._writer is not None else 0
    recorder.close()
    return packets


def scapy_packets(messages: list[tuple[bytes, bool]]) -> list:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    sent = {True: 1, False: 1}
    packets = []
    for index, (data, request) in enumerate(messages):
        src, dst = (CLIENT, SERVER) if request else (SERVER, CLIENT)
        packet = (
            Ether(src="02:00:0a:00:00:01", dst="02:00:0a:00:00:02")
            / IP(src=src[0], dst=dst[0])
            / TCP(sport=src[1], dport=dst[1], flags="PA", seq=sent[request], ack=sent[not request])
            / data
        )
        packet.time = T0 + index * 0.001
        sent[request] += len(data)
        packets.append(packet)
    return packets


def scapy_build_and_write(messages: list[tuple[bytes, bool]]) -> int:
    from scapy.utils import PcapWriter as ScapyWriter

    writer = ScapyWriter(io.BytesIO(), linktype=1)
    packets = scapy_packets(messages)
    for packet in packets:
        writer.write(packet)
    return len(packets)


def scapy_write_only(packets: list) -> int:
    from scapy.utils import PcapWriter as ScapyWriter

    writer = ScapyWriter(io.BytesIO(), linktype=1)
    for packet in packets:
        writer.write(packet)
    return len(packets)


# -- reading ---------------------------------------------------------------------------------
def capture_file(messages: list[tuple[bytes, bool]], path: str) -> None:
    with PcapWriter(path) as writer:
        for index, (data, request) in enumerate(messages):
            src, dst = (CLIENT, SERVER) if request else (SERVER, CLIENT)
            writer.write_message(data, src=src, dst=dst, timestamp=T0 + index * 0.001)


def ours_read(path: str) -> int:
    reader = CaptureReader(path)
    count = sum(1 for _ in reader)
    assert not reader.problems, reader.problems[:3]
    return count


def scapy_rdpcap(path: str) -> int:
    from scapy.layers.inet import TCP
    from scapy.utils import rdpcap

    return sum(1 for packet in rdpcap(path) if TCP in packet and bytes(packet[TCP].payload))


_DIAMETER_BYTES: type | None = None


def _diameter_bytes() -> type:
    """A scapy layer bound to TCP port 3868 whose ``tcp_reassemble`` returns one message
    when the buffer holds its Diameter length (made once: scapy keeps the first binding)."""
    global _DIAMETER_BYTES
    if _DIAMETER_BYTES is None:
        from scapy.layers.inet import TCP
        from scapy.packet import Packet, bind_layers

        class DiameterBytes(Packet):
            name = "Diameter bytes"

            @classmethod
            def tcp_reassemble(cls, data: bytes, metadata: dict, session: dict) -> Packet | None:
                if len(data) >= 4 and len(data) >= int.from_bytes(data[1:4], "big"):
                    return cls(data)
                return None

        bind_layers(TCP, DiameterBytes, dport=3868)
        bind_layers(TCP, DiameterBytes, sport=3868)
        _DIAMETER_BYTES = DiameterBytes
    return _DIAMETER_BYTES


def scapy_tcp_session(path: str) -> int:
    from scapy.sendrecv import sniff
    from scapy.sessions import TCPSession

    layer = _diameter_bytes()
    return sum(1 for packet in sniff(offline=path, session=TCPSession) if layer in packet)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--scapy-messages", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    messages = workload(args.messages)
    few = workload(args.scapy_messages)
    rows: list[tuple[str, str, float, int]] = []
    with tempfile.TemporaryDirectory() as directory:
        # writing: packets/s
        pcap_rate, _ = best(args.repeat, lambda: ours_write(messages, PcapWriter))
        pcapng_rate, _ = best(args.repeat, lambda: ours_write(messages, PcapngWriter))
        recorder_rate, _ = best(args.repeat, lambda: recorder_write(messages, directory))
        scapy_build_rate, _ = best(args.repeat, lambda: scapy_build_and_write(few))
        prebuilt = scapy_packets(few)
        scapy_write_rate, _ = best(args.repeat, lambda: scapy_write_only(prebuilt))
        rows += [
            ("write", "captures.pcap PcapWriter (pcap)", pcap_rate, args.messages),
            ("write", "captures.pcap PcapngWriter (pcapng)", pcapng_rate, args.messages),
            ("write", "recorder: tap + drain (framing, redaction, pcap)", recorder_rate, args.messages),
            ("write", "scapy PcapWriter, packets built per message", scapy_build_rate, args.scapy_messages),
            ("write", "scapy PcapWriter, packets built beforehand", scapy_write_rate, args.scapy_messages),
        ]
        # reading: messages/s
        big, small = os.path.join(directory, "big.pcap"), os.path.join(directory, "small.pcap")
        capture_file(messages, big)
        capture_file(few, small)
        read_rate, count = best(args.repeat, lambda: ours_read(big))
        assert count == args.messages, count
        small_rate, small_count = best(args.repeat, lambda: ours_read(small))
        assert small_count == args.scapy_messages
        rdpcap_rate, rdpcap_count = best(args.repeat, lambda: scapy_rdpcap(small))
        assert rdpcap_count == args.scapy_messages, rdpcap_count
        session_rate, session_count = best(args.repeat, lambda: scapy_tcp_session(small))
        assert session_count == args.scapy_messages, session_count
        rows += [
            ("read", f"captures.reader CaptureReader ({args.messages} messages)", read_rate, args.messages),
            ("read", f"captures.reader CaptureReader ({args.scapy_messages} messages)", small_rate, args.scapy_messages),
            ("read", "scapy rdpcap + TCP payloads (no reassembly)", rdpcap_rate, args.scapy_messages),
            ("read", "scapy sniff(offline, TCPSession) + tcp_reassemble", session_rate, args.scapy_messages),
        ]
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; best of {args.repeat} runs")
    print(f"{'':5}  {'what':55}  {'rate':>12}  {'unit':10}  {'messages':>8}")
    for kind, what, rate, units in rows:
        unit = "packets/s" if kind == "write" else "messages/s"
        print(f"{kind:5}  {what:55}  {rate:12,.0f}  {unit:10}  {units:8}")
    print()
    ratios = [
        ("write: PcapWriter / scapy built per message", pcap_rate / scapy_build_rate, 50),
        ("write: recorder path / scapy built per message", recorder_rate / scapy_build_rate, 50),
        ("write: PcapWriter / scapy writer alone", pcap_rate / scapy_write_rate, None),
        ("read: CaptureReader / scapy rdpcap", small_rate / rdpcap_rate, 5),
        ("read: CaptureReader / scapy TCPSession", small_rate / session_rate, 5),
    ]
    for what, ratio, goal in ratios:
        verdict = "" if goal is None else f"  goal >= {goal}x {'met' if ratio >= goal else 'NOT met'}"
        print(f"{what:50}  {ratio:7.1f}x{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
