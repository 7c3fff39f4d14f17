"""Where a forward sink sends: its URL, checked.

Its own module so that config validation can check a URL without importing
the sinks (which import the config).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class ForwardTarget:
    url: str
    scheme: Literal["tcp", "tls", "http", "https"]
    host: str
    port: int | None  # None: the scheme's default (HTTP only)
    ack: bool  # tcp and tls only: LogCaster's acknowledged delivery

    @property
    def tls(self) -> bool:
        return self.scheme in ("tls", "https")


def parse_target(url: str) -> ForwardTarget:
    """The target `url` names; ValueError says what is wrong with it."""
    parts = urlsplit(url)
    if parts.scheme in ("tcp", "tls"):
        if not parts.hostname or parts.port is None:
            raise ValueError(f"{url!r}: {parts.scheme} needs {parts.scheme}://HOST:PORT")
        query = parse_qs(parts.query)
        unknown = set(query) - {"ack"}
        if unknown:
            raise ValueError(f"{url!r}: unknown parameter {sorted(unknown)[0]!r} (only ack=1)")
        ack = query.get("ack", ["0"])[-1] in ("1", "true", "yes")
        kind: Literal["tcp", "tls"] = "tcp" if parts.scheme == "tcp" else "tls"
        return ForwardTarget(url, kind, parts.hostname, parts.port, ack)
    if parts.scheme in ("http", "https"):
        if not parts.hostname:
            raise ValueError(f"{url!r}: no host")
        scheme: Literal["http", "https"] = "http" if parts.scheme == "http" else "https"
        return ForwardTarget(url, scheme, parts.hostname, parts.port, False)
    raise ValueError(f"{url!r}: the scheme must be tcp, tls, http or https")
