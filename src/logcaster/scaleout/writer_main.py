"""`logcaster writer`: one writer process, its metrics port, signals and exit status."""

from __future__ import annotations

import argparse
import signal
import sys

from logcaster.log import setup_logging
from logcaster.scaleout.options import WriterConfig
from logcaster.scaleout.writer import StreamWriter
from logcaster.scaleout.writer_cli import check
from logcaster.scaleout.writer_metrics import WriterMetrics

EXIT_CONFIG = 2


def run(args: argparse.Namespace) -> int:
    problem = check(args)
    if problem is not None:
        print(f"logcaster: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(args.log_level)
    config = WriterConfig(
        redis=args.redis,
        postgres=args.postgres,
        stream=args.stream,
        group=args.group,
        consumer=args.consumer,
        batch_entries=args.batch_entries,
        claim_idle_ms=args.claim_idle_ms,
        max_deliveries=args.max_deliveries,
        dead_stream=args.dead_stream,
        days_ahead=args.days_ahead,
        retention_days=args.retention_days,
        dedup_days=args.dedup_days,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
    )
    metrics = WriterMetrics()
    if config.metrics_port is not None:
        try:
            port = metrics.serve(config.metrics_host, config.metrics_port)
        except OSError as exc:
            where = f"{config.metrics_host}:{config.metrics_port}"
            print(f"logcaster: cannot start: --metrics-port: {where}: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"logcaster writer: metrics on http://{config.metrics_host}:{port}/metrics")
        sys.stdout.flush()
    writer = StreamWriter(config, metrics)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: writer.stop())
    writer.run()
    return 0
