"""The shipped loopback examples as real `cxgw gateway` processes: the primary core
(gateway/examples/primary-core.toml: primary + hss) and the partner core
(partner-core.toml), provisioned with `cxgw provision` as an operator would, and an
S-CSCF (a raw peer) registering a migrated user through both.

The examples run as shipped except for their ports (the OS picks them here: port 0, and
the partner is pointed at the port the primary got) and where their SQLite files live.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.web.client import Agent, readBody

from cx_codec import answer_for, decode
from cx_codec.commands import MultimediaAuthRequest, ServerAssignmentRequest, new_session_id
from gateway.testing.diamtest import RawPeer
from gateway.testing.isim import Isim
from gateway.testing.process import GatewayProcess, provision, until

# twisted.web's Agent response transports have no abortConnection; readBody warns about it
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")
EXAMPLES = Path(__file__).resolve().parents[2] / "gateway" / "examples"
K, OPC = "465b5ce8b199b49faa5f0a2ee238a6bc", "cd63cb71954a9f4e48a5994e37a02baf"
SCSCF = "scscf.partner.example"
LISTENING = r"listening on 127\.0\.0\.1:(\d+) \(tcp\)"


async def _scscf(port: int) -> RawPeer:
    """An S-CSCF (a raw peer) connected to the partner gateway, its CER answered 2001."""
    scscf = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), RawPeer())
    cea = await scscf.exchange_cer(SCSCF, "partner.example", vendor_specific_application_id=[
        {"vendor_id": 10415, "auth_application_id": 16777216}], auth_application_id=[])
    assert cea.result_code == 2001
    return scscf


async def _authenticated(scscf: RawPeer, identities: dict[str, str], hop: int) -> None:
    """A MAR for the inbound identities: 2001 with them, and a vector the ISIM accepts."""
    scscf.send(MultimediaAuthRequest(
        hop_by_hop=hop, end_to_end=hop, session_id=new_session_id(SCSCF), origin_host=SCSCF,
        origin_realm="partner.example", destination_realm="partner.example", user_name=identities["impi"],
        public_identity=identities["impu"], sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"},
        sip_number_auth_items=1, server_name="sip:scscf.partner.example:6060",
    ).encode())
    await scscf.next(timeout=10.0)
    answer = decode(scscf.messages[-1])
    assert answer.result_code == 2001 and answer["User-Name"] == identities["impi"], answer
    item = answer.find("SIP-Auth-Data-Item")
    authenticate = bytes(item.get("SIP-Authenticate"))
    response = Isim(bytes.fromhex(K), bytes.fromhex(OPC)).challenge(authenticate[:16], authenticate[16:])
    assert response.result == "ok" and response.res == bytes(item.get("SIP-Authorization"))
    assert identities["outbound"].encode() not in scscf.messages[-1]


async def http_get(port: int, path: str) -> tuple[int, str]:
    response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}{path}".encode())
    return response.code, (await readBody(response)).decode()


def _copy(name: str, folder: Path, **ports: int) -> Path:
    """An example with its listen and metrics ports set to 0 (and, for the partner, the
    primary's port), next to its store in ``folder``."""
    text = (EXAMPLES / name).read_text()
    text = re.sub(r"(?m)^port = \d+", "port = 0", text, count=0)
    if "primary_port" in ports:  # the [[peers]] entry of gw.primary.example
        text = re.sub(r'(host = "gw\.primary\.example"\s*\nrealm = "primary\.example"\s*\naddress = "127\.0\.0\.1"[^\n]*\n)(port = 0\n)?',
                      rf"\1port = {ports['primary_port']}\n", text)
    path = folder / name
    path.write_text(text)
    return path


def _provision(folder: Path, primary_db: str = "primary-core.sqlite", partner_db: str = "partner-core.sqlite") -> dict[str, str]:
    primary, partner = str(folder / primary_db), str(folder / partner_db)
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
    return {"impi": inbound["inbound_impi"], "impu": inbound["inbound_impu"], "outbound": outbound["outbound_impi"]}


@pytest_twisted.ensureDeferred
async def test_the_loopback_examples_register_a_migrated_user(tmp_path):
    identities = _provision(tmp_path)
    primary = GatewayProcess(str(_copy("primary-core.toml", tmp_path)))
    partner = None
    scscf = None
    try:
        primary_port = int((await until(lambda: primary.find(LISTENING), "the primary's port", primary)).group(1))
        partner = GatewayProcess(str(_copy("partner-core.toml", tmp_path, primary_port=primary_port)))
        partner_port = int((await until(lambda: partner.find(LISTENING), "the partner's port", partner)).group(1))
        await until(lambda: partner.find(r"peer gw\.primary\.example: open"), "the interconnect", partner)
        scscf = await _scscf(partner_port)
        await _authenticated(scscf, identities, 9)
        # what an operator sees: the translation counted, counted on the relay's fast path too
        http = int((await until(lambda: partner.find(r"http://127\.0\.0\.1:(\d+)/"), "/metrics", partner)).group(1))
        code, metrics = await http_get(http, "/metrics")
        assert code == 200
        assert 'cxgw_translations_total{role="partner",result="forwarded"} 1' in metrics
        assert 'diameter_messages_total{peer="scscf.partner.example",direction="out",command="MAR/MAA",result="2001"} 1' in metrics
        # the S-CSCF registers the user (SAR); a revocation by `cxgw provision` in another
        # process reaches the running partner gateway, which sends an RTR (TS 29.228 §6.1.3)
        scscf.send(ServerAssignmentRequest(
            hop_by_hop=10, end_to_end=10, session_id=new_session_id(SCSCF), origin_host=SCSCF,
            origin_realm="partner.example", destination_realm="partner.example", user_name=identities["impi"],
            public_identity=[identities["impu"]], server_name="sip:scscf.partner.example:6060",
            server_assignment_type=1, user_data_already_available=0,
        ).encode())
        await scscf.next(timeout=10.0)
        assert decode(scscf.messages[-1]).result_code == 2001
        provision(str(tmp_path / "partner-core.sqlite"), "binding", "revoke", identities["impi"],
                  "--direction", "inbound")
        rtr = await scscf.next(timeout=10.0)
        assert rtr.command_code == 304 and rtr["User-Name"] == identities["impi"]
        scscf.send(answer_for(rtr, origin_host=SCSCF, origin_realm="partner.example", result_code=2001).encode())
        # SIGTERM to the primary: the partner says why it is degraded
        primary.process.send_signal(signal.SIGTERM)
        await until(lambda: primary.process.poll() is not None, "the primary to exit", primary)
        assert primary.process.returncode == 0

        async def degraded() -> dict:
            return json.loads((await http_get(http, "/health"))[1])

        health = await degraded()
        for _ in range(100):
            if health["status"] == "degraded":
                break
            health = await degraded()
        assert health["status"] == "degraded", health
        assert any("primary.example" in problem and "gw.primary.example" in problem for problem in health["problems"])
        partner.process.send_signal(signal.SIGTERM)
        await until(lambda: partner.process.poll() is not None, "the partner to exit", partner)
        assert partner.process.returncode == 0
    finally:
        if scscf is not None and scscf.connected:
            scscf.transport.abortConnection()
        for process in (partner, primary):
            if process is not None:
                process.stop()


@pytest_twisted.ensureDeferred
async def test_the_tls_examples_register_a_migrated_user_over_mutually_authenticated_tls(tmp_path):
    """primary.toml and partner.toml: the interconnect over TLS (RFC 6733 §13), each side's
    certificate checked against its Diameter identity, with lab certificates from `cxgw certs`."""
    subprocess.run([sys.executable, "-m", "gateway.cli", "certs", str(tmp_path / "tls"), "gw.partner.example",
                    "gw.primary.example"], check=True, capture_output=True, timeout=60)
    identities = _provision(tmp_path, "primary.sqlite", "partner.sqlite")
    primary = GatewayProcess(str(_copy("primary.toml", tmp_path)))
    partner = scscf = None
    try:
        tls_port = int((await until(lambda: primary.find(r"listening on 127\.0\.0\.1:(\d+) \(tls\)"),
                                    "the primary's TLS port", primary)).group(1))
        partner = GatewayProcess(str(_copy("partner.toml", tmp_path, primary_port=tls_port)))
        partner_port = int((await until(lambda: partner.find(LISTENING), "the partner's port", partner)).group(1))
        await until(lambda: partner.find(r"peer gw\.primary\.example: open"), "the TLS interconnect", partner)
        scscf = await _scscf(partner_port)
        await _authenticated(scscf, identities, 3)
    finally:
        if scscf is not None and scscf.connected:
            scscf.transport.abortConnection()
        for process in (partner, primary):
            if process is not None:
                process.stop()
