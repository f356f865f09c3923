"""`cxgw send`: as an operator checking a peer runs it, against live peers on loopback.

The peer is a real `cxgw gateway` process in the hss role (plain TCP, then TLS with
`cxgw certs` certificates) with one subscriber provisioned by `cxgw provision`: the sample
MAR's user, so the answer is a 2001 MAA with a vector; freeDiameter is the foreign peer.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gateway.testing.process import GatewayProcess, provision

K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
LISTENING = r"listening on 127\.0\.0\.1:(\d+) \((tcp|tls)\)"
HSS = """
[node]
origin_host = "hss.partner.example"
origin_realm = "partner.example"
role = "hss"
applications = ["cx"]
[[listen]]
address = "127.0.0.1"
port = 0
transport = "{transport}"
[unknown_peers]
accept_realms = ["localdomain", "partner.example"]
[[routes]]
realm = "partner.example"
action = "local"
[store]
target = "hss.sqlite"
{tls}
"""
TLS = """
[tls]
certificate = "pki/hss.partner.example.pem"
private_key = "pki/hss.partner.example.key"
ca_certificates = ["pki/interconnect-ca.pem"]
"""


def cxgw(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True, text=True,
                          timeout=120, input=stdin)


def wait_for(process: GatewayProcess, pattern: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.process.poll() is None:
        match = process.find(pattern)
        if match:
            return match.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r}:\n{''.join(process.lines[-30:])}")


def hss(folder: Path, transport: str = "tcp") -> tuple[GatewayProcess, int]:
    provision(str(folder / "hss.sqlite"), "init")
    provision(str(folder / "hss.sqlite"), "subscriber", "add", "mig-0001@partner.example",
              "--impu", "sip:mig-0001@partner.example", "--k", K, "--opc", OPC)
    config = folder / "hss.toml"
    config.write_text(HSS.format(transport=transport, tls=TLS if transport == "tls" else ""))
    process = GatewayProcess(str(config))
    return process, int(wait_for(process, LISTENING))


@pytest.fixture
def tcp_hss(tmp_path):
    process, port = hss(tmp_path)
    yield port, process
    process.stop()


def test_sample_mar_gets_a_vector_and_exit_0(tcp_hss):
    port, process = tcp_hss
    done = cxgw("send", f"127.0.0.1:{port}", "--sample", "MAR")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("Multimedia-Auth-Answer (command 303, application 16777216 3GPP Cx)")
    assert "SIP-Auth-Data-Item (612, 3GPP) VM" in out and "Confidentiality-Key (625, 3GPP)" in out
    assert "verdict: valid" in out
    assert "result: 2001 DIAMETER_SUCCESS (Result-Code) from hss.partner.example" in out
    # the HSS saw our identity, not the sample's S-CSCF, and a DPR at the end
    assert process.find(r"accepting unknown peer cxgw-send\.localdomain of realm localdomain")
    wait_for(process, r"peer (cxgw-send\.localdomain): down")


def test_json_several_messages_from_stdin_and_the_exit_status(tcp_hss):
    port, _ = tcp_hss
    from cx_codec.samples import BUILDERS

    hex_lines = "\n".join(BUILDERS[name]().encode().hex() for name in ("DWR", "MAR", "RTR")) + "\n"
    done = cxgw("send", f"127.0.0.1:{port}", "-", "--json", "--origin-host", "scscf.partner.example",
                "--origin-realm", "partner.example", stdin=hex_lines)
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(a["command"], a["result_code"], a["success"]) for a in answers] == [
        ("Device-Watchdog-Answer", 2001, True),
        ("Multimedia-Auth-Answer", 2001, True),
        ("Registration-Termination-Answer", 3001, False),  # an HSS does not take RTRs (TS 29.229 §6.1.9)
    ]
    assert answers[2]["error_bit"] and answers[2]["error_message"]  # RFC 6733 §7.1.3: protocol error, E bit
    vector = next(avp for avp in answers[1]["avps"] if avp["name"] == "SIP-Auth-Data-Item")
    assert {"SIP-Authenticate", "SIP-Authorization"} <= {member["name"] for member in vector["avps"]}
    assert done.returncode == 1  # one error answer


def test_unknown_user_is_exit_1_with_the_3gpp_name(tcp_hss):
    port, _ = tcp_hss
    done = cxgw("send", f"127.0.0.1:{port}", "--sample", "LIR")  # tel: URI, not provisioned
    assert done.returncode == 1
    assert "result: 5001 DIAMETER_ERROR_USER_UNKNOWN (Experimental-Result-Code)" in done.stdout


def test_cea_refusal_is_one_line(tcp_hss):
    port, _ = tcp_hss
    done = cxgw("send", f"127.0.0.1:{port}", "--sample", "DWR", "--origin-realm", "elsewhere.example")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("cxgw send: CEA 3010 DIAMETER_UNKNOWN_PEER: peer cxgw-send.localdomain "
                                  "(realm elsewhere.example) is not configured")
    assert len(done.stderr.splitlines()) == 1


def test_connection_refused():
    with socket.socket() as sock:  # bound, not listening: the kernel refuses connections
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        done = cxgw("send", f"127.0.0.1:{port}", "--sample", "MAR")
    assert done.returncode == 1
    assert done.stderr == f"cxgw send: cannot connect to 127.0.0.1:{port}: connection refused\n"


def test_silent_peer_is_no_answer_in_timeout():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted: list[socket.socket] = []
        thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
        thread.start()
        done = cxgw("send", f"127.0.0.1:{server.getsockname()[1]}", "--sample", "MAR", "--timeout", "1")
        thread.join(5)
        for sock in accepted:
            sock.close()
    assert done.returncode == 1
    assert done.stderr.startswith("cxgw send: no CEA in 1 s from 127.0.0.1:")


@pytest.mark.parametrize(("args", "message"), [
    (["--sample", "MAA"], "Multimedia-Auth-Answer is an answer; cxgw send sends requests"),
    (["--sample", "CER"], "CER is sent by cxgw send itself"),
    (["--sample", "nope"], "no sample 'nope'; samples: UAR, UAA,"),
    ([], "give --sample NAME, a FILE of hex or raw messages, or - for standard input"),
    (["missing.hex"], "cannot read missing.hex"),
    (["--sample", "MAR", "--tls-cert", "a.pem"], "TLS needs --tls-cert, --tls-key and --ca together"),
    (["--sample", "MAR", "--origin-host", "not an identity"], "Multimedia-Auth-Request: the rewritten request is invalid"),
])
def test_bad_input_is_exit_2_without_a_traceback(args, message, tmp_path):
    done = subprocess.run([sys.executable, "-m", "gateway.cli", "send", "127.0.0.1:3868", *args],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("cxgw send: ") and message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(("content", "message"), [
    ("", "is empty"),
    ("0100", "is not a valid Diameter message"),
    ("zz not hex", "cannot read"),  # printable text is read as hex (cx_codec.cli.read_input)
])
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "in.hex"
    path.write_text(content)
    done = cxgw("send", "127.0.0.1:3868", str(path))
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr


def test_bad_target():
    done = cxgw("send", "localhost", "--sample", "MAR")
    assert done.returncode == 2
    assert done.stderr == "cxgw send: 'localhost' is not HOST:PORT; write e.g. 127.0.0.1:3868 or [::1]:3868\n"


def test_tls_with_lab_certificates(tmp_path):
    made = cxgw("certs", str(tmp_path / "pki"), "hss.partner.example", "cxgw-send.localdomain")
    assert made.returncode == 0, made.stderr
    process, port = hss(tmp_path, "tls")
    pki = tmp_path / "pki"
    tls = ["--tls-cert", str(pki / "cxgw-send.localdomain.pem"), "--tls-key", str(pki / "cxgw-send.localdomain.key"),
           "--ca", str(pki / "interconnect-ca.pem")]
    try:
        done = cxgw("send", f"127.0.0.1:{port}", "--sample", "MAR", *tls)
        assert done.returncode == 0, done.stderr
        assert "result: 2001 DIAMETER_SUCCESS" in done.stdout
        # RFC 6733 §13: the certificate must name the peer we meant
        done = cxgw("send", f"127.0.0.1:{port}", "--sample", "MAR", *tls, "--tls-name", "hss.primary.example")
        assert done.returncode == 1
        assert "certificate verify failed" in done.stderr or "names hss.partner.example, not hss.primary.example" in done.stderr
        # and plain TCP to a TLS port is no CEA, said in one line
        done = cxgw("send", f"127.0.0.1:{port}", "--sample", "MAR", "--timeout", "2")
        assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    finally:
        process.stop()


def test_against_freediameter(require_program):
    require_program("freeDiameterd")
    from gateway.testing.freediameter import FreeDiameter

    with FreeDiameter("fd.example", "example", accept_realms=["localdomain"]) as fd:
        done = cxgw("send", f"127.0.0.1:{fd.port}", "--sample", "DWR")
        assert done.returncode == 0, done.stderr + fd.log_tail()
        assert "result: 2001 DIAMETER_SUCCESS (Result-Code) from fd.example" in done.stdout
        # a MAR for freeDiameter itself: it has no Cx application (docs/interop.md)
        done = cxgw("send", f"127.0.0.1:{fd.port}", "--sample", "MAR", "--destination-realm", "example",
                    "--destination-host", "fd.example")
        assert done.returncode == 1
        assert "result: 3007 DIAMETER_APPLICATION_UNSUPPORTED" in done.stdout


def test_a_broken_answer_is_reported_not_a_traceback():
    """A peer whose CEA is fine but whose MAA has an AVP overrunning the message."""
    from cx_codec import decode
    from gateway.peer.capabilities import Application, LocalIdentity, build_cea
    from gateway.transport.framing import Framer

    def serve(server: socket.socket) -> None:
        conn, _ = server.accept()
        with conn:
            framer, messages = Framer(), []
            while len(messages) < 2:
                data = conn.recv(65536)
                if not data:
                    return
                messages += framer.feed(data)
                if len(messages) == 1:
                    local = LocalIdentity("evil.example", "example", applications=(Application(16777216, 10415),))
                    conn.sendall(build_cea(local, decode(messages[0]), 2001))
            request = messages[1]
            avp = (264).to_bytes(4, "big") + bytes([0x40]) + (200).to_bytes(3, "big") + b"evil"  # says 200 bytes
            body = avp
            header = bytes([1]) + (20 + len(body)).to_bytes(3, "big") + bytes([request[4] & 0x7F]) + request[5:20]
            conn.sendall(header + body)
            conn.recv(65536)  # the DPR; no DPA

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        thread = threading.Thread(target=serve, args=(server,), daemon=True)
        thread.start()
        done = cxgw("send", f"127.0.0.1:{server.getsockname()[1]}", "--sample", "MAR", "--timeout", "2")
        thread.join(5)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "result: none (unreadable answer:" in done.stdout
    assert "verdict: invalid: 5014" in done.stdout
    assert "instead of sending the DPA (after the answers; ignored)" in done.stderr


def test_origin_fixed_up_unless_kept(tcp_hss):
    """Session-Id begins with the sender's identity (RFC 6733 §8.8): ours, or the sample's
    with --keep-origin; the answer echoes it."""
    port, _ = tcp_hss

    def session_id(*extra: str) -> str:
        done = cxgw("send", f"127.0.0.1:{port}", "--sample", "MAR", "--json", *extra)
        (answer,) = [json.loads(line) for line in done.stdout.splitlines()]
        return next(avp["value"] for avp in answer["avps"] if avp["name"] == "Session-Id")

    assert session_id().startswith("cxgw-send.localdomain;")
    assert session_id("--origin-host", "probe.partner.example", "--origin-realm", "partner.example").startswith(
        "probe.partner.example;")
    assert session_id("--keep-origin") == "scscf.partner.example;1700000000;4"
