"""Serving the provisioning API from ``cxgw gateway`` (``[provisioning]``).

The API opens its own connection to the SIP database named by ``[store]`` (an SQLite
connection in this process, or its own small PostgreSQL pool), so a long provisioning call
never queues behind the Cx requests, nor they behind it; a revocation it writes reaches the
Cx roles through the store's binding change log like one made by ``cxgw provision``.
HTTPS when ``[provisioning.tls]`` is set, with client certificates required when
``require_client_certificate`` is (mutual TLS); TLS 1.2 at least.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from OpenSSL import crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IListeningPort

from gateway.applications.storage import StoreAccess
from gateway.config import GatewayConfig, ProvisioningTlsConfig
from gateway.config.checks import read_token
from gateway.provisioning.http import ProvisioningResource, ProvisioningSite

# docs/openapi.json, through a link in this package so that an installed wheel carries it
OPENAPI_DOCUMENT = Path(__file__).with_name("openapi.json")
DEADLINE = 30.0  # seconds a provisioning call may take on PostgreSQL
THREADS = 2  # PostgreSQL connections of the API


def openapi_document() -> bytes:
    """docs/openapi.json as served at /v1/openapi.json (the same bytes)."""
    return OPENAPI_DOCUMENT.read_bytes()


def tls_context(tls: ProvisioningTlsConfig) -> ssl.CertificateOptions:
    """Our certificate (and chain) for HTTPS; with require_client_certificate, a client
    certificate issued by one of ca_certificates is required (mutual TLS)."""
    from gateway.transport.tls import _MINIMUM_VERSION, _load_key, load_certificates

    chain = load_certificates(tls.certificate)
    options: dict[str, Any] = {
        "privateKey": _load_key(tls.private_key, chain[0], tls.certificate),
        "certificate": chain[0],
        "extraCertChain": chain[1:],
        "raiseMinimumTo": _MINIMUM_VERSION,
    }
    if tls.require_client_certificate:
        cas = [ca for path in tls.ca_certificates for ca in load_certificates(path)]
        options["trustRoot"] = ssl.trustRootFromCertificates(
            [ssl.Certificate(crypto.X509.from_cryptography(ca)) for ca in cas]
        )
    return ssl.CertificateOptions(**options)


class ProvisioningServer:
    """The API's store, site and listening port; :meth:`close` after the port stopped."""

    def __init__(self, config: GatewayConfig, reactor: Any) -> None:
        from hss_store import is_postgres_url, open_store
        from hss_store.keywrap import MasterKey

        settings = config.provisioning
        assert settings is not None and config.store is not None  # the config checks see to it
        self.settings = settings
        self.reactor = reactor
        target = config.store.target
        options: dict[str, Any] = {"master_key": MasterKey.from_environment()}
        if is_postgres_url(target):
            options.update(timeout=DEADLINE, max_connections=THREADS)
        self.access = StoreAccess(open_store(target, **options), reactor, DEADLINE, THREADS)
        self.resource = ProvisioningResource(self.access, read_token(settings.token_file), openapi_document())
        self.site = ProvisioningSite(self.resource)
        self.port: IListeningPort | None = None

    def listen(self) -> IListeningPort:
        s = self.settings
        if s.tls is not None:
            self.port = self.reactor.listenSSL(s.port, self.site, tls_context(s.tls), interface=s.address)
        else:
            self.port = self.reactor.listenTCP(s.port, self.site, interface=s.address)
        return self.port

    def endpoint(self) -> str:
        """For the node's serving line: where the API listens, and how."""
        s = self.settings
        assert self.port is not None
        host = self.port.getHost()
        address = f"[{host.host}]" if ":" in host.host else host.host
        scheme = "https" if s.tls is not None else "http"
        mutual = " (client certificates required)" if s.tls is not None and s.tls.require_client_certificate else ""
        return f"provisioning API on {scheme}://{address}:{host.port}/v1/{mutual}"

    def close(self) -> None:
        self.access.close()
