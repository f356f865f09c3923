"""gateway.transport.tls: mutual authentication over a real TLS listener on 127.0.0.1:0.

A throwaway CA and certificates are made with `cryptography` per test session.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, protocol, reactor, ssl
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.interfaces import IHandshakeListener
from zope.interface import implementer

from gateway.config import TlsConfig
from gateway.testing.pki import make_ca, make_cert, write_identity
from gateway.transport.tls import (
    TlsSetupError,
    certificate_names,
    check_identity,
    client_context,
    peer_identity,
    server_context,
)

# --- a throwaway PKI (gateway.testing.pki)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = make_ca()
    rogue_ca = make_ca("Rogue CA")
    identities = {
        "server": make_cert(ca, "hss.b.example", ["hss.b.example"]),
        "client": make_cert(ca, "gw.a.example", ["gw.a.example"]),
        "evil_server": make_cert(ca, "evil.b.example", ["evil.b.example"]),
        "evil_client": make_cert(ca, "evil.a.example", ["evil.a.example"]),
        "rogue_client": make_cert(rogue_ca, "gw.a.example", ["gw.a.example"]),
        "cn_only_server": make_cert(ca, "hss.b.example"),
    }
    configs = {
        name: write_identity(directory, name, key, cert, ca[1]) for name, (key, cert) in identities.items()
    }
    configs["ca_cert"] = ca[1]
    configs["dir"] = directory
    return configs


# --- a TLS server and client on loopback


@implementer(IHandshakeListener)
class Server(protocol.Protocol):
    """Echoes; records the client's certificate names after the handshake."""

    def __init__(self, record):
        self.record = record

    def handshakeCompleted(self):
        self.record["server_names"] = peer_identity(self.transport)

    def dataReceived(self, data):
        self.transport.write(data)

    def connectionLost(self, reason=protocol.connectionDone):
        self.record["server_reason"] = reason
        self.record["server_lost"].callback(None)


@implementer(IHandshakeListener)
class Client(protocol.Protocol):
    """Sends a line, waits for its echo, closes."""

    def __init__(self, record):
        self.record = record
        self.received = b""

    def connectionMade(self):
        self.transport.write(b"CER\n")

    def handshakeCompleted(self):
        self.record["client_names"] = peer_identity(self.transport)

    def dataReceived(self, data):
        self.received += data
        if self.received == b"CER\n":
            self.transport.loseConnection()

    def connectionLost(self, reason=protocol.connectionDone):
        self.record["echo"] = self.received
        self.record["client_reason"] = reason
        self.record["client_lost"].callback(None)


@defer.inlineCallbacks
def exchange(server_tls, client_creator):
    """One connection; returns what each side saw. Stops the listener."""
    record = {"server_lost": defer.Deferred(), "client_lost": defer.Deferred()}
    factory = protocol.Factory.forProtocol(lambda: Server(record))
    port = reactor.listenSSL(0, factory, server_context(server_tls), interface="127.0.0.1")
    try:
        endpoint = wrapClientTLS(client_creator, TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port))
        yield connectProtocol(endpoint, Client(record))
        yield defer.gatherResults([record["server_lost"], record["client_lost"]])
    finally:
        yield port.stopListening()
    return record


# --- the tests


@pytest_twisted.inlineCallbacks
def test_mutual_authentication(pki):
    record = yield exchange(pki["server"], client_context(pki["client"], "hss.b.example"))
    assert record["echo"] == b"CER\n"
    assert record["server_names"] == {"gw.a.example"}
    assert record["client_names"] == {"hss.b.example"}
    assert check_identity(record["server_names"], "GW.A.example")  # Origin-Host of the CER
    assert check_identity(record["client_names"], "hss.b.example")  # Origin-Host of the CEA


@pytest_twisted.inlineCallbacks
def test_client_without_certificate_is_refused(pki):
    trust = ssl.Certificate.loadPEM(pki["server"].ca_certificates[0].read_bytes())
    no_cert = ssl.optionsForClientTLS("hss.b.example", trustRoot=trust)
    record = yield exchange(pki["server"], no_cert)
    assert record["echo"] == b""
    assert "server_names" not in record  # the server never completed a handshake
    assert record["client_reason"].check(ssl.SSL.Error)


@pytest_twisted.inlineCallbacks
def test_client_from_an_unknown_ca_is_refused(pki):
    rogue = pki["rogue_client"]
    # the rogue client trusts the real CA, so only the server's verdict matters
    record = yield exchange(pki["server"], client_context(rogue, "hss.b.example"))
    assert record["echo"] == b""
    assert "server_names" not in record


@pytest_twisted.inlineCallbacks
def test_server_with_the_wrong_name_is_refused_by_the_client(pki):
    record = yield exchange(pki["evil_server"], client_context(pki["client"], "hss.b.example"))
    assert record["echo"] == b""
    assert "client_names" not in record
    assert record["client_reason"].check(ssl.SSL.Error)


@pytest_twisted.inlineCallbacks
def test_without_identity_verification_only_the_chain_counts(pki):
    lax = TlsConfig(pki["client"].certificate, pki["client"].private_key, pki["client"].ca_certificates, False)
    record = yield exchange(pki["evil_server"], client_context(lax, "hss.b.example"))
    assert record["echo"] == b"CER\n"
    assert not check_identity(record["client_names"], "hss.b.example")  # the node's CEA check


@pytest_twisted.inlineCallbacks
def test_client_with_the_wrong_name_is_detected_by_check_identity(pki):
    record = yield exchange(pki["server"], client_context(pki["evil_client"], "hss.b.example"))
    assert record["echo"] == b"CER\n"  # TLS accepts any certificate of a trusted CA ...
    assert record["server_names"] == {"evil.a.example"}
    assert not check_identity(record["server_names"], "gw.a.example")  # ... the CER check does not


@pytest_twisted.inlineCallbacks
def test_cn_only_certificate_is_accepted_by_name(pki):
    record = yield exchange(pki["cn_only_server"], client_context(pki["client"], "hss.b.example"))
    assert record["echo"] == b"CER\n"
    assert record["client_names"] == {"hss.b.example"}


def test_certificate_names_rfc6125(pki):
    ca = make_ca()
    assert certificate_names(make_cert(ca, "cn.example", ["a.example", "b.example"])[1]) == {
        "a.example",
        "b.example",
    }  # DNS names present: the CN is not an identity
    assert certificate_names(make_cert(ca, "cn.example")[1]) == {"cn.example"}
    assert certificate_names(make_cert(ca, "cn.example", [])[1]) == {"cn.example"}


@pytest.mark.parametrize(
    ("names", "origin_host", "expected"),
    [
        ({"hss.b.example"}, "hss.b.example", True),
        ({"HSS.B.Example"}, "hss.b.example", True),
        ({"hss.b.example."}, "hss.b.example", True),
        ({"hss.b.example"}, "hss.b.example.", True),
        ({"other.b.example", "hss.b.example"}, "hss.b.example", True),
        ({"hss.b.example"}, "hss2.b.example", False),
        ({"b.example"}, "hss.b.example", False),
        ({"*.b.example"}, "hss.b.example", False),  # no wildcards
        ({"*.b.example"}, "*.b.example", False),
        (set(), "hss.b.example", False),
        ({""}, "", False),
    ],
)
def test_check_identity(names, origin_host, expected):
    assert check_identity(names, origin_host) is expected


def test_peer_identity_without_tls():
    class Plain:
        pass

    class NoCert:
        def getPeerCertificate(self):
            return None

    assert peer_identity(Plain()) == set() and peer_identity(NoCert()) == set()


def test_setup_errors_name_the_file(pki):
    good = pki["server"]
    with pytest.raises(TlsSetupError, match="does not belong to"):
        server_context(TlsConfig(good.certificate, pki["client"].private_key, good.ca_certificates))
    with pytest.raises(TlsSetupError, match="no PEM CERTIFICATE block"):
        server_context(TlsConfig(good.private_key, good.private_key, good.ca_certificates))
    with pytest.raises(TlsSetupError, match="unusable private key"):
        server_context(TlsConfig(good.certificate, good.certificate, good.ca_certificates))
