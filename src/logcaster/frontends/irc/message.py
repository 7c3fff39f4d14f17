"""IRC message lines: parsing what clients send, building what the server sends.

The grammar is RFC 1459/2812 as the modern client protocol document states it
(modern.ircdocs.horse): optional IRCv3 tags (`@k=v;k2 `), an optional source
(`:nick!user@host `), the command (a word or three digits), then parameters
separated by spaces, the last of which may be "trailing" (after ` :`, spaces
and all). A line ends in CR LF; a lone LF is accepted too, as servers do.

Limits (RFC 2812 §2.3, IRCv3 message tags): a line is at most 512 bytes with
its CR LF, tags aside; tags at most 8191 bytes. The server never sends a longer
line: `build` refuses one, and callers cut text to fit first (format.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_LINE_BYTES = 512  # with CR LF, tags aside
MAX_TAGS_BYTES = 8191  # with the leading @ and the space after
MAX_INPUT_BYTES = MAX_LINE_BYTES + MAX_TAGS_BYTES


def too_long(raw: bytes) -> bool:
    """Whether a received line (without its LF) is over the limits: 510 bytes
    and CR for the message, 8191 more for tags."""
    if raw.startswith(b"@"):
        tags, _, raw = raw.partition(b" ")
        if len(tags) + 1 > MAX_TAGS_BYTES:
            return True
    return len(raw.rstrip(b"\r")) > MAX_LINE_BYTES - 2


_TAG_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class ParseError(ValueError):
    """A line that is not an IRC message (no command, a bad command)."""


@dataclass(slots=True)
class Message:
    """One parsed line. `command` is upper-cased; `params` include the trailing one."""

    command: str
    params: list[str] = field(default_factory=list)
    source: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def arg(self, index: int, default: str = "") -> str:
        return self.params[index] if index < len(self.params) else default


def parse(line: str) -> Message:
    """A message from one line (its CR LF may be there or not)."""
    rest = line.rstrip("\r\n")
    tags: dict[str, str] = {}
    if rest.startswith("@"):
        raw, _, rest = rest[1:].partition(" ")
        tags = _parse_tags(raw)
        rest = rest.lstrip(" ")
    source = None
    if rest.startswith(":"):
        source, _, rest = rest[1:].partition(" ")
        rest = rest.lstrip(" ")
    command, _, rest = rest.partition(" ")
    if not command:
        raise ParseError("no command")
    if not (command.isascii() and (command.isalpha() or (len(command) == 3 and command.isdigit()))):
        raise ParseError(f"not a command: {command[:20]!r}")
    params: list[str] = []
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest.startswith(":"):
            params.append(rest[1:])
            break
        word, _, rest = rest.partition(" ")
        params.append(word)
    return Message(command.upper(), params, source, tags)


def _parse_tags(raw: str) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, _, value = item.partition("=")
        tags[key] = _unescape(value)  # a later duplicate wins, as the spec says
    return tags


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
    out: list[str] = []
    chars = iter(value)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        nxt = next(chars, "")  # a lone backslash at the end is dropped
        out.append(_TAG_UNESCAPES.get(nxt, nxt))
    return "".join(out)


def build(source: str | None, command: str, *params: str) -> bytes:
    """One line to send, CR LF included. Every parameter but the last must be a
    non-empty word not starting with `:`; the last is sent as trailing when it
    needs to be (empty, spaces, a leading `:`). Raises ValueError for a line
    over MAX_LINE_BYTES or a parameter holding CR, LF or NUL: callers cut and
    neutralise text first."""
    parts = [f":{source} {command}" if source else command]
    last = len(params) - 1
    for i, param in enumerate(params):
        if "\r" in param or "\n" in param or "\0" in param:
            raise ValueError(f"{command}: a parameter holds CR, LF or NUL")
        if i == last and (not param or " " in param or param.startswith(":")):
            parts.append(":" + param)
        elif not param or " " in param or param.startswith(":"):
            raise ValueError(f"{command}: middle parameter {param!r} is not one word")
        else:
            parts.append(param)
    data = (" ".join(parts) + "\r\n").encode("utf-8", "replace")
    if len(data) > MAX_LINE_BYTES:
        raise ValueError(f"{command}: {len(data)} bytes, over {MAX_LINE_BYTES}")
    return data
