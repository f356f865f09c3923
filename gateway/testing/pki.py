"""A throwaway PKI for tests and demos: a CA, certificates it issues, PEM files.

Interconnect TLS (RFC 6733 §13) needs certificates on both sides whose names are the
peers' Diameter identities; tests make them here rather than shipping any.
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.config import TlsConfig

KeyAndCert = tuple[Any, x509.Certificate]


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return builder.not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(
        now + datetime.timedelta(days=30)
    )


def make_ca(cn: str = "Interconnect Test CA") -> KeyAndCert:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    )
    return key, _validity(builder).sign(key, hashes.SHA256())


def make_cert(ca: KeyAndCert, cn: str, dns: list[str] | None = None) -> KeyAndCert:
    """A certificate for ``cn`` issued by ``ca``; ``dns`` adds subjectAltName DNS names."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
    )
    if dns is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    return key, _validity(builder).sign(ca_key, hashes.SHA256())


def write_identity(
    directory: Path, stem: str, key: Any, cert: x509.Certificate, ca_cert: x509.Certificate, verify: bool = True
) -> TlsConfig:
    """PEM files for one node and the TlsConfig pointing at them."""
    cert_path = directory / f"{stem}.pem"
    key_path = directory / f"{stem}.key"
    ca_path = directory / f"{stem}-ca.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return TlsConfig(cert_path, key_path, (ca_path,), verify)
