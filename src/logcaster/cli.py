"""The `logcaster` command: serve, query, tail, config check, simulate, data, dlq, keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logcaster import __version__
from logcaster.config import Config, dump_yaml, load_config
from logcaster.exceptions import ConfigError, StartupError
from logcaster.log import log_event, setup_logging

EXIT_CONFIG = 2
logger = logging.getLogger("logcaster.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logcaster", description="Log collection and query server"
    )
    parser.add_argument("--version", action="version", version=f"logcaster {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", help="YAML configuration file (default: $LOGCASTER_CONFIG)")
    serve.add_argument("--host", help="address TCP line ingest binds (default 127.0.0.1)")
    serve.add_argument("--query-host", help="address the query port binds (default 127.0.0.1)")
    serve.add_argument("--syslog-host", help="address syslog binds (default 127.0.0.1)")
    serve.add_argument("--http-host", help="address the HTTP API binds (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="TCP line ingest port (default 9999)")
    serve.add_argument("--query-port", type=int, help="TCP query port (default 9998)")
    serve.add_argument("--buffer-size", type=int, help="memory buffer capacity (default 10000)")
    serve.add_argument("--syslog-port", type=int, help="syslog UDP+TCP port (default off)")
    serve.add_argument("--http-port", type=int, help="HTTP API port (default 8080)")
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "-P", "--persist", metavar="DIR", help="keep events in segment files in DIR (default off)"
    )

    query = sub.add_parser("query", help="send one command to a server's query port")
    query.add_argument("words", nargs="+", help="the command, e.g. 'QUERY level=ERROR'")
    query.add_argument("--host", default="127.0.0.1")
    query.add_argument("--query-port", "--port", dest="port", type=int, default=9998)
    query.add_argument("--json", action="store_true", help="ask for a JSON answer")
    query.add_argument("--timeout", type=float, default=10.0)
    query.add_argument("--http", metavar="URL", help="ask the HTTP API (http://HOST:8080)")

    tail = sub.add_parser("tail", help="print the newest events; -f follows new ones (HTTP API)")
    tail.add_argument("filters", nargs="*", help="QUERY's key=value filters; a bare word: keyword")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("-n", "--lines", type=int, default=10, help="newest events first (10)")
    tail.add_argument("--json", action="store_true", help="one JSON object per event")
    tail.add_argument("--url", default="http://127.0.0.1:8080", help="the server's HTTP API")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate and print the effective configuration")
    check.add_argument("file", nargs="?", help="YAML file (default: $LOGCASTER_CONFIG)")

    sim = sub.add_parser(
        "simulate",
        help="generate realistic microservice logs (demo, tests, load)",
        description="Generate seed-002 style logs: seven services, eight error scenarios, "
        "Java/Python stack traces, payment flows. A summary line goes to stderr at the end.",
        epilog="exit status: 0 every event was delivered (written to stdout or the file; "
        "written to the socket; over HTTP, taken with a 2xx answer; with ?ack=1, confirmed "
        "by the server), 1 some events were "
        "not delivered (unsent= in the summary), 2 bad options or an unusable output, "
        "130 interrupted (Ctrl-C), 143 terminated (SIGTERM).",
    )
    sim.add_argument(
        "--interval",
        type=float,
        default=2.0,
        help="seconds between events (default 2.0; 0 with no --rate: as fast as possible)",
    )
    sim.add_argument(
        "--error-rate",
        type=float,
        default=0.3,
        help="share of ERROR events, 0..1 (default 0.3; INFO:WARN stay 55:15)",
    )
    sim.add_argument("--rate", type=float, help="events per second (overrides --interval)")
    sim.add_argument("--count", type=int, help="stop after this many events")
    sim.add_argument("--duration", type=float, help="stop after this many seconds")
    sim.add_argument("--seed", type=int, help="same seed, same output, byte for byte")
    sim.add_argument(
        "--format",
        choices=["text", "json"],
        help="text (seed-002 lines and traces) or json (one object per event); "
        "default text, json for http:// outputs",
    )
    sim.add_argument(
        "--output",
        default="-",
        metavar="TARGET",
        help="- (stdout), a file path, tcp://HOST:PORT (?ack=1: acknowledged delivery), "
        "syslog://HOST:PORT (UDP), syslog+tcp://HOST:PORT, "
        "http://HOST:PORT[/api/v1/logs] (?ack=1: answered once durable)",
    )
    sim.add_argument(
        "--progress",
        action="store_true",
        help="show a progress line on stderr even when it is not a terminal",
    )

    data = sub.add_parser("data", help="offline tools for a persistence directory (-P DIR)")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    validate = data_sub.add_parser(
        "validate",
        help="verify every block of every segment file; exit 0 clean, 1 damaged, 2 no data dir",
    )
    validate.add_argument("dir", help="the data directory")
    validate.add_argument("--json", action="store_true", help="print one JSON document")
    inspect = data_sub.add_parser("inspect", help="summarize the segment files of a data dir")
    inspect.add_argument("dir", help="the data directory")
    inspect.add_argument("--json", action="store_true", help="print one JSON document")
    cat = data_sub.add_parser(
        "cat", help="print every stored event in id order (raw text, or --json per event)"
    )
    cat.add_argument("dir", help="the data directory")
    cat.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per event: id, received, source, text",
    )
    cat.add_argument("--from-id", type=int, default=0, help="skip events with lower ids")

    dlq = sub.add_parser("dlq", help="dead letters of a forward group (events a sink refused)")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_inspect = dlq_sub.add_parser("inspect", help="count the letters by reason, list the first")
    dlq_inspect.add_argument("path", help="the group directory or its dead-letters.ndjson")
    dlq_inspect.add_argument("--limit", type=int, default=10, help="letters to list (default 10)")
    dlq_inspect.add_argument("--json", action="store_true", help="print one JSON document")
    dlq_replay = dlq_sub.add_parser(
        "replay", help="send the letters again; those delivered leave the file"
    )
    dlq_replay.add_argument("path", help="the group directory or its dead-letters.ndjson")
    dlq_replay.add_argument(
        "--to", required=True, help="destination URL: tcp://HOST:PORT[?ack=1] or http(s)://..."
    )
    dlq_replay.add_argument("--timeout", type=float, default=10.0, help="seconds per send")

    keys = sub.add_parser("keys", help="field-encryption keys (encrypt.keys_file)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    for name, text in (
        ("create", "write a new keys file (one Fernet key, one HMAC key), mode 0600"),
        ("rotate", "add a new primary Fernet key; old data stays readable (then SIGHUP)"),
        ("list", "the keys' ids and dates (no secrets)"),
    ):
        cmd = keys_sub.add_parser(name, help=text)
        cmd.add_argument("--file", help="the keys file (default: from the configuration)")
        cmd.add_argument("--config", help="YAML configuration file (default: $LOGCASTER_CONFIG)")
        cmd.add_argument("-P", "--persist", metavar="DIR", help="persist.dir, as for serve")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    if args.command == "query":
        return _query(args)
    if args.command == "simulate":
        return _simulate(args)
    if args.command == "data":
        return _data(args)
    if args.command == "dlq":
        return _dlq(args)
    if args.command == "keys":
        return _keys(args)
    if args.command == "tail":
        from logcaster.client import tail

        return tail.run(
            args.url, args.filters, follow=args.follow, lines=args.lines, as_json=args.json
        )
    return _config_check(args)


def _data(args: argparse.Namespace) -> int:
    """`data validate` (exit 0 clean, 1 problems) and `data inspect`; 2 without a data dir."""
    import json

    from logcaster.segments import inspect as inspect_mod
    from logcaster.segments.lock import lock_holder

    # These commands only read, so they run next to a server; say so, since a
    # block being written at that moment may show as a torn tail.
    owner = lock_holder(args.dir)
    if owner is not None:
        who = f"process {owner}" if owner else "another process"
        print(
            f"logcaster data {args.data_command}: note: {args.dir} is in use by {who}; "
            "reading it as it is being written",
            file=sys.stderr,
        )
    try:
        if args.data_command == "cat":
            return _data_cat(args, inspect_mod.find_segments(Path(args.dir))[0])
        if args.data_command == "validate":
            result = inspect_mod.validate(args.dir)
            if args.json:
                print(json.dumps(result.to_dict(), indent=2))
            else:
                sys.stdout.write(inspect_mod.format_validation(result))
            return 0 if result.ok else 1
        summary = inspect_mod.inspect(args.dir)
    except inspect_mod.DataDirError as exc:
        print(f"logcaster data {args.data_command}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        sys.stdout.write(inspect_mod.format_inspection(summary))
    return 0


def _dlq(args: argparse.Namespace) -> int:
    """`dlq inspect` (exit 0) and `dlq replay` (0: all delivered, 1: letters left, 2: no file)."""
    import asyncio
    import json

    from logcaster.sinks.forward import deadletter

    path = deadletter.letters_path(Path(args.path))
    interrupted = path.with_name(deadletter.REPLAYING_NAME).is_file()
    if not path.is_file() and not (args.dlq_command == "replay" and interrupted):
        print(f"logcaster dlq {args.dlq_command}: no dead-letter file at {path}", file=sys.stderr)
        return EXIT_CONFIG
    if args.dlq_command == "inspect":
        summary = deadletter.summarize(path, args.limit)
        if args.json:
            print(json.dumps(summary, indent=2))
            return 0
        print(f"{summary['letters']} dead letters in {path} ({summary['bytes']} bytes)")
        for row in summary["by_reason"]:
            print(f"  {row['letters']:>8}  {row['sink']}  HTTP {row['status']}  {row['reason']}")
        for record in summary["first"]:
            text = record.get("text", "<binary: text_b64>")
            print(f"id={record['id']} status={record.get('status')} {text[:200]}")
        return 0
    try:
        delivered, left = asyncio.run(deadletter.replay(path, args.to, args.timeout))
    except ValueError as exc:
        print(f"logcaster dlq replay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"delivered {delivered}, left {left} in {path}")
    return 0 if left == 0 else 1


def _keys(args: argparse.Namespace) -> int:
    """`keys create | rotate | list`: 0, or 2 with one line saying what is wrong."""
    from logcaster.config import field_keys_path
    from logcaster.security import keys_cli

    where = f"logcaster keys {args.keys_command}"
    if args.file is not None:
        path = Path(args.file)
    else:
        config = _load(args.config, {"persist.dir": args.persist})
        if config is None:
            return EXIT_CONFIG
        found = field_keys_path(config)
        if found is None:
            print(f"{where}: no keys file: give --file, encrypt.keys_file or -P", file=sys.stderr)
            return EXIT_CONFIG
        path = found
    return keys_cli.run(args.keys_command, path)


def _data_cat(args: argparse.Namespace, segments: list[Path]) -> int:
    """Print the good blocks' events, unescaped; damaged blocks are skipped (see validate)."""
    import orjson

    from logcaster.segments.segment import read_batches

    out = sys.stdout.buffer
    try:
        for path in segments:
            for batch in read_batches(path):
                first = max(0, args.from_id - batch.first_id)
                texts = batch.texts[first:]
                if not texts:
                    continue
                if args.json:
                    base = batch.first_id + first
                    lines = [
                        orjson.dumps(
                            {
                                "id": base + i,
                                "received": batch.received,
                                "source": batch.source,
                                "text": text.decode("utf-8", "replace"),
                            }
                        )
                        for i, text in enumerate(texts)
                    ]
                    texts = lines
                out.write(b"\n".join(texts) + b"\n")
        out.flush()
    except BrokenPipeError:
        # `logcaster data cat DIR | head`: the reader is gone; not an error.
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from logcaster.simulate.outputs import OutputError, default_format
    from logcaster.simulate.runner import Options, run

    opts = Options(
        interval=args.interval,
        error_rate=args.error_rate,
        rate=args.rate,
        count=args.count,
        duration=args.duration,
        seed=args.seed,
        format=args.format or default_format(args.output),
        output=args.output,
        progress=args.progress,
    )
    problems = opts.problems()
    if problems:
        for problem in problems:
            print(f"logcaster simulate: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return run(opts)
    except OutputError as exc:
        print(f"logcaster simulate: {exc}", file=sys.stderr)
        return EXIT_CONFIG


def _load(
    path: str | None,
    overrides: dict[str, Any] | None = None,
    unknown_env: list[str] | None = None,
) -> Config | None:
    try:
        return load_config(path, overrides=overrides, unknown_env=unknown_env)
    except ConfigError as exc:
        print(f"logcaster: invalid configuration: {exc}", file=sys.stderr)
        return None


def _config_check(args: argparse.Namespace) -> int:
    unknown: list[str] = []
    config = _load(args.file, unknown_env=unknown)
    for name in unknown:
        print(f"logcaster: warning: {name} is not a LogCaster option; ignored", file=sys.stderr)
    if config is None:
        return EXIT_CONFIG
    sys.stdout.write(dump_yaml(config))
    return 0


def _serve(args: argparse.Namespace) -> int:
    overrides = {
        "ingest.host": args.host,
        "query.host": args.query_host,
        "syslog.host": args.syslog_host,
        "ingest.port": args.port,
        "query.port": args.query_port,
        "memory.capacity": args.buffer_size,
        "syslog.port": args.syslog_port,
        "http.host": args.http_host,
        "http.port": args.http_port,
        "log_level": args.log_level,
        "persist.dir": args.persist,
    }
    unknown: list[str] = []
    config = _load(args.config, overrides, unknown)
    if config is None:
        return EXIT_CONFIG
    setup_logging(config.log_level)
    for name in unknown:
        # Another program's variable, or a typo: say so, and serve.
        log_event(logger, logging.WARNING, "unknown_env_variable", variable=name, action="ignored")
    import uvloop

    from logcaster.exceptions import StorageError
    from logcaster.segments.lock import DataDirLocked, lock_all

    # One owner per directory the server writes, taken before anything in it is
    # touched and released on every way out (a kill -9 releases it too: a flock).
    try:
        locks = lock_all(_owned_dirs(config))
    except DataDirLocked as exc:
        print(f"logcaster: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except StorageError as exc:
        print(f"logcaster: cannot start: persist.dir: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        drained = uvloop.run(_run(config, lambda: load_config(args.config, overrides=overrides)))
    except StartupError as exc:
        # One line for the operator, not a traceback: the reason names the option.
        print(f"logcaster: cannot start: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    finally:
        for lock in locks:
            lock.release()
    return 0 if drained else 1


def _owned_dirs(config: Config) -> list[Path]:
    """The data directory, and each forward group's own `dir` outside it."""
    from logcaster.config import forward_dir

    dirs = [Path(config.persist.dir)] if config.persist.dir is not None else []
    for group in config.forward:
        path = forward_dir(config, group)
        if path is not None and group.dir is not None and path not in dirs:
            dirs.append(path)
    return dirs


async def _run(config: Config, reload: Callable[[], Config] | None = None) -> bool:
    """Serve until SIGTERM/SIGINT; SIGHUP reads the configuration again (`reload`,
    which raises ConfigError for a bad file)."""
    from logcaster.app import Server

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            # A second signal: the operator does not want to wait for the drain.
            log_event(logger, logging.WARNING, "forced_exit", signal=signal.Signals(signum).name)
            os._exit(1)
        log_event(logger, logging.INFO, "signal", signal=signal.Signals(signum).name)
        stop.set()

    # Past a file-size limit a write should fail with EFBIG (reported, retried),
    # not kill the server.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    server = Server(config)

    def on_reload() -> None:
        if reload is None:
            return
        try:
            new = reload()
        except ConfigError as exc:
            # A bad file changes nothing; the reason (key and why) goes in the log line.
            log_event(
                logger,
                logging.ERROR,
                "config_reload_failed",
                always=True,
                error=str(exc),
                kept="the running config",
            )
            return
        server.reload(new)

    loop.add_signal_handler(signal.SIGHUP, on_reload)
    await server.start()
    await stop.wait()
    return await server.stop()


def _query(args: argparse.Namespace) -> int:
    line = " ".join(args.words)
    if args.http:
        from logcaster.client import http_query

        out, err = sys.stdout, sys.stderr
        return http_query.run(
            args.http, line, as_json=args.json, timeout=args.timeout, out=out, err=err
        )
    if args.json:
        line = "JSON " + line
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as sock:
            sock.sendall(line.encode() + b"\n")
            sock.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError as exc:
        print(f"logcaster: cannot query {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    reply = b"".join(chunks).decode("utf-8", "replace")
    sys.stdout.write(reply)
    return 1 if reply.startswith(("ERROR:", '{"error":')) else 0
