"""TLS between two nodes as RFC 6733 §13 has it: TLS from the first byte on its own port,
mutual certificate authentication, and each peer's certificate checked against the
Diameter identity it claims in its CER/CEA."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import reactor, task

from cx_codec import answer_for, decode
from cx_codec.commands import MultimediaAuthRequest, new_session_id
from gateway.config import TlsConfig
from gateway.node import DiameterNode
from gateway.peer.capabilities import Application, LocalIdentity
from gateway.routing.table import Route, RouteAction, RouteTarget
from gateway.runner import TlsPolicy
from gateway.settings import PeerSettings, Timers
from gateway.testing.pki import make_ca, make_cert, write_identity

CX = (Application(16777216, 10415),)
SERVER, CLIENT = "hss.primary.example", "gw.partner.example"


class Answering:
    def handle_message(self, request, peer):
        return answer_for(request, origin_host=SERVER, origin_realm="primary.example", result_code=2001)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    made = {
        "server": make_cert(ca, SERVER, [SERVER]),
        "client": make_cert(ca, CLIENT, [CLIENT]),
        "impostor": make_cert(ca, "someone-else.partner.example", ["someone-else.partner.example"]),
    }
    return {name: write_identity(directory, name, key, cert, ca[1]) for name, (key, cert) in made.items()}


def nodes(server_tls: TlsConfig, client_tls: TlsConfig | None):
    server = DiameterNode(
        LocalIdentity(SERVER, "primary.example", applications=CX), reactor=reactor,
        peers=[PeerSettings(CLIENT, "partner.example", connect=False)], timers=Timers(twinit=6, tc=0.3),
        tls=TlsPolicy(server_tls),
    )
    server.applications[16777216] = Answering()
    port = server.listen(0, tls=True)
    client = DiameterNode(
        LocalIdentity(CLIENT, "partner.example", applications=CX), reactor=reactor,
        peers=[PeerSettings(SERVER, "primary.example", "127.0.0.1", port.getHost().port, transport="tls")],
        routes=[Route("primary.example", 16777216, RouteAction.PROXY, [RouteTarget(SERVER)])],
        timers=Timers(twinit=6, tc=0.3, cea_timeout=2), tls=TlsPolicy(client_tls) if client_tls else None,
    )
    return server, client


async def settle(seconds: float) -> None:
    await task.deferLater(reactor, seconds, lambda: None)


async def until(condition, what, timeout=10.0):
    deadline = reactor.seconds() + timeout
    while not condition():
        if reactor.seconds() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await settle(0.02)


def mar() -> bytes:
    return MultimediaAuthRequest(
        session_id=new_session_id(CLIENT), origin_host=CLIENT, origin_realm="partner.example",
        destination_realm="primary.example", user_name="alice@primary.example",
        public_identity="sip:alice@primary.example", sip_auth_data_item={"sip_authentication_scheme": "Digest-AKAv1-MD5"},
        sip_number_auth_items=1, server_name="sip:scscf.partner.example",
    ).encode()


@pytest_twisted.ensureDeferred
async def test_mutual_tls_opens_and_carries_requests(pki):
    server, client = nodes(pki["server"], pki["client"])
    try:
        client.start()
        await until(lambda: client.peers[SERVER.lower()].available, "the TLS connection to open")
        assert server.peers[CLIENT.lower()].state == "R-Open"
        connection = server.peers[CLIENT.lower()].connection
        assert connection.transport.getPeerCertificate() is not None  # the client did authenticate
        answer = decode(await client.send_request(mar()))
        assert answer.result_code == 2001
    finally:
        await client.stop()
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_certificate_of_another_name_is_refused_with_3010(pki):
    # a valid certificate of the same CA, but not for the Origin-Host it claims in its CER
    server, client = nodes(pki["server"], pki["impostor"])
    refusals = []
    original = server._refuse
    server._refuse = lambda connection, cer, result, reason: (refusals.append((result, reason)), original(connection, cer, result, reason))
    try:
        client.start()
        await until(lambda: refusals, "the server to refuse the CER")
        assert refusals[0][0] == 3010 and "someone-else.partner.example" in refusals[0][1]
        await settle(0.3)
        assert not client.peers[SERVER.lower()].available
        assert server.peers[CLIENT.lower()].state == "Closed"
    finally:
        await client.stop()
        await server.stop()


@pytest_twisted.ensureDeferred
async def test_a_client_without_a_certificate_never_opens(pki):
    # a client that trusts the CA but has no certificate of its own: the handshake fails
    anonymous = TlsConfig(pki["client"].certificate, pki["client"].private_key, pki["client"].ca_certificates)
    server, client = nodes(pki["server"], anonymous)

    class NoClientCertificate(TlsPolicy):
        def client_context(self, expected_name):
            from twisted.internet import ssl

            authority = ssl.Certificate.loadPEM(anonymous.ca_certificates[0].read_bytes())
            return ssl.optionsForClientTLS(expected_name, trustRoot=authority)

    client.tls = NoClientCertificate(anonymous)
    try:
        client.start()
        await settle(1.5)
        assert not client.peers[SERVER.lower()].available
        assert server.peers[CLIENT.lower()].state == "Closed"
    finally:
        await client.stop()
        await server.stop()
