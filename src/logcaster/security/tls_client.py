"""The TLS context of every outgoing connection: forward sinks, the Python client,
`logcaster query`, `tail` and `simulate` (docs/tls.md).

Kept apart from tls.py (the listeners' side) so that the client package loads
nothing but the standard library's `ssl` for it.
"""

from __future__ import annotations

import ssl
from typing import Literal

VERSIONS: dict[str, ssl.TLSVersion] = {
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}


def client_context(
    *,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
    verify: bool = True,
    min_version: Literal["1.2", "1.3"] = "1.2",
) -> ssl.SSLContext:
    """The server is verified (its certificate against `ca_file`, else the system's
    CAs, and its name) unless `verify` is False; `cert_file`/`key_file` present a
    client certificate (mTLS). OSError or ssl.SSLError for a bad file."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = VERSIONS[min_version]
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert_file is not None:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def wanted(
    tls: bool | ssl.SSLContext | None,
    ca_file: str | None = None,
    cert_file: str | None = None,
    key_file: str | None = None,
) -> ssl.SSLContext | None:
    """A client's `tls=` and file arguments as a context: a context given is used as
    it is; True, or any file, builds one (`client_context`); else None (plain)."""
    if isinstance(tls, ssl.SSLContext):
        return tls
    if tls or ca_file or cert_file or key_file:
        return client_context(ca_file=ca_file, cert_file=cert_file, key_file=key_file)
    return None
