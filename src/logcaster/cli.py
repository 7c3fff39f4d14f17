"""The `logcaster` command: serve, query, tail, config check, simulate, data, dlq, keys."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from logcaster.cli_parser import build_parser
from logcaster.config import Config, dump_yaml, load_config
from logcaster.exceptions import ConfigError, StartupError
from logcaster.log import log_event, setup_logging
from logcaster.malloc_tuning import tune_malloc
from logcaster.notify import notify, watchdog, watchdog_interval
from logcaster.security.neutralize import json_safe, neutral, neutral_lines

if TYPE_CHECKING:
    from logcaster.backends import Backends
    from logcaster.component import Component
    from logcaster.query.planner import Planner

EXIT_CONFIG = 2
logger = logging.getLogger("logcaster.cli")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    if args.command == "token":
        from logcaster.security import commands

        return commands.run(args)
    if args.command == "keys":
        return _keys(args)
    if args.command == "migrate":
        from logcaster.datadir import migrate_main

        return migrate_main.run(args)
    if args.command in ("backup", "restore"):
        from logcaster.backup import commands as backup_commands

        return backup_commands.run(args)
    if args.command == "writer":
        from logcaster.scaleout import writer_main

        return writer_main.run(args)
    if args.command == "tail":
        from logcaster.client import tail

        return tail.run(
            args.url,
            args.filters,
            follow=args.follow,
            lines=args.lines,
            as_json=args.json,
            token=args.token,
            ca_file=args.ca_file,
            cert_file=args.cert,
            key_file=args.key,
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
            reason = neutral(str(row["reason"]))  # a remote server's words
            print(f"  {row['letters']:>8}  {row['sink']}  HTTP {row['status']}  {reason}")
        for record in summary["first"]:
            text = record.get("text", "<binary: text_b64>")
            print(f"id={record['id']} status={record.get('status')} {neutral(text[:200])}")
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
    from logcaster.security import keys_cli
    from logcaster.security.settings import field_keys_path

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
                        json_safe(
                            orjson.dumps(
                                {
                                    "id": base + i,
                                    "received": batch.received,
                                    "source": batch.source,
                                    "text": text.decode("utf-8", "replace"),
                                }
                            )
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
        ca_file=args.ca_file,
        cert_file=args.cert,
        key_file=args.key,
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
        "irc.enabled": True if args.irc or args.irc_port is not None else None,
        "irc.port": args.irc_port,
        "scaleout.publish": args.publish,
        "scaleout.history": args.history,
    }
    unknown: list[str] = []
    config = _load(args.config, overrides, unknown)
    if config is None:
        return EXIT_CONFIG
    setup_logging(config.log_level)
    tune_malloc()
    for name in unknown:
        # Another program's variable, or a typo: say so, and serve.
        log_event(logger, logging.WARNING, "unknown_env_variable", variable=name, action="ignored")
    import uvloop

    from logcaster.datadir.versions import mark_new, refusal
    from logcaster.exceptions import StorageError
    from logcaster.segments.lock import DataDirLocked, lock_all

    # An older (or newer) format is refused before the lock file is written:
    # the directory stays byte for byte as it was (docs/data-format.md).
    if (refused := refusal(config.persist.dir)) is not None:
        print(f"logcaster: {refused}", file=sys.stderr)
        return EXIT_CONFIG
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
        mark_new(config.persist.dir)  # a new directory: FORMAT, now that it is ours
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
    server = Server(config, _backends(config))

    server.config_loader = reload

    def on_reload() -> None:
        notify("RELOADING=1")
        server.security.record_local("signal:SIGHUP", "reload", server.reload_now())
        notify("READY=1")

    loop.add_signal_handler(signal.SIGHUP, on_reload)
    await server.start()
    # systemd (Type=notify): the listeners are bound; the watchdog pings from the loop.
    notify("READY=1", f"MAINPID={os.getpid()}", "STATUS=serving")
    interval = watchdog_interval()
    pinger = asyncio.create_task(watchdog(interval)) if interval is not None else None
    await stop.wait()
    notify("STOPPING=1", "STATUS=draining")
    try:
        return await server.stop()
    finally:
        if pinger is not None:
            pinger.cancel()


def _backends(config: Config) -> Backends:
    """Scale-out's parts, imported only when the configuration turns them on: their
    client libraries (redis, psycopg) cost ~10 MB each (backends.py, docs/memory.md)."""
    from logcaster.backends import Backends, HistoryFactory, Publisher

    publisher: Publisher | None = None
    history: HistoryFactory | None = None
    if config.scaleout.publish is not None:
        from logcaster.scaleout.publish import publisher
    if config.scaleout.history is not None:
        from logcaster.scaleout.history_service import HistoryService

        def history(url: str, planner: Planner, connections: int) -> Component:
            return HistoryService(url, planner, connections=connections)

    return Backends(publisher, history)


def _query(args: argparse.Namespace) -> int:
    line = " ".join(args.words)
    from logcaster.security.tls_client import wanted

    try:
        tls = wanted(args.tls, args.ca_file, args.cert, args.key)
    except OSError as exc:
        print(f"logcaster: TLS: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.http:
        from logcaster.client import http_query

        out, err = sys.stdout, sys.stderr
        return http_query.run(
            args.http,
            line,
            as_json=args.json,
            timeout=args.timeout,
            out=out,
            err=err,
            tls=tls,
            token=args.token,
        )
    if args.json:
        line = "JSON " + line
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as raw:
            sock = tls.wrap_socket(raw, server_hostname=args.host) if tls else raw
            auth = f"AUTH {args.token}\n" if args.token else ""
            sock.sendall(f"{auth}{line}\n".encode())
            if tls is None:  # TLS cannot half-close; the server ends after one answer
                sock.shutdown(socket.SHUT_WR)
            chunks = []
            with contextlib.suppress(ssl.SSLZeroReturnError):
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
    except OSError as exc:
        print(f"logcaster: cannot query {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    reply = _printable_reply(b"".join(chunks))
    sys.stdout.write(reply)
    return 1 if reply.startswith(("ERROR:", '{"error":')) else 0


def _printable_reply(raw: bytes) -> str:
    """The query port's reply, safe to print even from a server that did not
    neutralise it (an old or hostile one): JSON spelled terminal-safe, text
    neutralised line by line (security/neutralize.py)."""
    if raw.startswith(b"{"):
        return json_safe(raw).decode("utf-8", "replace")
    return neutral_lines(raw.decode("utf-8", "replace"))
