"""TLS for Diameter (RFC 6733 §13): TLS from the first byte, mutual authentication.

RFC 6733 §13.1: TLS starts at connection set-up (port 5658), before CER/CEA; both sides
present a certificate, and a Diameter node checks that the peer's certificate belongs to
the Diameter identity it announces. Here:

- :func:`server_context` requires a client certificate signed by one of our CAs.
- :func:`client_context` presents our certificate, verifies the server's chain and, when
  ``verify_peer_identity`` is on, that the certificate names the peer we meant to reach
  (the configured ``tls_name``), during the handshake, so a wrong server never sees CER.
- :func:`peer_identity` and :func:`check_identity` let the node compare the names in the
  peer's certificate with the Origin-Host of its CER/CEA (the server side cannot know the
  client's identity before CER, so that check belongs to the node).

Names follow RFC 6125 §6.4.4: the subjectAltName DNS names; the subject CN only when the
certificate has no DNS name (freeDiameter's certificates often carry only CN = identity).
Matching is exact and case-insensitive; wildcard certificates are not accepted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtensionOID, NameOID
from OpenSSL import SSL, crypto
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from twisted.logger import Logger
from zope.interface import implementer

from gateway.config import TlsConfig

log = Logger()

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)
_MINIMUM_VERSION = ssl.TLSVersion.TLSv1_2  # RFC 6733 §13 asks for TLS 1.2 at least (RFC 8996)


class TlsSetupError(Exception):
    """A certificate or key file cannot be used."""


def load_certificates(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM file, in file order (leaf first for a chain)."""
    data = Path(path).read_bytes()
    blocks = _PEM_CERTIFICATE.findall(data)
    if not blocks:
        raise TlsSetupError(f"{path}: no PEM CERTIFICATE block; use a PEM certificate file")
    try:
        return [x509.load_pem_x509_certificate(block) for block in blocks]
    except ValueError as exc:
        raise TlsSetupError(
            f"{path}: unreadable certificate ({exc}); use a PEM certificate file"
        ) from exc


def _load_key(path: Path, certificate: x509.Certificate, certificate_path: Path) -> Any:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise TlsSetupError(
            f"{path}: unusable private key ({exc}); use an unencrypted PEM private key"
        ) from exc
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != certificate.public_key().public_bytes(*spki):
        raise TlsSetupError(
            f"{path}: this key does not belong to {certificate_path}; use the matching pair"
        )
    return key


def _options(tls: TlsConfig) -> ssl.CertificateOptions:
    """Our certificate (and its chain), the trusted CAs, TLS 1.2 or later."""
    chain = load_certificates(tls.certificate)
    cas = [ca for path in tls.ca_certificates for ca in load_certificates(path)]
    if not cas:
        raise TlsSetupError("tls.ca_certificates: no CA certificate; list the CAs of your peers")
    return ssl.CertificateOptions(
        privateKey=_load_key(tls.private_key, chain[0], tls.certificate),
        certificate=chain[0],  # cryptography objects: pyOpenSSL 24+ deprecates its own
        extraCertChain=chain[1:],
        trustRoot=ssl.trustRootFromCertificates(
            [ssl.Certificate(crypto.X509.from_cryptography(ca)) for ca in cas]
        ),
        raiseMinimumTo=_MINIMUM_VERSION,
    )


def server_context(tls: TlsConfig) -> ssl.CertificateOptions:
    """For ``listenSSL`` / ``TLSMemoryBIOFactory``: a client certificate is required."""
    return _options(tls)


def client_context(tls: TlsConfig, expected_name: str) -> IOpenSSLClientConnectionCreator:
    """For ``connectSSL`` / ``wrapClientTLS``: our certificate, the server's verified.

    With ``tls.verify_peer_identity`` the handshake also fails unless the server
    certificate names ``expected_name`` (the peer's ``tls_name``); the chain is always
    verified. SNI carries ``expected_name``.
    """
    return _DiameterClientTLS(_options(tls), expected_name, tls.verify_peer_identity)


@implementer(IOpenSSLClientConnectionCreator)
class _DiameterClientTLS:
    """Like ``optionsForClientTLS``, but with our name rules (CN when there is no DNS SAN)."""

    def __init__(
        self, options: ssl.CertificateOptions, expected_name: str, verify_name: bool
    ) -> None:
        self.expected_name = expected_name
        self._context = options.getContext()  # one context per peer, so this is ours to change
        if verify_name:
            self._context.set_verify(SSL.VERIFY_PEER, self._verify)

    def _verify(
        self, connection: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int
    ) -> bool:
        if not ok or depth != 0:
            return bool(ok)  # chain errors are OpenSSL's verdict
        names = certificate_names(cert.to_cryptography())
        if check_identity(names, self.expected_name):
            return True
        log.warn(
            "TLS peer certificate names {names} do not include {expected}; closing "
            "(set the peer's tls_name to a name in its certificate)",
            names=sorted(names),
            expected=self.expected_name,
        )
        return False

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        try:
            connection.set_tlsext_host_name(self.expected_name.encode("ascii"))
        except (UnicodeEncodeError, ValueError):
            pass  # not a host name: no SNI
        connection.set_connect_state()
        return connection


def certificate_names(cert: x509.Certificate) -> set[str]:
    """The identities a certificate asserts (RFC 6125 §6.4.4): DNS SANs, else the CN(s)."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        dns = {str(name) for name in san.value.get_values_for_type(x509.DNSName)}
    except x509.ExtensionNotFound:
        dns = set()
    if dns:
        return dns
    return {str(attr.value) for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)}


def peer_identity(transport: Any) -> set[str]:
    """The names in the peer certificate of a TLS transport (empty without one)."""
    get = getattr(transport, "getPeerCertificate", None)
    cert = get() if get is not None else None
    if cert is None:
        return set()
    if isinstance(cert, crypto.X509):
        cert = cert.to_cryptography()
    return certificate_names(cert)


def _normalise(name: str) -> str:
    return name.rstrip(".").lower()


def check_identity(names: Iterable[str], origin_host: str) -> bool:
    """Does one of the certificate names equal the Origin-Host? Exact, case-insensitive.

    A trailing dot is ignored; a wildcard name ("*.b.net") never matches.
    """
    wanted = _normalise(origin_host)
    return bool(wanted) and any("*" not in n and _normalise(n) == wanted for n in names)
