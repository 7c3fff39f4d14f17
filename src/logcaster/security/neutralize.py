"""Event text made safe to show again (CWE-117, log forging): one rule for every view.

Stored bytes are never changed: a sender's line is kept exactly as it came,
and neutralised only where it is shown to a person or a program that renders
it (text rows of the query port, the CLI, the live tail, the dashboard to
come, IRC). What is neutralised, and why:

- C0 controls except TAB, DEL and the C1 controls (U+0080-U+009F): a `\\r` or
  `\\n` forges rows, ESC (and the one-character C1 CSI U+009B, OSC U+009D)
  starts a terminal escape sequence: clear the screen, move the cursor, set
  the window title, write to the clipboard (OSC 52);
- U+2028 and U+2029: line and paragraph separators to editors, browsers and
  JavaScript;
- the bidirectional embeddings, overrides and isolates (U+202A-U+202E,
  U+2066-U+2069): they reorder what a reader sees ("Trojan Source").

Each is replaced by a visible escape that names the code point: `\\x1b`,
`\\x9b`, `\\u202e`, and `\\r`, `\\n` for the two a reader knows best. An
escape sequence is neutralised whole by escaping its introducer: what
follows (`[2J`, `]0;title`) is printable text, shown as it is, so the reader
sees the attempt. Backslashes are not doubled: a literal `\\x1b` typed by a
sender reads the same as an escaped ESC, but it is still one row and drives
nothing; a reader who needs the exact text asks for JSON.

JSON keeps the text exact (its value decodes to the stored text) and only
spells the same characters as `\\uXXXX` (`json_safe`): JSON escapes C0 but not
DEL, C1, the separators or the bidi controls, and a JSON answer is often
read in a terminal or embedded in a page.

Most lines hold none of these: each function checks with one C-level test
first (`str.isprintable`, a regex search; `bytes.isascii` or a memchr for JSON) and returns its
input unchanged, without copying it.
"""

from __future__ import annotations

import html
import re

# TAB is kept: it neither breaks a line nor moves the cursor back.
_CODES = (
    [c for c in range(0x20) if c != 0x09]
    + list(range(0x7F, 0xA0))
    + [0x2028, 0x2029]
    + list(range(0x202A, 0x202F))
    + list(range(0x2066, 0x206A))
)
_ESCAPES: dict[int, str] = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _CODES}
_ESCAPES.update({0x0A: "\\n", 0x0D: "\\r"})
_UNSAFE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")
# The same characters in UTF-8, as orjson writes them raw (it escapes C0 itself).
# In valid UTF-8 0xC2 and 0xE2 only ever start a character, so these match whole ones.
_JSON_UNSAFE = re.compile(rb"\x7f|\xc2[\x80-\x9f]|\xe2\x80[\xa8-\xae]|\xe2\x81[\xa6-\xa9]")


def needs_neutralizing(text: str) -> bool:
    """Whether `text` holds a character `neutral` would escape."""
    # isprintable() is about twice as fast as the search, and true for most lines.
    return not text.isprintable() and _UNSAFE.search(text) is not None


def neutral(text: str) -> str:
    """`text` with every unsafe character escaped visibly (one line, drives nothing)."""
    if not needs_neutralizing(text):
        return text
    return text.translate(_ESCAPES)


def neutral_lines(text: str) -> str:
    """`text` neutralised line by line: its own `\\n`s stay line breaks (a whole
    text answer, where rows are lines), everything else is escaped."""
    if not needs_neutralizing(text):
        return text
    return "\n".join(neutral(line) for line in text.split("\n"))


def _json_escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % ord(match.group().decode())


def json_safe(data: bytes) -> bytes:
    """A JSON document (UTF-8, C0 escaped as orjson writes it) with DEL, C1, the
    separators and the bidi controls written as `\\uXXXX`: the same value when
    parsed, inert when printed or embedded."""
    # memchr for the three lead bytes is several times faster than the regex's scan.
    if b"\x7f" not in data and (data.isascii() or (b"\xc2" not in data and b"\xe2" not in data)):
        return data
    return _JSON_UNSAFE.sub(_json_escape, data)


def html_text(text: str) -> str:
    """`text` for HTML element content or an attribute value: neutralised, then
    `& < > " '` escaped. The dashboard renders event text through this (server
    side) or sets it with `textContent` after the same neutralising (client side);
    never as markup."""
    return html.escape(neutral(text), quote=True)
