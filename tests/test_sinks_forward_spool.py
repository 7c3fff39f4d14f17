"""The forward group's spool (SPEC §5, issue 6): what no sink takes waits on disk.

With every sink down, events spool and drain in order once one is back, after
a crash of the upstream too; a full spool with drop_oldest keeps the newest;
the spool outlives a restart; a full disk under it loses nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from logcaster.testing import free_port, wait_for
from tests.conftest import ServerFactory
from tests.forward_helpers import (
    HttpReceiver,
    group,
    paced_send,
    settled,
    stored_lines,
    write_config,
)


def test_all_sinks_down_events_spool_then_drain_in_order(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    port = free_port()
    cfg = group("solo", [f"tcp://127.0.0.1:{port}?ack=1"])
    up_dir = tmp_path / "up"
    up = server_factory("-P", str(up_dir), "--config", write_config(tmp_path, forward=[cfg]))
    conns = 4
    per = 5_000
    lines = [b"conn %d seq %05d\n" % (c, i) for i in range(per) for c in range(conns)]
    paced_send(up.ingest_port, lines, 1.0, connections=conns)
    stats = wait_for("spooled", up.stats, lambda s: s["Spooled"] == len(lines))
    assert stats["Forwarded"] == 0 and stats["SpoolBytes"] > 0
    assert list((up_dir / "forward" / "solo" / "spool").glob("*.log"))
    # The upstream crashes with the spool full; its replacement sends the spool.
    up.kill()
    up = server_factory("-P", str(up_dir), "--config", write_config(tmp_path, forward=[cfg]))
    assert up.stats()["Spooled"] == len(lines)
    down = server_factory("-P", str(tmp_path / "down"), "--port", str(port))
    more = [b"conn 9 seq %05d\n" % i for i in range(1000)]
    up.send(b"".join(more))
    wait_for("drained", up.stats, lambda s: s["Spooled"] == 0 and s["Forwarded"] >= 1000)
    wait_for("all", down.stats, lambda s: s["Total"] >= len(lines) + len(more))
    down.stop()
    got = stored_lines(tmp_path / "down")
    assert sorted(got) == sorted(line[:-1] for line in lines + more)  # nothing lost, once
    for c in (*range(conns), 9):
        prefix = b"conn %d " % c
        mine = [t for t in got if t.startswith(prefix)]
        assert mine == sorted(mine), f"connection {c} out of order"
    assert got.index(more[0][:-1]) > max(got.index(line[:-1]) for line in lines)


def test_a_full_spool_with_drop_oldest_keeps_the_newest_and_counts_the_rest(
    tmp_path: Path, server_factory: ServerFactory
) -> None:
    port = free_port()  # nothing listens: every event spools
    cfg = group(
        "tight",
        [f"tcp://127.0.0.1:{port}?ack=1"],
        spool_max_bytes=1 << 20,
        spool_policy="drop_oldest",
    )
    up = server_factory(
        "-P", str(tmp_path / "up"), "--config", write_config(tmp_path, forward=[cfg])
    )
    n = 60_000
    lines = [b"spool %06d %s\n" % (i, b"x" * 80) for i in range(n)]
    paced_send(up.ingest_port, lines, 1.0)
    stats = wait_for(
        "spooled",
        up.stats,
        lambda s: s["Total"] == n and s["Spooled"] + s.get("ForwardDroppedSpoolFullOldest", 0) == n,
    )
    dropped = stats["ForwardDroppedSpoolFullOldest"]
    # Lost after delivery to the group: apart from Dropped, so the identity holds.
    assert stats["Dropped"] == 0 and stats["ForwardDropped"] == dropped
    assert stats["Total"] == stats["Delivered"] + stats["QueueEvents"]
    assert dropped > 0 and stats["SpoolBytes"] <= 2 * (1 << 20)
    down = server_factory("-P", str(tmp_path / "down"), "--port", str(port))
    # Spooled reaches 0 while the last chunks are still in flight: wait for Forwarded.
    stats = wait_for(
        "drained", up.stats, lambda s: s["Spooled"] == 0 and s["Forwarded"] + dropped >= n
    )
    assert stats["Forwarded"] + dropped == n
    wait_for("all", down.stats, lambda s: s["Total"] == stats["Forwarded"])
    down.stop()
    got = stored_lines(tmp_path / "down")
    assert got == [line[:-1] for line in lines[int(dropped) :]]  # the newest, in order


def test_restart_with_a_group_dir_and_no_persist_dir_continues_ids_and_acks(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    """The spool outlives the server: ids continue above it, acks flow after it drained."""
    from logcaster.client import LogCasterClient

    receiver.status = 503
    cfg = write_config(tmp_path, forward=[group("web", [receiver.url], dir=str(tmp_path / "g"))])
    up = server_factory("--config", cfg)
    up.send(b"".join(b"first %03d\n" % i for i in range(100)))
    wait_for("spooled", up.stats, lambda s: s["Spooled"] == 100)
    assert up.stop() == 0
    receiver.status = 200
    up = server_factory("--config", cfg)
    wait_for("drained", up.stats, lambda s: s["Forwarded"] == 100 and s["Spooled"] == 0)
    with LogCasterClient("127.0.0.1", up.ingest_port, timeout=10) as client:
        client.send(b"".join(b"second %03d\n" % i for i in range(100)))
        assert client.flush(timeout=15), "acks stopped after the spool drained"
    wait_for("forwarded", up.stats, lambda s: s["Forwarded"] == 200)
    assert receiver.texts() == [f"first {i:03d}" for i in range(100)] + [
        f"second {i:03d}" for i in range(100)
    ]
    ids = [e["id"] for e in receiver.events]
    assert ids == sorted(ids) and len(set(ids)) == 200


def test_a_full_disk_under_the_spool_loses_nothing_and_recovers(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    """The spool's writes fail (EFBIG past a file-size limit set on the running
    server, as on a full disk) while chunks are in flight, and the sink comes
    back meanwhile: every event arrives exactly once; once the disk has room the
    spool drains."""
    import resource

    receiver.status = 503
    receiver.delay = 0.05  # the window holds chunks in flight when a spool write fails
    cfg = group(
        "web", [receiver.url], dir=str(tmp_path / "g"), spool_max_bytes=1 << 20, batch_events=500
    )
    up = server_factory("--config", write_config(tmp_path, forward=[cfg]))
    soft, hard = resource.prlimit(up.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(up.pid, resource.RLIMIT_FSIZE, (48 * 1024, hard))
    lines = [b"event %05d\n" % i for i in range(20_000)]
    up.send(b"".join(lines))
    wait_for(
        "spool errors",
        lambda: [x for x in up.logs if x.get("event") == "forward_sender_error"],
        bool,
    )
    receiver.status = 200  # chunks still in flight are delivered now
    time.sleep(1.0)
    assert up.stats()["Spooled"] < 20_000
    resource.prlimit(up.pid, resource.RLIMIT_FSIZE, (soft, hard))  # room again
    stats = wait_for("drained", up.stats, lambda s: settled(s, 20_000) and s["Forwarded"] >= 20_000)
    texts = receiver.texts()
    assert sorted(texts) == [line[:-1].decode() for line in lines]  # each once
    assert stats["Forwarded"] == 20_000 and stats["ForwardRetried"] == 0


def test_stop_with_a_full_disk_counts_what_it_could_not_spool_and_exits_cleanly(
    tmp_path: Path, server_factory: ServerFactory, receiver: HttpReceiver
) -> None:
    import resource

    receiver.status = 503
    cfg = group("web", [receiver.url], dir=str(tmp_path / "g"), spool_max_bytes=1 << 20)
    up = server_factory("--config", write_config(tmp_path, forward=[cfg]))
    _, hard = resource.prlimit(up.pid, resource.RLIMIT_FSIZE)
    resource.prlimit(up.pid, resource.RLIMIT_FSIZE, (48 * 1024, hard))
    up.send(b"".join(b"event %05d\n" % i for i in range(20_000)))
    wait_for(
        "spool errors",
        lambda: [x for x in up.logs if x.get("event") == "forward_sender_error"],
        bool,
    )
    spooled = up.stats()["Spooled"]
    assert up.stop() == 0
    lost = [x for x in up.logs if x.get("event") == "forward_undelivered"]
    assert lost and spooled + lost[0]["events"] == 20_000, (spooled, lost)
