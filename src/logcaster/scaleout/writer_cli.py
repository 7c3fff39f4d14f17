"""`logcaster writer`'s flags and their checks (light: every CLI start imports this);
the process itself is scaleout/writer_main.py."""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit

from logcaster.scaleout.options import DEFAULT_STREAM


def add_parser(sub: Any) -> None:
    w = sub.add_parser(
        "writer",
        help="write a Redis stream's batches into PostgreSQL (scale-out, docs/scaleout.md)",
        epilog="exit status: 0 stopped by SIGTERM/SIGINT, 2 bad flags",
    )
    w.add_argument("--redis", required=True, metavar="URL", help="redis://HOST:PORT/DB")
    w.add_argument("--postgres", required=True, metavar="URL", help="postgresql://USER@HOST/DB")
    w.add_argument("--stream", default=DEFAULT_STREAM, help=f"the stream ({DEFAULT_STREAM})")
    w.add_argument("--group", default="writers", help="the consumer group (writers)")
    w.add_argument("--consumer", default="", help="this writer's name (<hostname>-<pid>)")
    w.add_argument("--batch-entries", type=int, default=64, help="entries per transaction (64)")
    w.add_argument(
        "--claim-idle-ms", type=int, default=30_000, help="claim entries idle this long (30000)"
    )
    w.add_argument("--max-deliveries", type=int, default=5, help="then the dead-letter stream (5)")
    w.add_argument("--dead-stream", default="", help="dead letters (<stream>:dead)")
    w.add_argument("--days-ahead", type=int, default=2, help="daily partitions made ahead (2)")
    w.add_argument(
        "--retention-days", type=int, default=0, help="drop partitions older (0: keep all)"
    )
    w.add_argument(
        "--dedup-days", type=int, default=2, help="remember client sessions' lines this long (2)"
    )
    w.add_argument("--metrics-port", type=int, help="serve /metrics on this port (off)")
    w.add_argument("--metrics-host", default="127.0.0.1", help="its address (127.0.0.1)")
    w.add_argument("--log-level", choices=["debug", "info", "warning", "error"], default="info")


def check(args: argparse.Namespace) -> str | None:
    if urlsplit(args.redis).scheme not in ("redis", "rediss", "unix"):
        return f"--redis {args.redis!r}: the URL must be redis://HOST:PORT/DB"
    if urlsplit(args.postgres).scheme not in ("postgresql", "postgres"):
        return f"--postgres {args.postgres!r}: the URL must be postgresql://…"
    numbers = {
        "--batch-entries": (args.batch_entries, 1, 10_000),
        "--claim-idle-ms": (args.claim_idle_ms, 100, 86_400_000),
        "--max-deliveries": (args.max_deliveries, 1, 1000),
        "--days-ahead": (args.days_ahead, 0, 366),
        "--retention-days": (args.retention_days, 0, 100_000),
        "--dedup-days": (args.dedup_days, 1, 366),
    }
    for flag, (value, low, high) in numbers.items():
        if not low <= value <= high:
            return f"{flag} must be {low} to {high}, not {value}"
    port = args.metrics_port
    if port is not None and not 0 <= port <= 65535:
        return f"--metrics-port must be 0 to 65535, not {port}"
    return None
