"""Stack traces of every common language and the events they must become (issue 16).

Test data for the multi-line grouping, with no tests in it. Written for this
project from each runtime's documented output and from how the anchors decide
(Fluent Bit's built-in `java`, `python`, `go` and `ruby` multiline parsers;
Google's fluent-plugin-detect-exceptions); classes, files and messages are
invented.

- `SAMPLES`: 4-8 traces per language in `LANGUAGES` (tests/multiline_traces_at.py:
  Java, C#, Node; _hash.py: PHP, Dart; _other.py: Python, Go, Ruby; each entry
  is (name, language, anchors, text)). Each is ONE event: alone, after an
  ordinary line, followed by one, and back to back with any other sample.
  `Sample.anchors` says where the anchors, configured for the sample's
  language, group it differently ("" when they too make one event of it; Fluent
  Bit has no parser for Node, PHP, C# or Dart, detect-exceptions reads Node and
  C# with its Java rules). Run with all languages at once, detect-exceptions'
  Java rule also claims any first line holding `Exception:` or `Error:`, which
  splits PHP 7+'s `PHP Fatal error:  Uncaught X: ...` at `Stack trace:`.
- `FORMS`: the forms the issue lists per language, as patterns; every one is in
  some sample of its language.
- `ORDINARY_LINES`: single lines of the usual formats that never join a trace.
- `NEAR_MISSES`: single lines that look close to a trace line but are one event
  each, alone and between ordinary lines; after a trace too when `after_trace`.
- `DISPUTED` (tests/multiline_disputed.py): inputs with more than one defensible
  grouping. No answer is claimed for them.
- Scenario builders (`alone`, `after_single_line`, `followed_by_line`,
  `back_to_back`, `interleaved`) return (what a sender writes, the expected event
  texts in order).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.multiline_disputed import DISPUTED as _DISPUTED
from tests.multiline_traces_at import TRACES as _AT_TRACES
from tests.multiline_traces_hash import TRACES as _HASH_TRACES
from tests.multiline_traces_other import TRACES as _OTHER_TRACES

LANGUAGES = ("java", "python", "go", "javascript", "ruby", "php", "csharp", "dart")

# What a sender writes (lines ending in "\n") and the events it must become.
Scenario = tuple[str, list[str]]


@dataclass(frozen=True)
class Sample:
    """One stack trace, exactly as the runtime prints it: one event."""

    name: str
    language: str  # one of LANGUAGES
    anchors: str  # how the anchors group it otherwise; "" when they agree
    text: str  # its lines joined with "\n", no trailing newline

    @property
    def lines(self) -> list[str]:
        return self.text.split("\n")


@dataclass(frozen=True)
class NearMiss:
    """A single line that looks like part of a trace and is one event of its own."""

    name: str
    text: str
    after_trace: bool  # also one event right after any sample (else: not claimed there)
    why: str


@dataclass(frozen=True)
class Disputed:
    """An input and the groupings reasonable tools make of it; none is claimed."""

    name: str
    why: str
    text: str
    groupings: tuple[tuple[str, tuple[str, ...]], ...]  # (who groups it so, its events)


SAMPLES: tuple[Sample, ...] = tuple(
    Sample(*t) for t in (*_AT_TRACES, *_HASH_TRACES, *_OTHER_TRACES)
)
DISPUTED: tuple[Disputed, ...] = tuple(Disputed(*t) for t in _DISPUTED)

# The forms issue 16 lists per language; each pattern matches in some sample's text.
FORMS: dict[str, dict[str, str]] = {
    "java": {
        "tab at frame": r"^\tat \S",
        "4-space at frame": r"^    at \S",
        "Caused by": r"^Caused by: ",
        "Suppressed, indented": r"^\s+Suppressed: ",
        "... N more": r"^\s+\.\.\. \d+ more$",
        "nested causes": r"(?s)^Caused by: .*^Caused by: ",
        "blank line inside": r"^$",
    },
    "python": {
        "Traceback": r"^Traceback \(most recent call last\):$",
        "File line": r'^  File "[^"]+", line \d+, in \S+$',
        "code line": r"^  File .*\n    \S",
        "During handling": r"^\n"
        r"During handling of the above exception, another exception occurred:\n\n",
        "direct cause": r"^\nThe above exception was the direct cause of the following "
        r"exception:\n\n",
        "final Exception: (tuple)": r"^Exception: \('.*'\)\Z",
        "final KeyError: 'x'": r"^KeyError: '\w+'\Z",
        "final bare ValueError": r"^ValueError\Z",
        "final module.CustomError": r"^[a-z_]+(?:\.[a-z_]+)+\.[A-Z]\w+: .+\Z",
    },
    "go": {
        "panic": r"\A(?:.* )?panic: ",
        "blank line": r"^$",
        "goroutine N [running]": r"^goroutine \d+ \[running\]:$",
        "unindented func frame": r"^[\w./*()-]+\(.*\)$",
        "tab file:line +0x": r"^\t/\S+\.go:\d+ \+0x[0-9a-f]+$",
        "created by": r"^created by \S+",
        "[signal SIGSEGV ...]": r"^\[signal SIGSEGV: segmentation violation .*\]$",
        "exit status 2": r"^exit status 2\Z",
    },
    "javascript": {
        "TypeError": r"\ATypeError: ",
        "ReferenceError": r"\AReferenceError: ",
        "at frame": r"^    at \S",
        "at async": r"^    at async \S",
        "at new": r"^    at new \S",
    },
    "ruby": {
        "file.rb:NN:in 'method': message (Class)": r"\A\S+\.rb:\d+:in '[^']+': .+ \([\w:]+\)$",
        "tab from": r"^\tfrom \S+:\d+:in ",
        "Rails leading space": r"\A [\w:]+ \(.*\):$",
        "Rails NoMethodError": r"\A NoMethodError \(",
        "Rails frame": r"^  \S+\.rb:\d+:in ",
    },
    "php": {
        "PHP Fatal error: Uncaught": r"\A(?:\[[^\]]+\] )?PHP Fatal error:  Uncaught ",
        "Stack trace": r"^Stack trace:$",
        "#0 frame": r"^#0 \S",
        "{main}": r"^#\d+ \{main\}$",
        "thrown in ... on line N": r"^  thrown in \S+ on line \d+\Z",
    },
    "csharp": {
        "System.X: message": r"\A(?:Unhandled exception\. )?System\.[\w.]+Exception: ",
        "at ... in file.cs:line N": r"^   at \S.*\) in \S+\.cs:line \d+$",
        "End of inner exception": r"^   --- End of inner exception stack trace ---$",
        "End of stack trace from previous location": (
            r"^--- End of stack trace from previous location ---$"
        ),
        "---> System.X": r"^ ---> System\.[\w.]+",
    },
    "dart": {
        "Unhandled exception": r"\AUnhandled exception:$",
        "#0 main (file:///...:N:M)": r"^#\d+ +main \(file:///\S+:\d+:\d+\)$",
        "asynchronous suspension": r"^<asynchronous suspension>$",
    },
}

# Each one event wherever it stands: its first character never continues a
# trace ("[", "{", "<", a digit), and no anchor starts a trace at it.
ORDINARY_LINES: tuple[str, ...] = (
    "[INFO] 2026-01-19 08:14:02.117 berth-api/v3.2.0: berth 4 assigned to vessel MV Kestrel",
    '{"ts":"2026-01-19T08:14:02.311Z","level":"info","service":"ledger","msg":"day closed"}',
    "2026-01-19 08:14:03 WARN: tariff cache stale by 42s",
    "<134>1 2026-01-19T08:14:03.502Z dock-07 quarry 2211 - - shift change recorded",
    "<30>Jan 19 08:14:04 dock-07 harbor-sync[881]: synced 14 berths",
    "[WARN] 2026-01-19 08:14:05.020 tariff-svc/v1.4.0: rate table reloaded in 1840ms",
)

NEAR_MISSES: tuple[NearMiss, ...] = (
    NearMiss(
        "level-word-error",
        "ERROR: connection refused by ledger-db:5432",
        True,
        "an upper-case level word; no trace starts with it",
    ),
    NearMiss(
        "plain-error-message",
        "Error: disk quota for tenant acme exceeded",
        True,
        "shaped like a JavaScript error's first line, but no `at` frame follows",
    ),
    NearMiss(
        "at-clock-time",
        "at 10:00 the nightly export ran for 42s",
        True,
        "frames are indented; this `at` starts the line",
    ),
    NearMiss(
        "hash-number",
        "#3 in queue: invoice batch 2291",
        False,
        "PHP and Dart frames are `#N`; after PHP 5's form (no `thrown in` after "
        "`{main}`) detect-exceptions still takes `#` lines",
    ),
    NearMiss("panic-word", "panic mode off for shard 7", True, "Go's first line is `panic: `"),
    NearMiss(
        "goroutine-word",
        "goroutine count high: 18234 (limit 20000)",
        True,
        "a goroutine header is `goroutine N [state]:`, and only inside a panic",
    ),
    NearMiss(
        "exception-colon",
        "Exception: retry budget exhausted for job 88",
        True,
        "an exception line with nothing after it that belongs to it",
    ),
    NearMiss(
        "caused-by-words",
        "Caused by user action: cart emptied by owner",
        True,
        "a cause line has its colon right after `Caused by`",
    ),
    NearMiss(
        "n-more-words",
        "... 3 more items waiting for QA",
        False,
        "Fluent Bit's java parser matches `... N more` with no end anchor, so "
        "right after a Java trace it takes this line",
    ),
    NearMiss(
        "dotted-name-colon",
        "config.reload: 14 keys changed",
        True,
        "shaped like Python's `module.Error: message`, with no traceback before it",
    ),
    NearMiss(
        "error-name-inside",
        "TypeError count in the last hour: 3",
        True,
        "`TypeError` without a colon after it",
    ),
    NearMiss(
        "php-warning",
        "PHP Warning:  Undefined variable $tonnage in /var/www/harbor/src/Tariff.php on line 88",
        True,
        "a PHP warning is one line: no `Stack trace:` follows",
    ),
    NearMiss(
        "php-fatal-without-trace",
        "PHP Fatal error:  Allowed memory size of 268435456 bytes exhausted (tried to "
        "allocate 65536 bytes) in /var/www/harbor/src/Report.php on line 140",
        True,
        "a fatal error that is not an uncaught exception has no stack",
    ),
    NearMiss(
        "traceback-word",
        "Traceback recording disabled for worker 4",
        True,
        "not `Traceback (most recent call last):`",
    ),
    NearMiss(
        "file-word",
        "File berths.csv imported, line 88 skipped",
        True,
        'Python\'s `File "...", line N` lines are indented and quoted',
    ),
    NearMiss(
        "unhandled-word",
        "Unhandled exception count: 0 since restart",
        True,
        "Dart's first line is exactly `Unhandled exception:`",
    ),
    NearMiss(
        "signal-bracket",
        "[signal handler] SIGTERM received, draining",
        True,
        "`[signal ...` belongs to a trace only right after `panic:`",
    ),
    NearMiss(
        "created-by-words",
        "created by admin at 09:14 via console",
        False,
        "after a Go trace's last frame, Fluent Bit and detect-exceptions take "
        "`created by ` for a frame",
    ),
    NearMiss(
        "go-log-short-file",
        "main.go:42: listening on :8080",
        True,
        "Go's log with a short file name; a frame's file line is indented",
    ),
    NearMiss(
        "rails-completed",
        "Completed 500 Internal Server Error in 12ms (ActiveRecord: 2.1ms | Allocations: 1432)",
        True,
        "Rails' request summary, not `Error (message):`",
    ),
    NearMiss(
        "json-with-stack-field",
        '{"level":"error","msg":"render failed","stack":"TypeError: x is undefined'
        '\\n    at render (/srv/web/app.js:10:5)"}',
        True,
        "a JSON line that carries a stack in a field is one line",
    ),
    NearMiss(
        "python-final-line-alone",
        "KeyError: 'berth_id'",
        False,
        "right after a trace ending in a bare `ValueError`, a grouper may take it "
        "for the final line",
    ),
    NearMiss(
        "node-version",
        "Node.js v20.11.1",
        False,
        "Node prints it at the end of a crash report (DISPUTED node-uncaught-caret)",
    ),
)

_NOT_AFTER_TRACE = frozenset(m.text for m in NEAR_MISSES if not m.after_trace)


def sample(name: str) -> Sample:
    """The sample called `name`."""
    for s in SAMPLES:
        if s.name == name:
            return s
    raise KeyError(name)


def by_language(language: str) -> tuple[Sample, ...]:
    if language not in LANGUAGES:
        raise KeyError(language)
    return tuple(s for s in SAMPLES if s.language == language)


def forms(s: Sample) -> set[str]:
    """The forms of its language (FORMS) that `s` shows."""
    return {form for form, pattern in FORMS[s.language].items() if re.search(pattern, s.text, re.M)}


def interleaved(*pieces: Sample | str) -> Scenario:
    """Samples and single lines in this order, one event each.

    A single line must be one non-empty line with no leading whitespace (how those
    group is disputed), and a near miss may follow a sample only if `after_trace`.
    """
    events: list[str] = []
    previous: Sample | str | None = None
    for piece in pieces:
        if isinstance(piece, str):
            if not piece or "\n" in piece or piece[0] in " \t":
                raise ValueError(f"not a claimable single line: {piece!r}")
            if isinstance(previous, Sample) and piece in _NOT_AFTER_TRACE:
                raise ValueError(f"no grouping is claimed for {piece!r} after a trace")
            events.append(piece)
        else:
            events.append(piece.text)
        previous = piece
    return "".join(e + "\n" for e in events), events


def alone(s: Sample) -> Scenario:
    """The trace alone on its connection."""
    return interleaved(s)


def after_single_line(s: Sample, line: str = ORDINARY_LINES[0]) -> Scenario:
    """An unrelated single line, then the trace: two events."""
    return interleaved(line, s)


def followed_by_line(s: Sample, line: str = ORDINARY_LINES[1]) -> Scenario:
    """The trace, then an unrelated single line it must not swallow: two events."""
    return interleaved(s, line)


def back_to_back(*samples: Sample) -> Scenario:
    """Traces with nothing in between: one event each."""
    if len(samples) < 2:
        raise ValueError("back_to_back needs two samples or more")
    return interleaved(*samples)
