"""[capture] in a real `cxgw gateway` relay process, read back with tshark.

A server node (in the test's reactor) answers MARs with IMS-AKA vectors; the gateway
relays between it and a client node, recording to a pcapng file; SIGTERM stops it (DPR,
FIN, the file flushed and closed); then tshark, told to decode both ports as Diameter,
must find every data frame a Diameter message, no malformed frame or expert warning, the
MARs and MAAs on both legs with their ids, and no key material.
"""

from __future__ import annotations

import signal
import subprocess
import textwrap

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from captures.recorder import MARKER
from cx_codec import answer_for, decode
from cx_codec.commands import MultimediaAuthRequest, new_session_id
from gateway.node import DiameterNode
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.routing.table import Route, RouteAction, RouteTarget
from gateway.settings import PeerSettings, Timers
from gateway.testing.process import GatewayProcess, until

CX = (Application(16777216, 10415),)
RAND, AUTN = bytes(range(16)), bytes(range(16, 32))
XRES, CK, IK = bytes(range(0xA0, 0xA8)), bytes(range(0xB0, 0xC0)), bytes(range(0xC0, 0xD0))
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


class Hss:
    def handle_request(self, data: bytes, peer: object) -> bytes:
        request = decode(data)
        return answer_for(
            request, origin_host="hss.primary.example", origin_realm="primary.example", result_code=2001,
            user_name=request["User-Name"], public_identity=request["Public-Identity"], sip_number_auth_items=1,
            sip_auth_data_item=[{
                "sip_item_number": 1, "sip_authentication_scheme": "Digest-AKAv1-MD5",
                "sip_authenticate": RAND + AUTN, "sip_authorization": XRES,
                "confidentiality_key": CK, "integrity_key": IK,
            }],
        ).encode()


def mar(index: int) -> bytes:
    return MultimediaAuthRequest(
        hop_by_hop=0, end_to_end=0x5678 + index, session_id=new_session_id("client.partner.example"),
        origin_host="client.partner.example", origin_realm="partner.example", destination_realm="primary.example",
        user_name="alice@primary.example", public_identity="sip:alice@primary.example",
        sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"}, sip_number_auth_items=1,
        server_name="sip:scscf.partner.example",
    ).encode()


def tshark(program: str, *args: str) -> list[str]:
    result = subprocess.run(
        [program, "-n", "-o", "tcp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.strip()]


@pytest_twisted.ensureDeferred
async def test_relay_records_both_legs_redacted_and_dissectable(tmp_path, require_program):
    program = require_program("tshark")
    server = DiameterNode(
        LocalIdentity("hss.primary.example", "primary.example", applications=CX), reactor=reactor,
        peers=[PeerSettings("relay.example", "example", connect=False)], timers=Timers(twinit=6),
    )
    server.applications[16777216] = Hss()
    server_port = server.listen(0).getHost().port
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        [node]
        origin_host = "relay.example"
        origin_realm = "example"
        [[listen]]
        port = 0
        [[peers]]
        host = "hss.primary.example"
        realm = "primary.example"
        address = "127.0.0.1"
        port = {server_port}
        [[peers]]
        host = "client.partner.example"
        realm = "partner.example"
        connect = false
        [[routes]]
        realm = "primary.example"
        action = "relay"
        peers = ["hss.primary.example"]
        [metrics]
        port = 0
        [timers]
        tc = 1
        twinit = 6
        [capture]
        file = "cx.pcapng"
    """))
    gateway = GatewayProcess(str(config))
    client = None
    sent: list[bytes] = []
    try:
        listen = await until(lambda: gateway.find(r"listening on 127\.0\.0\.1:(\d+)"), "the Diameter port", gateway)
        metrics = await until(lambda: gateway.find(r"http://127\.0\.0\.1:(\d+)/"), "the metrics port", gateway)
        await until(lambda: gateway.find(r"recording Diameter messages to .*cx\.pcapng"), "the capture", gateway)
        gateway_port = int(listen.group(1))
        client = DiameterNode(
            LocalIdentity("client.partner.example", "partner.example", applications=CX), reactor=reactor,
            peers=[PeerSettings("relay.example", "example", "127.0.0.1", gateway_port)],
            routes=[Route("*", 16777216, RouteAction.PROXY, [RouteTarget("relay.example")])],
            timers=Timers(twinit=6, tx=5),
        )
        client.start()
        await until(lambda: client.peers["relay.example"].available, "client connected to the gateway", gateway)
        await until(lambda: server.peers["relay.example"].available, "gateway connected to the server", gateway)
        answers = []
        for index in range(3):
            request = mar(index)
            sent.append(request)
            answer = decode(await client.send_request(request))
            assert answer.result_code == 2001
            answers.append(answer)
        response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{int(metrics.group(1))}/metrics".encode())
        assert "cxgw_capture_dropped_total 0" in (await readBody(response)).decode()

        gateway.process.send_signal(signal.SIGTERM)
        status = await until(lambda: gateway.process.poll() is not None and [gateway.process.returncode],
                             "the gateway to exit", gateway)
        assert status == [0]
    finally:
        gateway.stop()
        if client is not None:
            await client.stop()
        await server.stop()

    path = tmp_path / "cx.pcapng"
    decode_as = [arg for port in (gateway_port, server_port) for arg in ("-d", f"tcp.port=={port},diameter")]
    fields = ["tcp.srcport", "tcp.dstport", "diameter.cmd.code", "diameter.flags.request", "diameter.hopbyhopid",
              "diameter.endtoendid", "diameter.Session-Id"]
    args = ["-r", str(path), *decode_as, "-Y", "tcp.len > 0", "-T", "fields", "-E", "separator=\t"]
    rows = [dict(zip(fields, line.split("\t"), strict=True))
            for line in tshark(program, *args, *[a for f in fields for a in ("-e", f)])]
    assert rows and all(row["diameter.cmd.code"] for row in rows), rows  # every data frame is Diameter
    assert tshark(program, "-r", str(path), *decode_as, "-Y", '_ws.malformed || _ws.expert.severity >= "Warning"') == []
    # both legs: CER/CEA at the start, DPR/DPA at SIGTERM, on each
    for port in (gateway_port, server_port):
        leg = [int(row["diameter.cmd.code"]) for row in rows if port in (int(row["tcp.srcport"]), int(row["tcp.dstport"]))]
        assert leg[:2] == [257, 257] and leg[-2:] == [282, 282], leg
    for request, answer in zip(sent, answers, strict=True):
        session = decode(request)["Session-Id"]
        cx = [row for row in rows if row["diameter.Session-Id"] == session]
        assert [int(row["diameter.cmd.code"]) for row in cx] == [303] * 4
        assert [row["diameter.flags.request"] in ("1", "True") for row in cx] == [True, True, False, False]
        assert {int(row["diameter.endtoendid"], 16) for row in cx} == {answer.end_to_end}
        for port in (gateway_port, server_port):  # each leg: the answer carries its request's hop-by-hop id
            leg = {row["diameter.hopbyhopid"] for row in cx if port in (int(row["tcp.srcport"]), int(row["tcp.dstport"]))}
            assert len(leg) == 1
        assert int(cx[0]["tcp.dstport"]) == gateway_port and int(cx[1]["tcp.dstport"]) == server_port
        assert int(cx[2]["tcp.srcport"]) == server_port and int(cx[3]["tcp.srcport"]) == gateway_port
    raw = path.read_bytes()
    for secret in (RAND + AUTN, XRES, CK, IK):
        assert secret not in raw
    assert raw.count(MARKER * 2) >= 6 * 2  # the MAAs' SIP-Authenticate and CK and IK, on both legs
