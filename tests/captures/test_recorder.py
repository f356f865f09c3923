"""captures.recorder: the tap and its writer, driven by direct calls and a fake clock
(``drain`` instead of the thread), read back with scapy."""

from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.utils import rdpcap
from twisted.internet.address import IPv4Address, IPv6Address

from captures.recorder import MARKER, Recorder, command_code, origin_host, redact
from cx_codec import decode
from cx_codec.samples import (
    SAMPLE_MAA,
    SAMPLE_MAR,
    capabilities_exchange_answer,
    capabilities_exchange_request,
    device_watchdog_request,
    multimedia_auth_answer,
)

LOCAL = ("127.0.0.1", 3868)
REMOTE = ("127.0.0.2", 41000)
SYN, ACK, PSH, FIN = 0x02, 0x10, 0x08, 0x01
CER = capabilities_exchange_request().encode()
CEA = capabilities_exchange_answer().encode()
DWR = device_watchdog_request().encode()


class Clock:
    def __init__(self, now: float = 1_764_547_200.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Transport:
    def __init__(self, local, remote) -> None:
        kind = IPv6Address if ":" in local[0] else IPv4Address
        self.local, self.remote = kind("TCP", *local), kind("TCP", *remote)

    def getHost(self):
        return self.local

    def getPeer(self):
        return self.remote


class TlsTransport(Transport):
    def getPeerCertificate(self):
        return None


class Connection:
    def __init__(self, local=LOCAL, remote=REMOTE, role="R", tls=False) -> None:
        self.transport = (TlsTransport if tls else Transport)(local, remote)
        self.role = role
        self.tap = None


def recorder(tmp_path, name="cx.pcap", **options) -> tuple[Recorder, Clock]:
    clock = Clock()
    rec = Recorder(tmp_path / name, clock=clock, **options)
    rec.open()
    return rec, clock


def streams(packets) -> dict[tuple[str, int], bytes]:
    """The payload bytes each source endpoint sent, in order."""
    out: dict[tuple[str, int], bytes] = {}
    for packet in packets:
        if not bytes(packet[TCP].payload):
            continue
        ip = packet[IP] if packet.haslayer(IP) else packet[IPv6]
        key = (ip.src, packet[TCP].sport)
        out[key] = out.get(key, b"") + bytes(packet[TCP].payload)
    return out


def test_framing_across_reads_several_per_read_handshake_and_fin(tmp_path):
    rec, clock = recorder(tmp_path)
    conn = Connection()
    rec.attach(conn)
    assert conn.tap is rec
    rec.received(conn, CER[:7])  # a message in three reads
    rec.received(conn, CER[7:100])
    rec.received(conn, CER[100:])
    clock.now += 0.5
    rec.sent(conn, memoryview(CEA + DWR))  # two messages in one write (a slice of a read buffer)
    rec.received(conn, SAMPLE_MAR + SAMPLE_MAA[:30])  # one and a half
    rec.received(conn, SAMPLE_MAA[30:])
    rec.lost(conn)
    assert conn.tap is None
    rec.stop()
    packets = rdpcap(str(tmp_path / "cx.pcap"))
    flags = [int(p[TCP].flags) for p in packets]
    # accepted connection: the peer (REMOTE) is the client of the handshake
    assert flags[:3] == [SYN, SYN | ACK, ACK] and packets[0][IP].src == REMOTE[0]
    assert flags[-3:] == [FIN | ACK, FIN | ACK, ACK]
    data = [p for p in packets if bytes(p[TCP].payload)]
    assert [bytes(p[TCP].payload) for p in data] == [CER, CEA, DWR, SAMPLE_MAR, redact(SAMPLE_MAA)]  # a segment each
    assert (data[1][IP].src, data[1][TCP].sport, data[1][TCP].dport) == (LOCAL[0], LOCAL[1], REMOTE[1])
    assert float(data[1].time) == clock.now
    assert rec.messages == 5 and rec.dropped == 0


def test_opened_connection_handshake_from_this_node_and_ipv6(tmp_path):
    rec, _ = recorder(tmp_path)
    conn = Connection(("::1", 50000), ("::1", 3868), role="I")
    rec.attach(conn)
    rec.sent(conn, CER)
    rec.received(conn, CEA)
    rec.stop()
    packets = rdpcap(str(tmp_path / "cx.pcap"))
    assert all(p.haslayer(IPv6) for p in packets)
    assert packets[0][TCP].sport == 50000 and int(packets[0][TCP].flags) == SYN
    assert streams(packets) == {("::1", 50000): CER, ("::1", 3868): CEA}
    # the checksums scapy recomputes match the written ones
    for packet in packets:
        written = packet[TCP].chksum
        del packet[TCP].chksum
        assert IPv6(bytes(packet[IPv6]))[TCP].chksum == written


def test_redaction_keeps_lengths_and_decodes(tmp_path):
    maa = multimedia_auth_answer()
    item = {avp.name: avp.value for avp in maa["SIP-Auth-Data-Item"]}
    redacted = redact(SAMPLE_MAA)
    assert len(redacted) == len(SAMPLE_MAA) and redacted != SAMPLE_MAA
    for secret in (item["SIP-Authenticate"], item["SIP-Authorization"], item["Confidentiality-Key"], item["Integrity-Key"]):
        assert secret not in redacted
    again = decode(redacted)  # strict decoding: still a valid MAA
    kept = {avp.name: avp.value for avp in again["SIP-Auth-Data-Item"]}
    assert kept["Confidentiality-Key"] == (MARKER * 2)[: len(item["Confidentiality-Key"])]
    assert kept["SIP-Authentication-Scheme"] == item["SIP-Authentication-Scheme"]
    assert again["Session-Id"] == maa["Session-Id"] and again.end_to_end == maa.end_to_end
    assert redact(SAMPLE_MAR) == SAMPLE_MAR  # nothing secret in it
    assert redact(CER) is CER

    rec, _ = recorder(tmp_path)
    conn = Connection()
    rec.attach(conn)
    rec.sent(conn, SAMPLE_MAA)
    rec.stop()
    assert streams(rdpcap(str(tmp_path / "cx.pcap")))[LOCAL] == redacted

    kept_rec, _ = recorder(tmp_path, "kept.pcap", keep_key_material=True)
    conn = Connection()
    kept_rec.attach(conn)
    kept_rec.sent(conn, SAMPLE_MAA)
    kept_rec.stop()
    assert streams(rdpcap(str(tmp_path / "kept.pcap")))[LOCAL] == SAMPLE_MAA


def test_rotation_by_size_restarts_connections_in_each_file(tmp_path):
    rec, clock = recorder(tmp_path, max_bytes=2000)
    conn = Connection()
    rec.attach(conn)
    for _ in range(6):
        rec.received(conn, SAMPLE_MAR)
        clock.now += 1
    rec.lost(conn)
    rec.stop()
    assert len(rec.files) >= 2
    assert all(f.name.startswith("cx-20251201T") and f.suffix == ".pcap" for f in rec.files)
    total = b""
    for path in rec.files:
        packets = rdpcap(str(path))
        assert int(packets[0][TCP].flags) == SYN  # each file starts the stream again
        assert int(packets[-1][TCP].flags) == ACK and int(packets[-2][TCP].flags) == FIN | ACK
        total += streams(packets)[REMOTE]
    assert total == SAMPLE_MAR * 6


def test_rotation_by_time(tmp_path):
    rec, clock = recorder(tmp_path, max_seconds=60)
    conn = Connection()
    rec.attach(conn)
    rec.received(conn, SAMPLE_MAR)
    clock.now += 30
    rec.received(conn, SAMPLE_MAR)
    rec.drain()
    assert len(rec.files) == 1
    clock.now += 31
    rec.received(conn, SAMPLE_MAR)
    rec.stop()
    assert len(rec.files) == 2
    assert [len(streams(rdpcap(str(p)))[REMOTE]) for p in rec.files] == [2 * len(SAMPLE_MAR), len(SAMPLE_MAR)]


def test_command_filter(tmp_path):
    assert command_code("MAR") == command_code("maa") == command_code("MAR/MAA") == command_code(303) == 303
    assert command_code("303") == 303 and command_code("XYZ") is None and command_code("MAR/CER") is None
    rec, _ = recorder(tmp_path, commands=[303])
    conn = Connection()
    rec.attach(conn)
    rec.received(conn, CER + SAMPLE_MAR + DWR)
    rec.sent(conn, CEA + SAMPLE_MAA)
    rec.stop()
    assert streams(rdpcap(str(tmp_path / "cx.pcap"))) == {REMOTE: SAMPLE_MAR, LOCAL: redact(SAMPLE_MAA)}


def test_peer_filter_by_identity_or_address(tmp_path):
    peer = origin_host(CER)
    assert peer and origin_host(CEA)
    rec, _ = recorder(tmp_path, peers=[peer.upper()])
    wanted, other = Connection(), Connection(remote=("127.0.0.3", 42000))
    opened = Connection(remote=("127.0.0.4", 3868), role="I")  # our CER is held until its CEA
    for conn in (wanted, other, opened):
        rec.attach(conn)
    rec.received(wanted, CER)
    rec.sent(wanted, CEA)
    other_cer = CER.replace(peer.encode(), b"x" * len(peer))
    rec.received(other, other_cer)
    rec.sent(other, CEA)
    rec.sent(opened, CEA)  # (any message: what counts is the Origin-Host of the first one read)
    rec.received(opened, CER)
    rec.stop()
    assert streams(rdpcap(str(tmp_path / "cx.pcap"))) == {
        REMOTE: CER, LOCAL: CEA + CEA, ("127.0.0.4", 3868): CER,
    }

    by_address, _ = recorder(tmp_path, "address.pcap", peers=["127.0.0.3"])
    for conn in (wanted, other):
        by_address.attach(conn)
    by_address.received(wanted, CER)
    by_address.received(other, other_cer)
    by_address.stop()
    assert streams(rdpcap(str(tmp_path / "address.pcap"))) == {("127.0.0.3", 42000): other_cer}


def test_full_buffer_drops_counts_and_resynchronises(tmp_path):
    rec, _ = recorder(tmp_path, buffer_messages=3)
    conn = Connection()
    rec.attach(conn)  # the open event counts against the buffer too
    rec.received(conn, CER)
    rec.received(conn, SAMPLE_MAR[:50])
    rec.received(conn, SAMPLE_MAR[50:])  # dropped: the buffer holds 3
    rec.received(conn, DWR)  # dropped
    assert rec.dropped == 2
    rec.drain()
    rec.received(conn, SAMPLE_MAR[100:])  # after the hole: not a message start, skipped
    rec.received(conn, DWR)  # a header again: recorded
    rec.sent(conn, CEA)  # the other direction lost nothing
    rec.stop()
    assert streams(rdpcap(str(tmp_path / "cx.pcap"))) == {REMOTE: CER + DWR, LOCAL: CEA}
    assert rec.dropped == 2


def test_pcapng_marks_tls_connections_with_a_comment(tmp_path):
    rec, _ = recorder(tmp_path, "cx.pcapng")
    tls, plain = Connection(tls=True), Connection(remote=("127.0.0.3", 42000), role="I")
    for conn in (tls, plain):
        rec.attach(conn)
    rec.received(tls, CER)
    rec.sent(plain, CER)
    rec.stop()
    raw = (tmp_path / "cx.pcapng").read_bytes()
    assert raw[:4] == b"\x0a\x0d\x0d\x0a"
    assert raw.count(b"decrypted Diameter plaintext") == 1
    assert raw.count(b"opened by this node") == 1
    packets = rdpcap(str(tmp_path / "cx.pcapng"))
    assert streams(packets) == {REMOTE: CER, LOCAL: CER}
    assert packets[0].comment and b"TLS" in packets[0].comment


def test_write_errors_are_reported_once_and_do_not_raise(tmp_path):
    errors: list[str] = []
    rec, _ = recorder(tmp_path, on_error=errors.append)
    conn = Connection()
    rec.attach(conn)
    rec._writer._file.close()  # as if the disk went away
    rec.received(conn, CER)
    rec.received(conn, DWR)
    rec.drain()
    assert len(errors) == 1 and "cannot write" in errors[0]


def test_dropped_counter_is_exported_by_a_recording_node(tmp_path):
    from twisted.internet import task

    from gateway.node import DiameterNode
    from gateway.observe.counts import NodeMetrics
    from gateway.peer.capabilities import LocalIdentity

    metrics = NodeMetrics()
    node = DiameterNode(LocalIdentity("gw.example", "example"), reactor=task.Clock(), metrics=metrics)
    metrics.collect(node)
    assert "cxgw_capture_dropped_total" not in metrics.metrics.registry.expose()  # not recording
    rec, _ = recorder(tmp_path, buffer_messages=1)
    node.recorder = rec
    conn = Connection()
    rec.attach(conn)
    for _ in range(3):
        rec.received(conn, CER)
    metrics.collect(node)
    assert "cxgw_capture_dropped_total 3" in metrics.metrics.registry.expose()
    rec.received(conn, CER)
    metrics.collect(node)
    assert "cxgw_capture_dropped_total 4" in metrics.metrics.registry.expose()
    rec.stop()


def test_ipv6_pcapng_dissects_in_tshark_with_checksums_checked(tmp_path, require_program):
    import subprocess

    tshark = require_program("tshark")
    rec, clock = recorder(tmp_path, "v6.pcapng")
    conn = Connection(("2001:db8::1", 3868), ("2001:db8::2", 41000))
    rec.attach(conn)
    rec.received(conn, CER)
    clock.now += 0.001
    rec.sent(conn, CEA + SAMPLE_MAA)
    rec.lost(conn)
    rec.stop()
    base = [tshark, "-n", "-r", str(tmp_path / "v6.pcapng"), "-o", "tcp.check_checksum:TRUE",
            "-d", "tcp.port==3868,diameter"]
    done = subprocess.run([*base, "-Y", "diameter", "-T", "fields", "-e", "ipv6.src", "-e", "diameter.cmd.code"],
                          capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["2001:db8::2", "257", "2001:db8::1", "257", "2001:db8::1", "303"]
    problems = subprocess.run([*base, "-Y", '_ws.malformed || _ws.expert.severity >= "Warning"'],
                              capture_output=True, text=True, timeout=120, check=True)
    assert problems.stdout.strip() == ""


def test_writer_thread_writes_everything_by_stop(tmp_path):
    rec = Recorder(tmp_path / "thread.pcap")
    rec.start()
    conn = Connection()
    rec.attach(conn)
    for _ in range(50):
        rec.received(conn, SAMPLE_MAR)
        rec.sent(conn, SAMPLE_MAA)
    rec.stop()  # the rest of the queue, the FIN, the file closed
    packets = rdpcap(str(tmp_path / "thread.pcap"))
    assert streams(packets) == {REMOTE: SAMPLE_MAR * 50, LOCAL: redact(SAMPLE_MAA) * 50}
    assert int(packets[-2][TCP].flags) == FIN | ACK and rec.messages == 100
