"""The grouping against test data written apart from it (tests/multiline_samples.py):
50 traces of 8 languages, alone, after and before an ordinary line, and every pair
back to back; the look-alike lines; and the groupings chosen for disputed inputs.
Each scenario is fed whole and a line per read."""

from __future__ import annotations

import pytest

from logcaster.options import MultilineConfig
from logcaster.pipeline.framing import LineFramer
from tests.multiline_samples import (
    DISPUTED,
    NEAR_MISSES,
    ORDINARY_LINES,
    SAMPLES,
    Disputed,
    NearMiss,
    Sample,
    after_single_line,
    alone,
    back_to_back,
    followed_by_line,
)


def frame(data: str, per_line: bool) -> list[str]:
    framer = LineFramer(64 * 1024, MultilineConfig())
    raw = data.encode()
    chunks = [line + b"\n" for line in raw.split(b"\n")[:-1]] if per_line else [raw]
    out = [text for chunk in chunks for text in framer.feed(chunk)] + framer.close()
    return [text.decode() for text in out]


@pytest.mark.parametrize("s", SAMPLES, ids=lambda s: s.name)
def test_each_sample_is_one_event(s: Sample) -> None:
    for per_line in (False, True):
        for build in (alone, after_single_line, followed_by_line):
            data, expected = build(s)
            assert frame(data, per_line) == expected, (build.__name__, per_line)


@pytest.mark.parametrize("first", SAMPLES, ids=lambda s: s.name)
def test_each_sample_then_any_other_are_two_events(first: Sample) -> None:
    for second in SAMPLES:
        data, expected = back_to_back(first, second)
        assert frame(data, per_line=False) == expected, second.name
        assert frame(data, per_line=True) == expected, second.name


@pytest.mark.parametrize("miss", NEAR_MISSES, ids=lambda m: m.name)
def test_look_alike_lines_stay_alone(miss: NearMiss) -> None:
    text = miss.text
    for line in ORDINARY_LINES:
        assert frame(f"{line}\n{text}\n{line}\n", per_line=False) == [line, text, line]
    if miss.after_trace:
        for s in SAMPLES:
            assert frame(f"{s.text}\n{text}\n", per_line=True) == [s.text, text], s.name


# The groupings LogCaster chose where tools disagree (docs/multiline.md says why):
# a trace under an error record is the record's; an indented line continues the
# event before it; a blank line after a finished trace is an event of its own.
CHOSEN = {
    "python-logged-traceback": "one event: the log call",
    "java-after-logger-line": "one event: the log call",
    "node-uncaught-caret": "one event: the whole input",
    "node-error-properties": "one event: the whole input",
    "go-fatal-error": "one event: the whole input",
    "java-psql-detail-line": "one event: the whole input",
    "tab-indented-app-line": "one event: SPEC §3's leading-whitespace rule",
    "json-pretty-printed": "SPEC §3's leading-whitespace rule",
    "trace-then-blank-line": "detect-exceptions (all languages)",
    "ruby-error-highlight": "one event: the whole input",
    "python-exception-group": "one event: the whole input",
    "php-next-chained": "one event: the whole input",
    "dotnet-console-logger": "one event: the log call",
}


@pytest.mark.parametrize("case", DISPUTED, ids=lambda d: d.name)
def test_disputed_inputs_get_the_chosen_grouping(case: Disputed) -> None:
    groupings = dict(case.groupings)
    chosen = [who for who in groupings if who.startswith(CHOSEN[case.name])]
    assert len(chosen) == 1, (case.name, list(groupings))
    expected = list(groupings[chosen[0]])
    assert frame(case.text + "\n", per_line=False) == expected
    assert frame(case.text + "\n", per_line=True) == expected
