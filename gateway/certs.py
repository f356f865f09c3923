"""`cxgw certs DIR NAME...`: lab certificates for the TLS examples and trials.

A CA of its own (``interconnect-ca.pem``) and, for each Diameter identity NAME, a
certificate whose common name and subjectAltName are that identity (RFC 6733 §13: the node
checks the peer's certificate against its Origin-Host), as ``NAME.pem`` and ``NAME.key``.
For a lab only: in production each operator's PKI issues these.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", help="where to write the PEM files (created if absent)")
    parser.add_argument("names", nargs="+", metavar="NAME", help="Diameter identities, e.g. gw.partner.example")


def run(args: argparse.Namespace) -> int:
    from gateway.config.checks import is_diameter_identity
    from gateway.testing.pki import make_ca, make_cert

    bad = [name for name in args.names if not is_diameter_identity(name)]
    if bad:
        print(f"cxgw certs: {bad[0]!r} is not a Diameter identity (a host name such as gw.partner.example)",
              file=sys.stderr)
        return 2
    directory = Path(args.directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca = make_ca("cxgw lab interconnect CA")
    _write(directory / "interconnect-ca", *ca, private=False)
    for name in args.names:
        _write(directory / name, *make_cert(ca, name, [name]), private=True)
    print(f"{directory}: interconnect-ca.pem and, for {', '.join(args.names)}, NAME.pem and NAME.key (lab only)")
    return 0


def _write(stem: Path, key: object, cert: object, private: bool) -> None:
    stem.with_suffix(stem.suffix + ".pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))  # type: ignore[attr-defined]
    if private:
        key_path = stem.with_suffix(stem.suffix + ".key")
        key_path.write_bytes(key.private_bytes(  # type: ignore[attr-defined]
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        key_path.chmod(0o600)
