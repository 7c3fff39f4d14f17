"""Opening the client's connection: a connect bounded by its deadline, then TLS.

Part of `LogCasterClient` (connection.py); `Failed` carries the reason of a
failed attempt, which the client keeps in `last_error`.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import ssl
import time
from collections.abc import Callable

SLICE = 0.1  # connection.py's: the longest a wait runs before deadlines are checked


class Failed(Exception):
    """One connection attempt or operation failed; its message is the reason."""


def reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def tls_handshake(
    sock: socket.socket, ctx: ssl.SSLContext, host: str, timeout: float
) -> ssl.SSLSocket:
    """TLS over a connected socket, the server verified; Failed with the reason."""
    try:
        tls = ctx.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    except (OSError, ValueError) as exc:
        sock.close()
        raise Failed(f"TLS: {exc}") from exc
    try:
        tls.settimeout(max(timeout, 0.001))
        tls.do_handshake()
    except TimeoutError as exc:
        tls.close()
        raise Failed(f"TLS handshake timed out after {timeout:g} s") from exc
    except OSError as exc:
        tls.close()
        raise Failed(f"TLS handshake: {getattr(exc, 'reason', None) or exc}") from exc
    return tls


def connect(
    address: tuple[str, int], timeout: float, budget: Callable[[float], float]
) -> socket.socket:
    """A connected blocking socket; Failed after `timeout` or the budget, with the reason.

    Non-blocking connect polled in slices: `socket.create_connection` could not
    be cut short by `stop_at`. (Name resolution itself cannot be bounded: use an
    address or a name the resolver answers at once.)
    """
    host, port = address
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Failed(f"cannot resolve {host}: {reason(exc)}") from exc
    deadline = time.monotonic() + timeout
    why = "no address"
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            err = sock.connect_ex(addr)
            if err not in (0, errno.EINPROGRESS):
                why = f"connect: {os.strerror(err)}"
                sock.close()
                continue
            with selectors.DefaultSelector() as sel:
                sel.register(sock, selectors.EVENT_WRITE)
                while not sel.select(min(max(budget(deadline - time.monotonic()), 0), SLICE)):
                    if budget(deadline - time.monotonic()) <= 0:
                        raise Failed(f"connect timed out after {timeout} s")
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                why = f"connect: {os.strerror(err)}"
                sock.close()
                continue
            sock.setblocking(True)
            return sock
        except BaseException:
            sock.close()
            raise
    raise Failed(why)
