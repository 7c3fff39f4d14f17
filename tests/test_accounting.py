"""Every event the server saw counts in STATS `Total` once (issue 14, item 7).

`Total = Delivered + QueueEvents + Dropped + Sampled`, whatever path drops an
event: here UDP syslog datagrams past the queue's bound, with a real server
whose only forward destination never answers, so the pipeline stalls and
every later datagram is dropped.
"""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from logcaster.testing import wait_for
from tests.conftest import ServerFactory


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _identity(s: dict[str, float]) -> float:
    return s["Delivered"] + s["QueueEvents"] + s["Dropped"] + s["Sampled"]


def test_udp_drops_count_in_total(tmp_path: Path, server_factory: ServerFactory) -> None:
    stuck = {
        "name": "stuck",  # no spool (no dir, no persist.dir): the group holds and pushes back
        "primaries": [{"url": f"tcp://127.0.0.1:{_closed_port()}", "write_timeout": 1.0}],
        "buffer_events": 100,
        "batch_events": 10,
    }
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({"queue": {"max_events": 64}, "forward": [stuck]}), encoding="utf-8"
    )
    server = server_factory("--config", str(config), "--syslog-port", "0")
    port = server.ports["syslog"]
    sent = 20_000
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(sent):
            sock.sendto(b"<13>1 - host app - - - udp flood %d" % i, ("127.0.0.1", port))
    # Some datagrams may be lost by the kernel (a full socket buffer): the server never
    # saw those. Wait until what it saw stops changing, then check the identity.
    last: list[float] = [-1.0]

    def settled(s: dict[str, float]) -> bool:
        done = s["Total"] == last[0] and s["DroppedUdpQueueFull"] > 0
        last[0] = s["Total"]
        return done

    stats = wait_for(
        "the flood counted", server.stats, lambda s: "DroppedUdpQueueFull" in s and settled(s)
    )
    assert 0 < stats["Total"] <= sent
    # The pipeline stalled early: most of what the server saw was dropped.
    assert stats["DroppedUdpQueueFull"] > stats["Total"] // 2
    assert stats["Total"] == _identity(stats), stats
