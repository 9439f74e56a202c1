"""A private CA and a server certificate, so the stand-in can speak HTTPS.

``SecretClient`` refuses bearer tokens over plain HTTP, so the stand-in must serve TLS, and
clients must be able to verify it without switching verification off. The stand-in therefore
makes its own CA once, signs a server certificate for the loopback names with it, and clients
pass the CA certificate as ``connection_verify``. Both live in the data dir and are reused on
restart, so a CA path handed to clients stays valid; the server certificate alone is re-issued
when it nears expiry or does not cover the requested host.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ._files import atomic_write, ensure_private_dir

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
DEFAULT_CA_NAME = "wheelvault Key Vault stand-in local CA"
CA_VALIDITY = datetime.timedelta(days=3650)
SERVER_VALIDITY = datetime.timedelta(days=397)
RENEW_BEFORE = datetime.timedelta(days=30)
_BACKDATE = datetime.timedelta(minutes=5)  # tolerate small clock differences between processes


@dataclass(frozen=True)
class TlsFiles:
    """Where the PEM files live. ``ca_cert`` is what clients pass as ``connection_verify``."""

    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path

    @classmethod
    def in_dir(cls, tls_dir: Path) -> TlsFiles:
        return cls(
            ca_cert=tls_dir / "ca-cert.pem",
            ca_key=tls_dir / "ca-key.pem",
            server_cert=tls_dir / "server-cert.pem",
            server_key=tls_dir / "server-key.pem",
        )


def ensure_tls_files(
    tls_dir: Path, hosts: Iterable[str] = DEFAULT_HOSTS, *, ca_name: str = DEFAULT_CA_NAME
) -> TlsFiles:
    """Create or reuse the CA and a server certificate valid for every name in ``hosts``.

    ``ca_name`` is the CA's common name when it is made: what a developer sees in a trust store.
    """
    ensure_private_dir(tls_dir)
    files = TlsFiles.in_dir(tls_dir)
    now = datetime.datetime.now(datetime.UTC)
    wanted = _san_entries([*DEFAULT_HOSTS, *hosts])

    ca = _load_ca(files, now)
    if ca is None:
        ca = _create_ca(files, now, ca_name)
        server_ok = False
    else:
        server_ok = _server_cert_usable(files, ca[0], wanted, now)
    if not server_ok:
        _create_server_cert(files, ca, wanted, now)
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS 1.2+ server context presenting the stand-in's server certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_cert, files.server_key)
    return context


def _load_ca(
    files: TlsFiles, now: datetime.datetime
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    """The stored CA if both files are present, readable and not near expiry."""
    try:
        cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        return None
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return None
    return cert, key


def _create_ca(
    files: TlsFiles, now: datetime.datetime, ca_name: str
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    cert = (
        _builder(name, name, key.public_key(), now, now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .sign(key, hashes.SHA256())
    )
    # Key first: a CA certificate without its key on disk would be unusable after a crash.
    atomic_write(files.ca_key, _private_pem(key))
    atomic_write(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    return cert, key


def _server_cert_usable(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    wanted: list[x509.GeneralName],
    now: datetime.datetime,
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return False
    return all(name in names for name in wanted)


def _create_server_cert(
    files: TlsFiles,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    names: list[x509.GeneralName],
    now: datetime.datetime,
) -> None:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    not_after = min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc)
    cert = (
        _builder(subject, ca_cert.subject, key.public_key(), now, not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    atomic_write(files.server_key, _private_pem(key))
    atomic_write(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    not_after: datetime.datetime,
) -> x509.CertificateBuilder:
    """What the CA and the server certificate have in common, their key identifier included."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and revocation lists; a TLS server only signs handshakes."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _san_entries(hosts: Iterable[str]) -> list[x509.GeneralName]:
    """Subject alternative names for ``hosts``; wildcard bind addresses name nothing."""
    entries: list[x509.GeneralName] = []
    for host in hosts:
        entry: x509.GeneralName
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            entry = x509.DNSName(host.lower())
        else:
            if address.is_unspecified:
                continue
            entry = x509.IPAddress(address)
        if entry not in entries:
            entries.append(entry)
    return entries


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
