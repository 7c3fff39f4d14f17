"""systemd's service notifications (sd_notify(3)), for `Type=notify` units.

When systemd starts the server it sets `NOTIFY_SOCKET` (a datagram socket
path, `@` for the abstract namespace): the server sends `READY=1` once every
listener is bound (so `systemctl start` returns when the ports answer, and
units ordered after it start then), `RELOADING=1` then `READY=1` around a
SIGHUP reload, and `STOPPING=1` when the drain begins. With `WatchdogSec=`
systemd also sets `WATCHDOG_USEC`: the event loop sends `WATCHDOG=1` every
half period, so a loop stuck for longer gets the service restarted.

Without `NOTIFY_SOCKET` every call does nothing. The protocol is a few
datagrams: no library is needed for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

NOTIFY_SOCKET = "NOTIFY_SOCKET"
WATCHDOG_USEC = "WATCHDOG_USEC"
WATCHDOG_PID = "WATCHDOG_PID"


def _address() -> str | None:
    path = os.environ.get(NOTIFY_SOCKET)
    if not path or path[0] not in "/@":
        return None
    return "\0" + path[1:] if path[0] == "@" else path


def notify(*states: str) -> bool:
    """Send `states` (`READY=1`, `STATUS=…`) as one datagram; True if it was sent."""
    address = _address()
    if address is None:
        return False
    message = "\n".join(states).encode()
    with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message, address)
        return True
    return False


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half the period systemd asked for), or None."""
    usec = os.environ.get(WATCHDOG_USEC, "")
    pid = os.environ.get(WATCHDOG_PID)
    if not usec.isdigit() or int(usec) == 0 or (pid is not None and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6


async def watchdog(interval: float) -> None:
    """Ping systemd's watchdog from the event loop until cancelled."""
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
