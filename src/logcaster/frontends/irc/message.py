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


MIDDLE_MAX_BYTES = 100  # a middle parameter past this is cut when a line is too long
_MARK = "…".encode()


def build(source: str | None, command: str, *params: str) -> bytes:
    """One line to send, CR LF included, never over MAX_LINE_BYTES: the last
    parameter is cut to fit (ending in `…`), and middle ones to
    MIDDLE_MAX_BYTES if even that is not enough (names, echoed arguments:
    lengths in characters can be four times as many bytes). Every parameter
    but the last must be a non-empty word not starting with `:`; the last is
    sent as trailing when it needs to be. Raises ValueError for a parameter
    holding CR, LF or NUL, or a middle one that is not a word: callers
    neutralise text first."""
    head = [f":{source} {command}" if source else command]
    middle, trailing = list(params[:-1]), params[-1] if params else None
    for param in params:
        if "\r" in param or "\n" in param or "\0" in param:
            raise ValueError(f"{command}: a parameter holds CR, LF or NUL")
    for param in middle:
        if not param or " " in param or param.startswith(":"):
            raise ValueError(f"{command}: middle parameter {param!r} is not one word")
    data = _join(head, middle, trailing)
    if len(data) > MAX_LINE_BYTES and trailing is not None:
        room = MAX_LINE_BYTES - len(_join(head, middle, ""))
        if room < 40:  # the middle parameters themselves are too long
            middle = [_cut(p.encode(), MIDDLE_MAX_BYTES).decode() for p in middle]
            room = MAX_LINE_BYTES - len(_join(head, middle, ""))
        trailing = _cut(trailing.encode(), max(0, room)).decode()
        data = _join(head, middle, trailing)
    if len(data) > MAX_LINE_BYTES:  # no trailing: a middle parameter is huge
        middle = [_cut(p.encode(), MIDDLE_MAX_BYTES).decode() for p in middle]
        data = _join(head, middle, trailing)
    return data


def _join(head: list[str], middle: list[str], trailing: str | None) -> bytes:
    parts = head + middle
    if trailing is not None:
        needs_colon = not trailing or " " in trailing or trailing.startswith(":")
        parts.append(":" + trailing if needs_colon else trailing)
    return (" ".join(parts) + "\r\n").encode("utf-8", "replace")


def _cut(data: bytes, room: int) -> bytes:
    """`data` in at most `room` bytes at a character boundary, ending in `…` if cut."""
    if len(data) <= room:
        return data
    end = max(0, room - len(_MARK))
    while end > 0 and (data[end] & 0xC0) == 0x80:
        end -= 1
    return data[:end] + _MARK
