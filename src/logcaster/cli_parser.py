"""The `logcaster` command's arguments: every subcommand and option (cli.py runs them)."""

from __future__ import annotations

import argparse
import os

from logcaster import __version__
from logcaster.backup import cli as backup_cli
from logcaster.datadir import migrate_cli
from logcaster.scaleout import writer_cli
from logcaster.security import commands as token_command


def _tls_options(parser: argparse.ArgumentParser) -> None:
    """TLS to the server (docs/tls.md): it is verified against --ca-file, else the
    system's CAs; --cert and --key present a client certificate."""
    parser.add_argument("--ca-file", help="TLS: the CA file that signed the server's certificate")
    parser.add_argument("--cert", help="TLS: a client certificate (PEM), for mTLS")
    parser.add_argument("--key", help="TLS: the client certificate's key (PEM)")


def _token_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        default=os.environ.get("LOGCASTER_TOKEN"),
        help="a token for a server with auth.enabled (default: $LOGCASTER_TOKEN)",
    )


def build_parser() -> argparse.ArgumentParser:
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
    serve.add_argument(
        "-i", "--irc", action="store_true", help="run the IRC server on port 6667 (default off)"
    )
    serve.add_argument(
        "-I", "--irc-port", type=int, metavar="PORT", help="run the IRC server on PORT"
    )
    serve.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    serve.add_argument(
        "-P", "--persist", metavar="DIR", help="keep events in segment files in DIR (default off)"
    )
    serve.add_argument(
        "--publish", metavar="URL", help="scale-out: publish batches to redis://HOST:PORT/DB"
    )
    serve.add_argument(
        "--history", metavar="URL", help="scale-out: answer queries from postgresql://…"
    )

    query = sub.add_parser("query", help="send one command to a server's query port")
    query.add_argument("words", nargs="+", help="the command, e.g. 'QUERY level=ERROR'")
    query.add_argument("--host", default="127.0.0.1")
    query.add_argument("--query-port", "--port", dest="port", type=int, default=9998)
    query.add_argument("--json", action="store_true", help="ask for a JSON answer")
    query.add_argument("--timeout", type=float, default=10.0)
    query.add_argument("--http", metavar="URL", help="ask the HTTP API (http(s)://HOST:8080)")
    query.add_argument("--tls", action="store_true", help="the query port serves TLS")
    _tls_options(query)
    _token_option(query)

    tail = sub.add_parser("tail", help="print the newest events; -f follows new ones (HTTP API)")
    tail.add_argument("filters", nargs="*", help="QUERY's key=value filters; a bare word: keyword")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    tail.add_argument("-n", "--lines", type=int, default=10, help="newest events first (10)")
    tail.add_argument("--json", action="store_true", help="one JSON object per event")
    tail.add_argument("--url", default="http://127.0.0.1:8080", help="the server's HTTP API")
    _tls_options(tail)
    _token_option(tail)

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
    _tls_options(sim)

    migrate_cli.add_parser(sub)
    writer_cli.add_parser(sub)
    backup_cli.add_parsers(sub)

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

    token_command.add_parser(sub)

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
    return parser
