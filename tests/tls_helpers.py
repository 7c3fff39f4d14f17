"""A private CA and certificates for the TLS tests, made with `cryptography`.

`Pki(directory)` writes a CA, then on demand server certificates (for 127.0.0.1
and localhost), client certificates with a given subject, and the bad ones a
test needs: expired, self-signed, signed by another CA. Every file is PEM.
EC P-256 keys: quick to make and to handshake with.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Pair:
    """A certificate and its key, as files."""

    cert: Path
    key: Path

    @property
    def args(self) -> tuple[str, str]:
        return str(self.cert), str(self.key)


def _name(cn: str, org: str = "LogCaster Tests") -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


class Pki:
    """A CA in `directory` that signs what the tests ask for."""

    def __init__(self, directory: Path, name: str = "ca") -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        subject = _name(f"LogCaster Test CA {name}")
        self._subject = subject
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - DAY)
            .not_valid_after(now + 30 * DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.ca_file = self.dir / f"{name}.pem"
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(
        self,
        stem: str,
        cn: str,
        *,
        server: bool = False,
        org: str = "LogCaster Tests",
        expired: bool = False,
        self_signed: bool = False,
    ) -> Pair:
        """A certificate for `cn`: a server's (SANs 127.0.0.1, ::1, localhost) or
        a client's; `expired` ended yesterday; `self_signed` is not from this CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        begin, end = (now - 10 * DAY, now - DAY) if expired else (now - DAY, now + 30 * DAY)
        subject = _name(cn, org)
        issuer, signer = (subject, key) if self_signed else (self._subject, self._key)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(begin)
            .not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if not self_signed:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("localhost"),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.IPAddress(ipaddress.ip_address("::1")),
                    ]
                ),
                critical=False,
            )
        cert = builder.sign(signer, hashes.SHA256())
        pair = Pair(self.dir / f"{stem}.crt", self.dir / f"{stem}.key")
        pair.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key, pair.key)
        return pair

    def server(self, stem: str = "server") -> Pair:
        return self.issue(stem, "localhost", server=True)

    def client(self, cn: str, stem: str | None = None, org: str = "LogCaster Tests") -> Pair:
        return self.issue(stem or f"client-{cn}", cn, org=org)

    def client_context(self, client: Pair | None = None) -> ssl.SSLContext:
        """Python's own client context trusting this CA, with a client certificate."""
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if client is not None:
            ctx.load_cert_chain(*client.args)
        return ctx


def tls_query(
    port: int, command: str, ctx: ssl.SSLContext, timeout: float = 10.0, host: str = "127.0.0.1"
) -> str:
    """One command to a TLS query port with Python's `ssl`; the whole answer."""
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as sock,
    ):
        sock.sendall(command.encode() + b"\n")
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLZeroReturnError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode()


def tls_send(port: int, data: bytes, ctx: ssl.SSLContext, host: str = "127.0.0.1") -> None:
    """Lines to a TLS ingest port with Python's `ssl`, then a clean close (close_notify)."""
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as sock,
    ):
        sock.sendall(data)
        sock.unwrap()


def peer_certificate(port: int, ca_file: Path, host: str = "127.0.0.1") -> x509.Certificate:
    """The certificate a TLS listener presents now."""
    ctx = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((host, port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname=host) as sock,
    ):
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)
