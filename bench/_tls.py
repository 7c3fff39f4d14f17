"""TLS for `bench/ingest --tls`: a throwaway CA-less certificate for 127.0.0.1, the
server's settings for it (TLS on the ingest listener only: STATS polling stays
plain) and the senders' client context, which verifies the server with it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from _common import BenchError


@dataclass(frozen=True)
class BenchTls:
    cert: Path
    key: Path

    def server_env(self) -> dict[str, str]:
        return {
            "LOGCASTER_INGEST__TLS__ENABLED": "true",
            "LOGCASTER_INGEST__TLS__CERT_FILE": str(self.cert),
            "LOGCASTER_INGEST__TLS__KEY_FILE": str(self.key),
        }

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


def make_tls(directory: Path) -> BenchTls:
    """A self-signed EC P-256 certificate for 127.0.0.1 (the senders trust it alone)."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError as exc:
        msg = f"--tls needs cryptography (run .venv/bin/python bench/ingest): {exc}"
        raise BenchError(msg) from exc
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-ingest")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    files = BenchTls(directory / "bench-tls.crt", directory / "bench-tls.key")
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    files.key.chmod(0o600)
    return files
