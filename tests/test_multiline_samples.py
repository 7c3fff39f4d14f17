"""The multi-line test data (tests/multiline_samples.py) is well formed.

Nothing here groups anything: these checks keep the samples, the look-alike
lines, the disputed inputs and the scenario builders consistent with what
tests/multiline_samples.py promises, so the grouping tests can rely on them.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.multiline_samples import (
    DISPUTED,
    FORMS,
    LANGUAGES,
    NEAR_MISSES,
    ORDINARY_LINES,
    SAMPLES,
    Sample,
    after_single_line,
    alone,
    back_to_back,
    by_language,
    followed_by_line,
    forms,
    interleaved,
    sample,
)

_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def test_names_are_unique_and_plain() -> None:
    names = [s.name for s in SAMPLES] + [m.name for m in NEAR_MISSES] + [d.name for d in DISPUTED]
    assert [n for n, count in Counter(names).items() if count > 1] == []
    assert [n for n in names if not _NAME.fullmatch(n)] == []
    assert sample(SAMPLES[0].name) is SAMPLES[0]


def test_every_language_has_four_to_eight_samples() -> None:
    assert {s.language for s in SAMPLES} == set(LANGUAGES)
    counts = {lang: len(by_language(lang)) for lang in LANGUAGES}
    assert all(4 <= n <= 8 for n in counts.values()), counts


@pytest.mark.parametrize("s", SAMPLES, ids=lambda s: s.name)
def test_sample_text_is_one_multi_line_trace(s: Sample) -> None:
    text = s.text
    lines = s.lines
    assert len(lines) >= 2
    assert lines[0].strip() and lines[-1].strip(), "starts and ends with a non-blank line"
    assert "\r" not in text
    # Trailing whitespace only where the runtime writes a whitespace-only line.
    assert [ln for ln in lines if ln.strip() and ln != ln.rstrip()] == []
    assert s.anchors == s.anchors.strip()


def test_sample_texts_are_distinct() -> None:
    assert len({s.text for s in SAMPLES}) == len(SAMPLES)


def test_every_listed_form_is_in_some_sample() -> None:
    assert set(FORMS) == set(LANGUAGES)
    missing = {
        lang: sorted(set(FORMS[lang]) - set().union(*(forms(s) for s in by_language(lang))))
        for lang in LANGUAGES
    }
    assert {lang: m for lang, m in missing.items() if m} == {}


def test_single_lines_are_single_and_distinct() -> None:
    singles = list(ORDINARY_LINES) + [m.text for m in NEAR_MISSES]
    assert len(set(singles)) == len(singles)
    for line in singles:
        assert line and "\n" not in line and line[0] not in " \t", line
    assert all(line[0] in "[{<0123456789" for line in ORDINARY_LINES)
    first_lines = {s.lines[0] for s in SAMPLES}
    assert [m.text for m in NEAR_MISSES if m.text in first_lines] == []
    assert all(m.why for m in NEAR_MISSES)


def test_disputed_groupings_rebuild_their_input() -> None:
    for d in DISPUTED:
        assert len(d.groupings) >= 2, d.name
        assert len({events for _, events in d.groupings}) == len(d.groupings), d.name
        for who, events in d.groupings:
            assert who and "\n".join(events) == d.text, (d.name, who)


def test_builders_write_lines_and_expect_one_event_per_piece() -> None:
    java, go = by_language("java")[0], by_language("go")[0]
    assert alone(java) == (java.text + "\n", [java.text])
    text, events = after_single_line(go)
    assert events == [ORDINARY_LINES[0], go.text]
    assert text == f"{ORDINARY_LINES[0]}\n{go.text}\n"
    assert followed_by_line(java)[1] == [java.text, ORDINARY_LINES[1]]
    text, events = back_to_back(*SAMPLES)
    assert events == [s.text for s in SAMPLES]
    assert text == "".join(s.text + "\n" for s in SAMPLES)
    safe = next(m for m in NEAR_MISSES if m.after_trace)
    assert interleaved(java, safe.text)[1] == [java.text, safe.text]


def test_builders_refuse_what_is_not_claimed() -> None:
    java = by_language("java")[0]
    unsafe = next(m for m in NEAR_MISSES if not m.after_trace)
    with pytest.raises(ValueError):
        interleaved(java, unsafe.text)
    assert interleaved(ORDINARY_LINES[0], unsafe.text)[1] == [ORDINARY_LINES[0], unsafe.text]
    for bad in ("", "two\nlines", "\tindented", "  indented"):
        with pytest.raises(ValueError):
            interleaved(bad)
    with pytest.raises(ValueError):
        back_to_back(java)
