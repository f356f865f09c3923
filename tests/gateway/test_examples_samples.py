"""Every example answers every built-in sample request sensibly (`cxgw send`): the three
loopback ones, and the two TLS ones after `cxgw certs`.

The examples run as real `cxgw gateway` processes, as shipped except for their ports (the OS
picks them: port 0, and a peer is pointed at the port its process got) and where their
SQLite files live. `cxgw send` sends every request sample of `cxgw decode --sample list`
in one connection, as the peer each example expects (an S-CSCF of partner.example for the
relay and the partner core, the partner gateway for the primary core). No answer may be a
3002 for lack of a route; the stores are empty, so the sample user is unknown (5001).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cx_codec.samples import BUILDERS
from gateway.testing.process import GatewayProcess

EXAMPLES = Path(__file__).resolve().parents[2] / "gateway" / "examples"
LISTENING = r"listening on 127\.0\.0\.1:(\d+) \(tcp\)"
LISTENING_TLS = r"listening on 127\.0\.0\.1:(\d+) \(tls\)"
REQUESTS = [name for name, build in BUILDERS.items() if build().is_request and name not in ("CER", "DPR")]
USER_UNKNOWN = (5001, True)  # Experimental-Result DIAMETER_ERROR_USER_UNKNOWN, TS 29.229 §6.2.2.1
UNSUPPORTED = (3001, False)  # DIAMETER_COMMAND_UNSUPPORTED, RFC 6733 §7.1.3
SUCCESS = (2001, False)
# sample -> (result code, experimental?) per example; the roles' rules as the README states them
EXPECTED: dict[str, dict[str, tuple[int, bool]]] = {
    # the relay hands everything for partner.example to the partner HSS (the hss role here)
    "relay": {"UAR": USER_UNKNOWN, "SAR": USER_UNKNOWN, "LIR": USER_UNKNOWN, "MAR": USER_UNKNOWN,
              "MAR-resync": USER_UNKNOWN, "RTR": UNSUPPORTED, "PPR": UNSUPPORTED, "DWR": SUCCESS},
    # the partner role: the sample's inbound identity is not bound (steps 9-11 not done)
    "partner-core": {"UAR": USER_UNKNOWN, "SAR": USER_UNKNOWN, "LIR": USER_UNKNOWN, "MAR": USER_UNKNOWN,
                     "MAR-resync": USER_UNKNOWN, "RTR": UNSUPPORTED, "PPR": UNSUPPORTED, "DWR": SUCCESS},
    # the primary role serves MAR only, and says nothing of why a user is unknown
    "primary-core": {"UAR": UNSUPPORTED, "SAR": UNSUPPORTED, "LIR": UNSUPPORTED, "MAR": USER_UNKNOWN,
                     "MAR-resync": USER_UNKNOWN, "RTR": UNSUPPORTED, "PPR": UNSUPPORTED, "DWR": SUCCESS},
}

HSS_PARTNER = """
[node]
origin_host = "hss.partner.example"
origin_realm = "partner.example"
role = "hss"
applications = ["cx"]
[[listen]]
address = "127.0.0.1"
port = 0
[[peers]]
host = "relay.partner.example"
realm = "partner.example"
connect = false
[[routes]]
realm = "partner.example"
action = "local"
[store]
target = "hss-partner.sqlite"
"""


def wait_for(process: GatewayProcess, pattern: str, what: str, timeout: float = 30.0) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = process.find(pattern)
        if match:
            return match
        if process.process.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"no {what}:\n{''.join(process.lines[-30:])}")


def example(name: str, folder: Path, peer_ports: dict[str, int] | None = None) -> Path:
    """The example with its [[listen]] and [metrics] ports 0 and the given peers' ports;
    the other peers keep theirs (nothing listens there: they stay down)."""
    lines, section, host, set_ports = [], "", None, set()
    for line in (EXAMPLES / name).read_text().splitlines():
        if line.startswith("["):
            section, host = line.split("#")[0].strip(), None
        elif line.startswith("host = "):
            host = line.split('"')[1]
            if section == "[[peers]]" and host in (peer_ports or {}):  # its port, given or by default
                lines += [line, f"port = {peer_ports[host]}"]  # type: ignore[index]
                set_ports.add(host)
                continue
        elif line.startswith("port = "):
            if section in ("[[listen]]", "[metrics]"):
                line = "port = 0"
            elif section == "[[peers]]" and host in (peer_ports or {}):
                continue  # given above
        lines.append(line)
    assert set_ports == set(peer_ports or {}), f"no port line for {set(peer_ports or {}) - set_ports} in {name}"
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


def send_all(port: int, folder: Path, origin_host: str, *tls: str) -> dict[str, dict]:
    """`cxgw send --json` of every request sample in one connection: answers by sample."""
    requests = folder / "requests.hex"
    requests.write_text("".join(BUILDERS[name]().encode().hex() + "\n" for name in REQUESTS))
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "send", f"127.0.0.1:{port}", str(requests), "--json",
         "--origin-host", origin_host, "--origin-realm", "partner.example", "--timeout", "10", *tls],
        capture_output=True, text=True, timeout=120,
    )
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(answers) == len(REQUESTS), done.stderr
    assert done.returncode == 1, "some answers are errors (unknown user), so the exit status is 1"
    return dict(zip(REQUESTS, answers, strict=True))


def check(answers: dict[str, dict], expected: dict[str, tuple[int, bool]]) -> None:
    assert set(expected) == set(REQUESTS), "a new sample needs its expected answer here"
    for name, answer in answers.items():
        assert BUILDERS[name]().name.replace("Request", "Answer") == answer["command"]
        assert not (answer["result_code"] == 3002 and "no route" in (answer["error_message"] or "")), (name, answer)
        assert (answer["result_code"], answer["experimental"]) == expected[name], (name, answer)


@pytest.fixture
def processes():
    started: list[GatewayProcess] = []
    yield started
    for process in started:
        process.stop()


def test_relay_example_routes_every_sample(tmp_path, processes):
    backend_config = tmp_path / "hss-partner.toml"
    backend_config.write_text(HSS_PARTNER)
    backend = GatewayProcess(str(backend_config))
    processes.append(backend)
    backend_port = int(wait_for(backend, LISTENING, "listening HSS").group(1))
    relay = GatewayProcess(str(example("relay.toml", tmp_path, {"hss.partner.example": backend_port})))
    processes.append(relay)
    port = int(wait_for(relay, LISTENING, "listening relay").group(1))
    wait_for(relay, r"peer hss\.partner\.example: open", "connection to the partner HSS")
    check(send_all(port, tmp_path, "scscf.partner.example"), EXPECTED["relay"])


def test_core_examples_answer_every_sample(tmp_path, processes):
    primary = GatewayProcess(str(example("primary-core.toml", tmp_path)))
    processes.append(primary)
    primary_port = int(wait_for(primary, LISTENING, "listening primary core").group(1))
    partner = GatewayProcess(str(example("partner-core.toml", tmp_path, {"gw.primary.example": primary_port})))
    processes.append(partner)
    partner_port = int(wait_for(partner, LISTENING, "listening partner core").group(1))
    wait_for(partner, r"peer gw\.primary\.example: open", "the partner core connected to the primary core")
    check(send_all(partner_port, tmp_path, "scscf.partner.example"), EXPECTED["partner-core"])
    # the primary core as its partner gateway sees it: a second connection from gw.partner.example
    # would lose the election to the open one (RFC 6733 §5.6.4), so the partner core stops first
    partner.stop()
    wait_for(primary, r"peer gw\.partner\.example: down", "the partner core gone")
    check(send_all(primary_port, tmp_path, "gw.partner.example"), EXPECTED["primary-core"])


def test_tls_examples_answer_every_sample(tmp_path, processes):
    """primary.toml and partner.toml as their headers say: `cxgw certs` first; the S-CSCF
    on TCP to the partner, the partner gateway (here `cxgw send` with its certificate) on
    TLS to the primary."""
    from gateway.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["certs", str(tmp_path / "tls"), "gw.partner.example", "gw.primary.example"]) == 0
    primary = GatewayProcess(str(example("primary.toml", tmp_path)))
    processes.append(primary)
    primary_port = int(wait_for(primary, LISTENING_TLS, "listening primary").group(1))
    partner = GatewayProcess(str(example("partner.toml", tmp_path, {"gw.primary.example": primary_port})))
    processes.append(partner)
    partner_port = int(wait_for(partner, LISTENING, "listening partner").group(1))
    wait_for(partner, r"peer gw\.primary\.example: open", "the partner connected to the primary over TLS")
    check(send_all(partner_port, tmp_path, "scscf.partner.example"), EXPECTED["partner-core"])
    partner.stop()
    wait_for(primary, r"peer gw\.partner\.example: down", "the partner gone")
    pki = tmp_path / "tls"
    tls = ("--tls-cert", str(pki / "gw.partner.example.pem"), "--tls-key", str(pki / "gw.partner.example.key"),
           "--ca", str(pki / "interconnect-ca.pem"))
    check(send_all(primary_port, tmp_path, "gw.partner.example", *tls), EXPECTED["primary-core"])
