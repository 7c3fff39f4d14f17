"""Which line continues a stack trace, language by language (SPEC §3).

A small state machine per language, in the spirit of Google's
detect-exceptions, but with the languages detected rather than chosen: the
state says what kind of trace (if any) the event so far is, and `step` says
whether the next line continues it and what the state becomes. One table
serves every language, because their first lines differ: a Java/JS/C#
headline, a Python `Traceback`, a Go `panic:`, a Ruby `file.rb:NN:in`, a PHP
`PHP Fatal error:`, a Dart `Unhandled exception:`, a Node `file.js:NN`.

Rules every state shares (the generic ones LogCaster always had):
- an indented line continues the event before it;
- the seed-002 detail lines (`Details:`, `Recovery Action:`, `Thread:`,
  `Request ID:`) continue it, and so do `Caused by:` and `... N more`;
- the line after a seed header whose message is empty continues it.

What a state adds is the non-indented lines only a trace of its kind has:
Python's final exception line, Go's unindented frames, PHP's `#0` frames,
C#'s `--- End of ... ---`. Any other non-indented line ends the trace and is
looked at anew: it may start the next trace, which is then a new event (two
traces back to back stay two events). Blank lines inside a trace are decided
by the walker (`multiline.py`): they join only when the next non-blank line
continues the trace.
"""

from __future__ import annotations

import re

# States. The ints are small so the walker's tests stay cheap.
NONE = 0  # not in a trace: the event so far is a plain line or record
SEED_OPEN = 1  # after a seed header whose message is on the next line
SEED = 2  # inside a seed-002 record (message, details, its trace)
JAVA_HEAD = 3  # after a Java/JS/C#-style exception headline
JAVA = 4  # among its frames (`at ...`), causes and `... N more`
PY = 5  # inside a Python traceback, before its final exception line
PY_END = 6  # after the final exception line: a chained traceback may follow
PY_CHAIN = 7  # after "During handling of ..." / "The above exception ...": Traceback next
GO_PANIC = 8  # after `panic:` / `fatal error:` (and `[signal ...]`)
GO = 9  # among goroutines and their frames
RUBY = 10  # after a Ruby or Rails headline: `from`/indented frames follow
PHP = 11  # in a PHP stack: `#N` frames, `thrown in`, a chained `Next`
DART_HEAD = 12  # after `Unhandled exception:`: the message line follows
DART = 13  # the message and what it quotes, until the first `#N` frame
DART_FRAMES = 14  # `#N` frames, `<asynchronous suspension>`
NODE_SRC = 15  # after Node's `file.js:NN` source line: code, caret, blank, the error
USER = 100  # USER + k: inside user rule k (multiline.rules[k])

# States in which a blank line may be part of the trace (if what follows is).
PHP_HEAD = 16  # after a PHP error line: only `Stack trace:` makes it a trace
DART_QUOTE = 17  # after a Dart exception's message and the source line it quotes
NODE_CODE = 18  # after Node's source line and the code line it shows
BLANK_OK = frozenset(
    {JAVA_HEAD, JAVA, PY_END, PY_CHAIN, GO_PANIC, GO, RUBY, PHP_HEAD, PHP}
    | {DART, DART_QUOTE, DART_FRAMES, NODE_SRC, NODE_CODE}
)

_DETAIL = re.compile(rb"(?:Details|Recovery Action|Thread|Request ID):")
# Lines that continue whatever precedes them, even with their indentation lost
# (some shippers strip it): Java's cause and elision lines, a JVM/JS frame, a
# Python frame.
_JAVA_MORE = re.compile(
    rb"Caused by:|\.\.\. \d+ (?:more|common frames omitted)(?=\n|$)"
    rb"|at (?:async |new )?[\w$.<>\[\]/-]+ ?\(|File \"[^\"\n]*\", line \d+"
)
# Either of the above, in one match: group d (a detail line) or m (a JVM line).
_ANY_STATE = re.compile(b"(?P<d>" + _DETAIL.pattern + b")|(?P<m>" + _JAVA_MORE.pattern + b")")
# The first lines of traces below end in (?=\n|$), not $, so that CANDIDATES can
# reuse them on a whole chunk. A headline: an exception type (dotted, or a bare
# name ending in Error or Exception) then ":" or the end of the line; also the
# JVM's and .NET's prefixes.
_EXC_NAME = (
    rb"(?:(?:[A-Za-z_$][\w$]*\.)+[A-Za-z_$][\w$]*(?:Exception|Error|Throwable|Fault)"
    rb"|(?:[A-Z][A-Za-z]*)?(?:Error|Exception)|[A-Z][A-Za-z]*(?:Interrupt|Exit))"
)
_EXC_HEAD = re.compile(
    rb"(?:Exception in thread \"[^\"\n]*\" |Unhandled [Ee]xception[.:] )?"
    + _EXC_NAME
    + rb"(?: \[[A-Z][A-Z0-9_]*\])?(?::|(?=\n|$))"
)
# Non-indented lines of a JVM/.NET/JS trace: .NET's markers (and a PHP-style
# "Stack trace:"), the "}" closing the properties Node prints after a stack, and
# Node's version line at the end of a crash report.
_CS_END = re.compile(rb"--- End of |Stack trace:$|\}$|Node\.js v\d")
_TRACEBACK = re.compile(rb"Traceback \(most recent call last\):")
# Python's last traceback line: the exception's (dotted) name, then ":" or nothing.
_PY_FINAL = re.compile(rb"(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?::|$)")
_PY_CHAIN = re.compile(
    rb"(?:During handling of the above exception, another exception occurred"
    rb"|The above exception was the direct cause of the following exception):"
)
_PANIC = re.compile(rb"(?:panic|fatal error): ")
_GO_GOROUTINE = re.compile(
    rb"goroutine \d+ \[[^\]]*\]:|runtime stack:$|\.\.\.additional frames elided\.\.\.$"
)
_GO_SIGNAL = re.compile(rb"\[signal SIG[A-Z]+")
_GO_FRAME = re.compile(rb"created by |[\w./*()\[\]$-]+\(.*\)$")
# A goroutine dump without a `panic:` line before it (net/http's "http: panic
# serving ...", a SIGQUIT dump) starts at its first goroutine.
_GO_DUMP = re.compile(rb"goroutine \d+ \[[^\]\n]*\]:(?=\n|$)")
_PANIC_WORD = re.compile(rb"\bpanic")
_EXIT_STATUS = re.compile(rb"exit status \d+$")
_RUBY_HEAD = re.compile(rb"\S+\.rb:\d+:in ")
_RAILS_HEAD = re.compile(rb" *[A-Z]\w*(?:::[A-Z]\w*)* \(.*\):(?=\n|$)")  # Rails may indent it
_PHP_HEAD = re.compile(
    rb"PHP (?:Fatal error|Warning|Notice|Parse error|Deprecated"
    rb"|Catchable fatal error|Recoverable fatal error): |Fatal error: Uncaught "
)
_PHP_CONT = re.compile(rb"(?:PHP )?(?:Stack trace:|#\d+ )|PHP +\d+\. ")
# PHP's "Stack trace:" under a line naming the exception (a prefixed error-log
# line, PHP 5's "exception 'X' with message ..."): the trace goes with that line.
_PHP_NEXT = re.compile(rb"Next [\w\\]+")  # the outer exception of a chain
_PHP_STACK = re.compile(rb"(?:PHP )?Stack trace:(?=\n|$)")
_NAMES_EXCEPTION = re.compile(rb"(?i)exception|error|uncaught")
_DART_HEAD = re.compile(rb"Unhandled exception:(?=\n|$)")
_CARET = re.compile(rb"\s*\^+\s*$")
_DART_FRAME = re.compile(rb"#\d+\s|<asynchronous suspension>")
_NODE_SRC = re.compile(rb"(?:(?:/|[A-Za-z]:\\|file://)\S*\.[cm]?[jt]sx?|node:[\w/.-]+):\d+(?=\n|$)")
_NODE_ERROR = re.compile(rb"[\w.$]*(?:Error|Exception)\b")

# Where the walker must look when not in a trace: the "\n" before a line that
# may continue the event before it or start a trace (m.start() + 1 is the line),
# and which kind of line it is (m.lastgroup), so the commonest continuation
# lines need no second look. Lines starting with "[", "{", "<" or a digit are
# headers of their own and fail at their first byte, so a chunk of ordinary
# log lines costs one failed test per line, in C. The empty group `open` marks
# the line after one ending in ":" or " ": a seed header with an empty message,
# confirmed by OPEN_HEADER.
_FIRST_LINES = (_TRACEBACK, _PANIC, _DART_HEAD, _PHP_HEAD, _PHP_STACK, _GO_DUMP, _NODE_SRC)
_TRACE_STARTS = b"|".join(p.pattern for p in (*_FIRST_LINES, _EXC_HEAD, _RAILS_HEAD))
_INDENTED_RUN = rb"(?P<indent>[ \t])[^\n]*(?:\n[ \t](?!" + _RAILS_HEAD.pattern + rb")[^\n]*)*"
CANDIDATES = re.compile(
    rb"\n(?![\[{<0-9])(?:"
    # Rails indents its error line: a headline, not a continuation.
    rb"(?=(?P<rails>(?= )" + _RAILS_HEAD.pattern + rb"))"
    # A run of indented lines is one candidate: the walker takes it whole.
    rb"|" + _INDENTED_RUN +
    # A line starting `key=` (logfmt, Go's slog: `ts=`, `time=`, `level=`) opens
    # no trace: skipped at once, where trying every alternative below cost ~0.6 us
    # a line (the Ruby one walks its first token). Only a Ruby headline could
    # start so, and no Ruby source path does.
    rb"|(?![a-z]++=)(?="
    rb"(?P<detail>" + _DETAIL.pattern + rb")"
    rb"|(?P<more>" + _JAVA_MORE.pattern + rb")"
    rb"|(?P<start>" + _TRACE_STARTS +
    # A Ruby headline, narrower than _RUBY_HEAD to keep the scan cheap: a path
    # starting with "/", "." or a lower-case letter.
    rb"|[/.a-z][^\s:]*\.rb:\d+:in )"
    rb")"
    rb"|(?<=[: ]\n)(?P<open>)"
    rb")"
)
# The same, with each indented line a candidate of its own (for user rules).
CANDIDATE_LINES = re.compile(CANDIDATES.pattern.replace(_INDENTED_RUN, rb"(?P<indent>[ \t])"))
assert CANDIDATE_LINES.pattern != CANDIDATES.pattern
# Candidate kinds (CANDIDATES' group names) as small ints.
INDENT, DETAIL, MORE, START_KIND, OPEN = range(5)
KINDS = {
    "indent": INDENT,
    "detail": DETAIL,
    "more": MORE,
    "start": START_KIND,
    "rails": START_KIND,
    "open": OPEN,
}

# A log record at error level: the trace that follows it is its own (Python's
# logging.exception, log4j's and logback's "ERROR ... message" then the exception).
_ANNOUNCES = re.compile(
    rb"(?:^|[\s\[|:(])(?:ERROR|FATAL|CRITICAL|SEVERE|CRIT|ERR|EMERG|ALERT)(?:[\s\]|:)]|$)"
    rb"|level=(?:error|fatal|critical)\b"
)


def _announces(line: bytes) -> bool:
    """Whether `line` is a record at error level (_ANNOUNCES), with a cheap test first."""
    return (
        b"ERR" in line
        or b"FATAL" in line
        or b"CRIT" in line
        or b"SEVERE" in line
        or b"EMERG" in line
        or b"ALERT" in line
        or b"level=" in line
    ) and (_ANNOUNCES.search(line) is not None)


OPEN_HEADER = re.compile(
    rb"(?:\[[A-Za-z]+\] \d{4}-\d\d-\d\d[ T][\d:.,]+ [\w.-]+/\S+(?: pod/\S+)?:"
    rb"|[A-Za-z]+: [\w.-]+/\S+ pod/\S+"
    rb") *$"
)


# `start`'s answer beside yes and no: `line` joins the event before it only if
# the trace it starts goes on (a JVM headline under an error record: alone, an
# "Error: ..." line is a record of its own).
IF_CONTINUED = 2


def open_header(line: bytes, prev: bytes | None) -> tuple[int, int]:
    """A line CANDIDATES marked only as following a line ending in ":" or " ": it
    continues a seed header whose message is empty, or nothing."""
    if prev is not None and prev[-1:] in (b":", b" ") and OPEN_HEADER.match(prev):
        return True, SEED
    return False, NONE


def start(line: bytes, prev: bytes | None, record: bool) -> tuple[int, int]:
    """Not in a trace: (whether `line` continues the event before it: 0, 1 or
    IF_CONTINUED; the new state).

    `prev` is the line before (None: no event before it in this stream);
    `record`: it was a plain line or record, not the end of a trace. A trace
    starting after an unrelated line is an event of its own, but one after a
    record at error level is that record's (the exception it logged)."""
    c = line[:1]
    if (c == b" " or c == b"\t") and not _RAILS_HEAD.match(line):
        return True, NONE
    m = _ANY_STATE.match(line)
    if m is not None:
        return True, SEED if m.lastgroup == "d" else JAVA
    if prev is not None and prev[-1:] in (b":", b" ") and OPEN_HEADER.match(prev):
        return True, SEED
    if prev is not None and _PHP_STACK.match(line) and _NAMES_EXCEPTION.search(prev):
        return True, PHP
    state = _trace_start(line)
    if record and prev is not None:
        if state == PY and _announces(prev):
            return True, state
        if state == JAVA_HEAD and _announces(prev):
            return IF_CONTINUED, state
        if state == GO and _PANIC_WORD.search(prev):
            return True, state
    return False, state


# Every first line of a trace in one pattern, its group naming the state (one
# match per line instead of one per language; the order is the precedence).
_STARTS = re.compile(
    b"|".join(
        b"(?P<s%d>%s)" % (state, pattern.pattern)
        for state, pattern in (
            (PY, _TRACEBACK),
            (GO_PANIC, _PANIC),
            (DART_HEAD, _DART_HEAD),
            (PHP_HEAD, _PHP_HEAD),
            (RUBY, _RAILS_HEAD),
            (RUBY, _RUBY_HEAD),
            (GO, _GO_DUMP),
            (NODE_SRC, _NODE_SRC),
            (JAVA_HEAD, _EXC_HEAD),
        )
    ).replace(b"(?P<s10>", b"(?:", 1)  # two patterns open RUBY: name the group once
)


def _trace_start(line: bytes) -> int:
    """The state a trace starting at `line` opens (NONE: no trace starts here)."""
    m = _STARTS.match(line)
    if m is None:
        return NONE
    return RUBY if m.lastgroup is None else int(m.lastgroup[1:])


def step(state: int, line: bytes) -> tuple[bool, int]:
    """In trace `state` (or a seed record): whether the non-blank `line` continues it,
    and the state after it. Not continuing means the trace ended before `line`."""
    c = line[:1]
    if (c == b" " or c == b"\t") and not (c == b" " and _RAILS_HEAD.match(line)):
        if state == JAVA_HEAD:
            return True, JAVA
        if state == DART_HEAD:
            return True, DART
        return True, state
    if state == SEED_OPEN:
        return True, SEED
    m = _ANY_STATE.match(line)
    if m is not None:
        return True, SEED if m.lastgroup == "d" else JAVA
    if state == SEED:
        if _TRACEBACK.match(line):
            return True, PY
        if _EXC_HEAD.match(line):
            return True, JAVA_HEAD
    elif state in (JAVA_HEAD, JAVA):
        if _CS_END.match(line):
            return True, PHP if line.startswith(b"Stack") else JAVA
    elif state == PY:
        if _PY_FINAL.match(line):
            return True, PY_END
    elif state == PY_END:
        if _PY_CHAIN.match(line):
            return True, PY_CHAIN
    elif state == PY_CHAIN:
        if _TRACEBACK.match(line):
            return True, PY
    elif state in (GO_PANIC, GO):
        if _GO_GOROUTINE.match(line):
            return True, GO
        if state == GO_PANIC and _GO_SIGNAL.match(line):
            return True, GO_PANIC
        if state == GO and _GO_FRAME.match(line):
            return True, GO
        if _EXIT_STATUS.match(line):
            return True, NONE
    elif state == PHP_HEAD:
        if _PHP_CONT.match(line) and not line.startswith(b"#"):
            return True, PHP  # "Stack trace:" (xdebug: "PHP   1. ...")
    elif state == PHP:
        if _PHP_CONT.match(line) or _PHP_NEXT.match(line):
            return True, PHP
    elif state == DART_HEAD:
        return True, DART  # the exception's message
    elif state in (DART, DART_QUOTE):
        if _DART_FRAME.match(line):
            return True, DART_FRAMES
        if _CARET.match(line):
            return True, DART_QUOTE
        if state == DART and _trace_start(line) == NONE:
            return True, DART_QUOTE  # a FormatException's source, once
    elif state == DART_FRAMES:
        if _DART_FRAME.match(line):
            return True, DART_FRAMES
    elif state in (NODE_SRC, NODE_CODE):
        if _NODE_ERROR.match(line):
            return True, JAVA_HEAD
        if _CARET.match(line):
            return True, NODE_CODE
        if state == NODE_SRC and _trace_start(line) == NONE:
            return True, NODE_CODE  # the code line, when not indented
    return False, state
