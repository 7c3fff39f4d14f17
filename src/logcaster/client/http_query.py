"""`logcaster query --http URL COMMAND`: a line-protocol command asked over HTTP.

The command is the one `logcaster query` sends to the query port, and the
output is the same (frontends/answers.py): the `FOUND:` line and one row per
event, or with `--json` (or a `JSON` prefix, or `format=json`) the JSON
document. QUERY, FILTER, SEARCH, REGEX and RECENT become a
`GET /api/v1/query`; COUNT and STATS read `GET /api/v1/stats` (COUNT is its
`Current`). HELP and CLEAR exist only on the query port.
"""

from __future__ import annotations

import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, TextIO

import orjson

from logcaster.exceptions import QuerySyntaxError
from logcaster.frontends.answers import answer_from_json, answer_text, stats_text
from logcaster.query.parser import RECENT_DEFAULT, parse_params, unquote
from logcaster.security.neutralize import json_safe, neutral, neutral_lines
from logcaster.security.tls_client import client_context

QUERY_PATH = "/api/v1/query"
STATS_PATH = "/api/v1/stats"
MAX_ANSWER_BYTES = 1 << 30  # a 10,000-row answer of 64 KiB events is 640 MiB


@dataclass(frozen=True, slots=True)
class HttpCommand:
    verb: str  # QUERY (every search), COUNT or STATS
    params: list[tuple[str, str]]
    json: bool


def split_json(line: str) -> tuple[bool, str]:
    """Whether the line starts with the `JSON` prefix, and the command after it."""
    text = line.strip()
    head, _, rest = text.partition(" ")
    if head.upper() == "JSON":
        return True, rest.strip()
    return False, text


def to_http(line: str) -> HttpCommand:
    """The HTTP request a command line becomes; QuerySyntaxError with the
    line protocol's wording for a command it would refuse too."""
    as_json, text = split_json(line)
    head, _, rest = text.partition(" ")
    verb, rest = head.upper(), rest.strip()
    if verb in ("COUNT", "STATS"):
        if rest:
            raise QuerySyntaxError(f"Invalid query syntax: {verb} takes no arguments")
        return HttpCommand(verb, [], as_json)
    if verb in ("QUERY", "FILTER"):
        try:
            params = parse_params(rest)
        except QuerySyntaxError as exc:
            raise QuerySyntaxError(f"Invalid query syntax: {exc}") from None
        if verb == "FILTER" and not params:
            raise QuerySyntaxError("Invalid query syntax: FILTER needs at least one key=value")
        fmt_json = any(k.lower() == "format" and v.lower() == "json" for k, v in params)
        return HttpCommand("QUERY", params, as_json or fmt_json)
    if verb in ("SEARCH", "REGEX"):
        value = unquote(rest)
        if not value:
            need = "a text" if verb == "SEARCH" else "a pattern"
            raise QuerySyntaxError(f"Invalid query syntax: {verb} needs {need}")
        key = "keyword" if verb == "SEARCH" else "regex"
        return HttpCommand("QUERY", [(key, value)], as_json)
    if verb == "RECENT":
        return HttpCommand("QUERY", [("limit", str(_recent_count(rest)))], as_json)
    if verb in ("HELP", "CLEAR"):
        raise QuerySyntaxError(f"{verb} is only on the query port (drop --http)")
    empty = verb in ("", "JSON")
    raise QuerySyntaxError(f"{'Empty' if empty else 'Unknown'} command. Use HELP for usage.")


def _recent_count(text: str) -> int:
    if not text:
        return RECENT_DEFAULT
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise QuerySyntaxError(
            f"Invalid query syntax: RECENT count must be a non-negative integer, not {text!r}"
        )
    if count == 0:
        raise QuerySyntaxError("Invalid query syntax: RECENT count must be at least 1")
    return count


def run(
    base_url: str,
    line: str,
    *,
    as_json: bool,
    timeout: float,
    out: TextIO,
    err: TextIO,
    tls: ssl.SSLContext | None = None,
    token: str | None = None,
) -> int:
    """Ask, print the answer to `out` as the query port's would read: 0, or 1
    for an error answer (on `out`, as the query port gives it) or no answer
    (on `err`). `tls`: for an https URL (None: verified against the system's CAs);
    `token`: sent as `Authorization: Bearer`."""
    try:
        command = to_http(line)
    except QuerySyntaxError as exc:
        return _error(str(exc), as_json or split_json(line)[0], out)
    want_json = as_json or command.json
    path = QUERY_PATH if command.verb == "QUERY" else STATS_PATH
    url = base_url.rstrip("/") + path
    if command.params:
        url += "?" + urllib.parse.urlencode(command.params)
    try:
        status, body = _get(url, timeout, tls, token)
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        err.write(f"logcaster: cannot query {base_url}: {reason}\n")
        return 1
    if status == 404 and path == STATS_PATH:
        reason = f"{base_url} has no {STATS_PATH}; ask the query port for {command.verb}"
        return _error(reason, want_json, out)
    try:
        doc: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return _error(f"HTTP {status}: the answer is not JSON", want_json, out)
    if status != 200 or not isinstance(doc, dict):
        message = doc.get("error") if isinstance(doc, dict) else None
        return _error(str(message or f"HTTP {status}"), want_json, out)
    if command.verb == "COUNT":
        count = int(doc.get("Current", 0))
        out.write(_json({"count": count}) if want_json else f"COUNT: {count}\n")
    elif want_json:
        out.write(json_safe(body).decode("utf-8", "replace") + "\n")
    elif command.verb == "STATS":
        out.write(neutral_lines(stats_text(doc)))
    else:
        try:
            out.write(answer_text(answer_from_json(doc)))
        except (KeyError, TypeError, ValueError) as exc:
            return _error(f"unexpected answer from {url}: {exc!r}", want_json, out)
    return 0


def _get(
    url: str, timeout: float, tls: ssl.SSLContext | None = None, token: str | None = None
) -> tuple[int, bytes]:
    """Status and body of a GET; HTTP error statuses are answers too."""
    if not url.startswith(("http://", "https://")):
        raise ValueError("the URL must start with http:// or https://")
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        context = (tls or client_context()) if url.startswith("https://") else None
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(MAX_ANSWER_BYTES)


def _error(message: str, as_json: bool, out: TextIO) -> int:
    out.write(_json({"error": message}) if as_json else f"ERROR: {neutral(message)}\n")
    return 1


def _json(doc: dict[str, Any]) -> str:
    return json_safe(orjson.dumps(doc)).decode() + "\n"
