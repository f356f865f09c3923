"""`cxgw gateway --config`: the real process, driven from outside.

A server node (in the test's reactor) answers MARs; the gateway process relays to it; a
client node sends through the gateway. Then /metrics and /health, a SIGHUP that adds a
route, and SIGTERM: the gateway sends DPR and exits 0.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap

import pytest
import pytest_twisted
from twisted.internet import reactor
from twisted.web.client import Agent, readBody

from cx_codec import answer_for, decode
from cx_codec.commands import MultimediaAuthRequest, new_session_id
from gateway.node import DiameterNode
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.routing.table import Route, RouteAction, RouteTarget
from gateway.settings import PeerSettings, Timers
from gateway.testing.process import GatewayProcess, until

CX = (Application(16777216, 10415),)
# twisted.web's Agent response transports have no abortConnection; readBody warns about it
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


class Answering:
    def handle_request(self, data: bytes, peer: object) -> bytes:
        request = decode(data)
        return answer_for(
            request, origin_host="hss.primary.example", origin_realm="primary.example",
            result_code=2001, user_name=request["User-Name"],
        ).encode()


def mar(realm: str) -> bytes:
    return MultimediaAuthRequest(
        hop_by_hop=0x1234, end_to_end=0x5678, session_id=new_session_id("client.partner.example"),
        origin_host="client.partner.example", origin_realm="partner.example", destination_realm=realm,
        user_name="alice@primary.example", public_identity="sip:alice@primary.example",
        sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"}, sip_number_auth_items=1,
        server_name="sip:scscf.partner.example",
    ).encode()


async def http_get(port: int, path: str) -> tuple[int, str]:
    response = await Agent(reactor).request(b"GET", f"http://127.0.0.1:{port}{path}".encode())
    body = await readBody(response)
    return response.code, body.decode()


@pytest_twisted.ensureDeferred
async def test_gateway_process_relays_reports_reloads_and_stops_gracefully(tmp_path):
    server = DiameterNode(
        LocalIdentity("hss.primary.example", "primary.example", applications=CX), reactor=reactor,
        peers=[PeerSettings("relay.example", "example", connect=False)], timers=Timers(twinit=6),
        routes=[Route("other.example", 16777216, RouteAction.LOCAL)],  # it serves this realm too
    )
    server.applications[16777216] = Answering()
    server_port = server.listen(0)
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
        port = {server_port.getHost().port}
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
    """))
    gateway = GatewayProcess(str(config))
    client = None
    try:
        listen = await until(lambda: gateway.find(r"listening on 127\.0\.0\.1:(\d+)"), "the Diameter port", gateway)
        metrics = await until(lambda: gateway.find(r"http://127\.0\.0\.1:(\d+)/"), "the metrics port", gateway)
        client = DiameterNode(
            LocalIdentity("client.partner.example", "partner.example", applications=CX), reactor=reactor,
            peers=[PeerSettings("relay.example", "example", "127.0.0.1", int(listen.group(1)))],
            routes=[Route("*", 16777216, RouteAction.PROXY, [RouteTarget("relay.example")])],
            timers=Timers(twinit=6, tx=5),
        )
        client.start()
        await until(lambda: client.peers["relay.example"].available, "client connected to the gateway", gateway)
        await until(lambda: server.peers["relay.example"].available, "gateway connected to the server", gateway)
        # RFC 6733 §2.4: the relay role advertises the Relay-Application-Id, and Cx
        assert {16777216, 0xFFFFFFFF} <= client.peers["relay.example"].capabilities.application_ids

        answer = decode(await client.send_request(mar("primary.example")))
        assert answer.result_code == 2001
        assert answer["User-Name"] == "alice@primary.example"

        refused = decode(await client.send_request(mar("other.example")))
        assert refused.result_code == 3002 and refused.is_error

        code, body = await http_get(int(metrics.group(1)), "/metrics")
        assert code == 200
        assert 'diameter_peer_state{peer="hss.primary.example",state="I-Open"} 1' in body
        assert re.search(r'diameter_messages_total\{peer="hss.primary.example",direction="in",command="MAR/MAA",result="2001"\} 1', body)
        assert 'diameter_answers_generated_total{result="3002"} 1' in body
        code, body = await http_get(int(metrics.group(1)), "/health")
        assert code == 200 and "hss.primary.example" in body

        # SIGHUP: a route for other.example appears without dropping the open connections
        config.write_text(config.read_text().replace(
            '[metrics]', '[[routes]]\nrealm = "other.example"\naction = "relay"\npeers = ["hss.primary.example"]\n[metrics]'
        ))
        gateway.process.send_signal(signal.SIGHUP)
        await until(lambda: gateway.find(r"reloaded .*routes now 2"), "the reload", gateway)
        answer = decode(await client.send_request(mar("other.example")))
        assert answer.result_code == 2001, answer.get("Error-Message")
        assert client.peers["relay.example"].available and server.peers["relay.example"].available

        # SIGTERM: DPR to both peers (they answer DPA and go to Closed), exit status 0
        gateway.process.send_signal(signal.SIGTERM)
        status = await until(lambda: gateway.process.poll() is not None and [gateway.process.returncode],
                             "the gateway to exit", gateway)
        assert status == [0]
        assert server.peers["relay.example"].state == "Closed"
    finally:
        gateway.stop()
        if client is not None:
            await client.stop()
        await server.stop()  # closes its listening port too


def test_invalid_configuration_names_the_key_and_exits_2(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[node]\norigin_host = "gw.example"\norigin_realm = "example"\n[[peers]]\nhost = "p"\nrealm = "r"\nport = 70000\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "peers[0].port" in result.stderr and "70000" in result.stderr


@pytest.mark.parametrize("flag", ["--check"])
def test_check_only_validates(tmp_path, flag):
    config = tmp_path / "ok.toml"
    config.write_text('[node]\norigin_host = "gw.example"\norigin_realm = "example"\n[[listen]]\nport = 0\n')
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config), flag], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


# --- the log a operator reads: one line to say it serves, one per failing series, one to say it stopped

CHATTER = re.compile(r"Factory starting|Starting factory|Stopping factory|_QuietSite|starting on \d+|Port \d+ Closed")


@pytest_twisted.ensureDeferred
async def test_log_says_once_why_a_peer_cannot_be_reached_then_that_it_opened(tmp_path):
    import socket

    refusing = socket.socket()
    refusing.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    port = refusing.getsockname()[1]
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
        port = {port}
        [metrics]
        port = 0
        [timers]
        tc = 1
        twinit = 6
        [logging]
        level = "debug"
    """))
    gateway = GatewayProcess(str(config))
    server = None
    try:
        serving = await until(lambda: gateway.find(
            r"relay\.example serving: realm example, roles relay; Diameter on 127\.0\.0\.1:(\d+) \(tcp\); "
            r"metrics and /health on http://127\.0\.0\.1:(\d+)/$"), "the serving line", gateway)
        assert serving.group(1) != "0" and serving.group(2) != "0"
        # several attempts, one warning
        await until(lambda: sum("(again)" in line for line in gateway.lines) >= 2, "two more attempts", gateway)
        warnings = [line for line in gateway.lines if " WARN " in line]
        assert len(warnings) == 1, warnings
        assert warnings[0].rstrip().endswith(
            f"peer hss.primary.example: cannot connect to 127.0.0.1:{port}: connection refused; "
            "retrying every 1 s at most (timers.tc)")
        assert not [line for line in gateway.lines if " INFO " in line and "reconnect in" in line]
        refusing.close()
        server = DiameterNode(
            LocalIdentity("hss.primary.example", "primary.example", applications=CX), reactor=reactor,
            peers=[PeerSettings("relay.example", "example", connect=False)], timers=Timers(twinit=6),
        )
        server.listen(port)
        await until(lambda: gateway.find(r"peer hss\.primary\.example: open \(I-Open\)"), "the peer open", gateway)
        # SIGHUP: [timers] is read at start only, and the reload says so rather than ignore it
        config.write_text(config.read_text().replace("tc = 1", "tc = 2").replace('level = "debug"', 'level = "info"'))
        gateway.process.send_signal(signal.SIGHUP)
        await until(lambda: gateway.find(r"reload: timers changed; they apply after a restart"), "the reload", gateway)
        gateway.process.send_signal(signal.SIGTERM)
        await until(lambda: gateway.process.poll() is not None, "the gateway to exit", gateway)
        gateway.reader.join(5)
        assert gateway.lines[-1].rstrip().endswith("relay.example has stopped (SIGTERM): peers disconnected, ports closed")
        assert not [line for line in gateway.lines if CHATTER.search(line)]
        assert sum(" WARN " in line for line in gateway.lines) == 2  # the connect failure, the reload
    finally:
        refusing.close()
        gateway.stop()
        if server is not None:
            await server.stop()


@pytest.mark.parametrize(("section", "key"), [
    ("listen", "[[listen]] port"), ("metrics", "[metrics] port"), ("provisioning", "[provisioning] port"),
])
def test_address_in_use_names_the_key_to_change(tmp_path, section, key):
    import socket

    (tmp_path / "api.token").write_text("cxgw-runner-test-token-0123456789\n")
    (tmp_path / "api.token").chmod(0o600)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {name: port if name == section else 0 for name in ("listen", "metrics", "provisioning")}
        config = tmp_path / "busy.toml"
        config.write_text(textwrap.dedent(f"""
            [node]
            origin_host = "hss.example"
            origin_realm = "example"
            role = "hss"
            [[listen]]
            address = "127.0.0.1"
            port = {ports["listen"]}
            [store]
            target = "hss.sqlite"
            [metrics]
            address = "127.0.0.1"
            port = {ports["metrics"]}
            [provisioning]
            address = "127.0.0.1"
            port = {ports["provisioning"]}
            token_file = "api.token"
        """))
        result = subprocess.run([sys.executable, "-m", "gateway.cli", "gateway", "--config", str(config)],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"cxgw gateway: {key} = {port} in {config}: address 127.0.0.1:{port} already in use; "
        "choose another port or stop the other process")
    assert "Traceback" not in result.stderr


@pytest_twisted.ensureDeferred
async def test_a_refused_capabilities_exchange_is_said_once_in_the_peers_words(tmp_path):
    """RFC 6733 §5.3.2: the CEA's Result-Code and Error-Message, once per series of Tc retries."""
    server = DiameterNode(  # knows no relay.example and admits no unknown peer: 3010
        LocalIdentity("hss.primary.example", "primary.example", applications=CX), reactor=reactor,
        peers=[], timers=Timers(twinit=6),
    )
    port = server.listen(0).getHost().port
    config = tmp_path / "gateway.toml"
    config.write_text(textwrap.dedent(f"""
        [node]
        origin_host = "relay.example"
        origin_realm = "example"
        [[peers]]
        host = "hss.primary.example"
        realm = "primary.example"
        address = "127.0.0.1"
        port = {port}
        [timers]
        tc = 1
        twinit = 6
        [logging]
        level = "debug"
    """))
    gateway = GatewayProcess(str(config))
    try:
        await until(lambda: sum("(again)" in line for line in gateway.lines) >= 2, "two more attempts", gateway)
        warnings = [line.rstrip() for line in gateway.lines if " WARN " in line]
        assert len(warnings) == 1, warnings
        assert warnings[0].endswith(
            "peer hss.primary.example: CEA 3010 DIAMETER_UNKNOWN_PEER: peer relay.example (realm example) is not "
            "configured; add it to [[peers]] or its realm to unknown_peers.accept_realms; "
            "retrying every 1 s at most (timers.tc)")
        assert gateway.find(r"serving: realm example, roles relay; Diameter on no port \(it only connects out\)")
    finally:
        gateway.stop()
        await server.stop()


def test_the_gateway_and_the_tests_run_on_uvloop():
    """``install_reactor`` puts Twisted's asyncio reactor on uvloop's event loop, in the
    process ``cxgw gateway`` runs; the tests' reactor runs on it too (tests/conftest.py)."""
    import uvloop

    assert isinstance(reactor._asyncioEventloop, uvloop.Loop)
    program = ("from gateway.runner import install_reactor; install_reactor(); "
               "from twisted.internet import reactor; print(type(reactor._asyncioEventloop))")
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "<class 'uvloop.Loop'>"
