"""Self-signed OPC UA application certificates (OPC 10000-6 6.2.2): the client's own, and in
tests and the simulator a server's.

An OPC UA peer identifies an application by the URI in the certificate's subjectAltName, so the
certificate carries the application URI and the host name; the gateway reads the URI back from
the certificate and presents it as its own. Run as a command:

    python -m edgegw.certs --uri urn:plant-a:edgegw --cert client-cert.der --key client-key.pem
"""

from __future__ import annotations

import argparse
import datetime as dt
import socket
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def make_app_certificate(
    cert_path: str | Path,
    key_path: str | Path,
    application_uri: str,
    *,
    hostname: str | None = None,
    common_name: str = "edgegw",
    server: bool = False,
    days: int = 3650,
    key_bits: int = 2048,
) -> tuple[Path, Path]:
    """Write a DER certificate and a PEM (PKCS8, unencrypted) key; return their paths."""
    host = hostname or socket.gethostname()
    key = rsa.generate_private_key(public_exponent=65537, key_size=key_bits)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri), x509.DNSName(host)]
    if host != "localhost":
        san.append(x509.DNSName("localhost"))
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=True,
                data_encipherment=True,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(cert_path), Path(key_path)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def application_uri_of(cert_path: str | Path) -> str | None:
    """The URI in a certificate's subjectAltName (DER or PEM), or None."""
    data = Path(cert_path).read_bytes()
    cert = x509.load_pem_x509_certificate(data) if data.lstrip().startswith(b"-----") else (x509.load_der_x509_certificate(data))
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    return uris[0] if uris else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m edgegw.certs", description=__doc__.split("\n\n")[0])
    p.add_argument("--uri", required=True, help="application URI, e.g. urn:plant-a:edgegw")
    p.add_argument("--cert", required=True, help="certificate file to write (DER)")
    p.add_argument("--key", required=True, help="private key file to write (PEM)")
    p.add_argument("--host", default=None, help="host name in subjectAltName (default: this host)")
    p.add_argument("--days", type=int, default=3650)
    p.add_argument("--server", action="store_true", help="a server certificate (serverAuth too)")
    a = p.parse_args(argv)
    cert, key = make_app_certificate(a.cert, a.key, a.uri, hostname=a.host, days=a.days, server=a.server)
    print(f"wrote {cert} and {key} for {a.uri}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
