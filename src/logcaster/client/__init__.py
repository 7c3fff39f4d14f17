"""Python client for LogCaster's TCP ingest: a `logging` handler and a connection.

    import logging
    from logcaster.client import LogCasterHandler

    logging.getLogger().addHandler(LogCasterHandler("127.0.0.1", 9999, service="checkout"))

`LogCasterHandler` (handler.py) never blocks the application: records go on a
bounded queue, a background thread sends them as JSON lines, a local fallback
file holds them while the server is away. `LogCasterClient` (connection.py) is
the synchronous connection underneath, with acknowledged delivery
(docs/acknowledged-delivery.md). Options and guarantees: docs/python-client.md.
"""

from logcaster.client.connection import (
    BufferFull,
    ClientError,
    DeliveryError,
    LogCasterClient,
    LogCasterError,
)
from logcaster.client.fallback import FallbackFile, default_path
from logcaster.client.handler import LogCasterHandler
from logcaster.client.records import JsonFormatter

__all__ = [
    "BufferFull",
    "ClientError",
    "DeliveryError",
    "FallbackFile",
    "JsonFormatter",
    "LogCasterClient",
    "LogCasterError",
    "LogCasterHandler",
    "default_path",
]
