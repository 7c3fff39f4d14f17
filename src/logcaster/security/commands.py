"""`logcaster token create | list | revoke`: the token life cycle, offline.

The command edits the token file the server reads (the server notices the
change within a second: a revoked token stops working without a restart)
and appends its own entry to the audit log, as `cli:<OS user>`.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from logcaster.config import Config, load_config
from logcaster.exceptions import ConfigError
from logcaster.security import audit
from logcaster.security.settings import audit_dir, tokens_path
from logcaster.security.tokens import TokenError, create_token, read_tokens, revoke_token

EXIT_USAGE = 2
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="API tokens: create (printed once), list, revoke")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a token and print it once")
    create.add_argument("--name", required=True, help="who or what holds it (unique)")
    create.add_argument("--role", required=True, choices=("ingest", "viewer", "operator", "admin"))
    create.add_argument(
        "--expires", help="a duration (90d, 12h, 2w) or a UTC date (2027-01-31); default never"
    )
    token_sub.add_parser("list", help="list the tokens (no secrets)").add_argument(
        "--json", action="store_true", help="one JSON document"
    )
    token_sub.add_parser("revoke", help="revoke a token by name").add_argument("name")
    for p in token_sub.choices.values():
        p.add_argument("--config", help="YAML configuration (default: $LOGCASTER_CONFIG)")
        p.add_argument("--tokens-file", help="the token file (default: from the configuration)")
        p.add_argument("-P", "--persist-dir", help="the data directory (tokens under security/)")


def expiry(text: str | None, now: float) -> float | None:
    """`--expires` as a Unix time: a duration from now, or a UTC date or time."""
    if text is None or text == "never":
        return None
    m = _DURATION.match(text)
    if m:
        return now + int(m.group(1)) * _UNITS[m.group(2)]
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TokenError(
            f"bad --expires {text!r}: a duration (90d) or a date (2027-01-31)"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    stamp = when.timestamp()
    if stamp <= now:
        raise TokenError(f"--expires {text!r} is in the past")
    return stamp


def run(args: argparse.Namespace) -> int:
    name = f"logcaster token {args.token_command}"
    try:
        overrides = {"persist.dir": args.persist_dir, "auth.tokens_file": args.tokens_file}
        config = load_config(args.config, overrides=overrides)
    except ConfigError as exc:
        print(f"{name}: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    path = tokens_path(config)
    if path is None:
        print(f"{name}: no token file: give --tokens-file, -P DIR or --config", file=sys.stderr)
        return EXIT_USAGE
    try:
        return _run(args, config, path)
    except TokenError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace, config: Config, path: Path) -> int:
    if args.token_command == "list":
        rows = [r.public() for r in read_tokens(path)]
        if args.json:
            sys.stdout.write(orjson.dumps({"tokens": rows}, option=orjson.OPT_INDENT_2).decode())
            sys.stdout.write("\n")
            return 0
        print(f"{'NAME':<24} {'ROLE':<9} {'ID':<9} {'CREATED':<21} EXPIRES")
        for r in rows:
            expires = r["expires"] or "never"
            print(f"{r['name']:<24} {r['role']:<9} {r['id']:<9} {r['created']:<21} {expires}")
        return 0
    action = f"token_{args.token_command}"
    try:
        if args.token_command == "create":
            expires = expiry(args.expires, time.time())
            token, record = create_token(path, args.name, args.role, expires)
        else:
            record = revoke_token(path, args.name)
    except TokenError as exc:
        _audit(config, action, args.name, str(exc))
        raise
    _audit(config, action, f"{record.name} ({record.role})")
    if args.token_command == "create":
        print(token)
        print(
            f"# token {record.name!r} ({record.role}) created; it is shown only this once",
            file=sys.stderr,
        )
        return 0
    print(f"revoked {record.name!r}", file=sys.stderr)
    return 0


def _audit(config: Config, action: str, detail: str, failure: str | None = None) -> None:
    directory = audit_dir(config)
    if directory is None:
        return
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    result = "ok" if failure is None else "failed"
    doc = audit.entry(f"cli:{user}", "cli", None, action, result, "local", "cli", failure, detail)
    audit.append_line(directory, doc)
