"""Redaction before storage (SPEC §9): a pipeline `Rewriter` (pipeline.py).

Runs on admitted texts before they get ids, so no sink, live tail or forward
group sees a secret. It is on the ingest hot path, so a batch costs one pass of
a C matcher, not N regexes per line in Python: the batch is joined with `\\n`
and Hyperscan runs every rule's prefilter over it at once
(security/redact_rules.py). A match's end offset names its text and its id the
rule; only those texts are rewritten, each by every rule that flagged it, in a
fixed order (and by every operator rule after the first rewrite: a rule sees
what the rules before it left). A text no prefilter flags is returned as it
came, and a batch without any flag is the same list, untouched.

The `\\n` between texts acts like a text's edge for `\\b` and for `^`/`$` (the
prefilters run multi-line), so every match inside one text is a match in the
joined batch. An operator pattern Hyperscan cannot take, or one anchored with
`\\A`, `\\z` or `\\Z`, is tested on each text by RE2 instead: slower, and
logged at start.

What was redacted is counted per rule: `logcaster_redactions_total{rule}`,
STATS `Redacted` and `Redacted<Rule>`.
"""

from __future__ import annotations

import logging

import hyperscan
import numpy as np

from logcaster.log import log_event
from logcaster.metrics.registry import Metric, Readings
from logcaster.options import RedactConfig
from logcaster.security.redact_rules import (
    BUILTINS,
    PREFILTERS,
    REWRITES,
    Marks,
    OperatorRule,
    operator_rule,
)

logger = logging.getLogger("logcaster.redact")

REDACTIONS = Metric(
    "redactions",
    "counter",
    "secrets replaced by a marker before storage, by rule (built-in or redact.rules)",
    ("rule",),
    stats="Redacted",
    stats_by=("rule", "Redacted"),
)

_UNANCHORED = (r"\A", r"\z", r"\Z")
MAX_HITS_PER_TEXT = 8  # prefilter matches per text in a batch, on average, before a scan stops


class Redactor:
    """The built-ins named in `redact.builtins`, then `redact.rules`, in order."""

    def __init__(self, config: RedactConfig) -> None:
        self.marks = Marks(config.marker)
        # Built-ins in their fixed order, whatever order the config lists them in.
        self.builtins = [name for name in REWRITES if name in config.builtins]
        self.rules: list[OperatorRule] = [
            operator_rule(r.name, r.pattern, r.replacement, self.marks) for r in config.rules
        ]
        self.counts: dict[str, int] = dict.fromkeys(
            [*self.builtins, *(r.name for r in self.rules)], 0
        )
        # Rule slots: built-ins first, then operator rules, as they run.
        self._slots = len(self.builtins) + len(self.rules)
        expressions: list[bytes] = []
        ids: list[int] = []
        flags: list[int] = []
        for slot, name in enumerate(self.builtins):
            for pattern in PREFILTERS[name]:
                expressions.append(pattern)
                ids.append(slot)
                flags.append(hyperscan.HS_FLAG_MULTILINE)
        # Operator rules Hyperscan cannot prefilter: RE2 on each text.
        self._per_text: list[int] = []
        for i, rule in enumerate(self.rules):
            slot = len(self.builtins) + i
            if any(a in rule.pattern for a in _UNANCHORED) or not _hyperscan_takes(rule.pattern):
                self._per_text.append(slot)
                log_event(
                    logger,
                    logging.WARNING,
                    "redact_rule_slow",
                    always=True,
                    rule=rule.name,
                    reason="Hyperscan cannot prefilter this pattern: RE2 tests every event",
                )
                continue
            expressions.append(rule.pattern.encode())
            ids.append(slot)
            flags.append(_OPERATOR_FLAGS)
        self._db: hyperscan.Database | None = None
        if expressions:
            self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
            self._db.compile(expressions=expressions, ids=ids, flags=flags)

    def rewrite(self, texts: list[bytes]) -> list[bytes]:
        """The texts, secrets replaced; `texts` itself when nothing was flagged."""
        if not texts:
            return texts
        flagged = self._flag(texts)
        if not flagged:
            return texts
        out = list(texts)
        for i, slots in flagged.items():
            out[i] = self._rewrite_one(texts[i], slots)
        return out

    def _flag(self, texts: list[bytes]) -> dict[int, set[int]]:
        """The texts some rule may change: index -> the rule slots that flagged it."""
        flagged: dict[int, set[int]] = {}
        if self._db is not None:
            # (rule slot, end offset in the joined batch); bounded: a batch of long
            # digit runs would report a card candidate at nearly every byte.
            hits = _Hits(MAX_HITS_PER_TEXT * len(texts) + 1024)
            stopped = False
            joined = b"\n".join(texts)
            try:
                self._db.scan(joined, match_event_handler=_on_match, context=hits)
            except hyperscan.ScanTerminated:
                stopped = True
            if hits:
                # ends[i]: the offset just past text i's `\n` in the joined batch; a
                # match belongs to the first text whose end is at or past its own
                # (texts may hold `\n` themselves: lengths, not newlines, decide).
                lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
                ends = np.cumsum(lengths + 1)
                where = np.searchsorted(ends, [end for _, end in hits], side="left")
                for (slot, _), index in zip(hits, where.tolist(), strict=True):
                    flagged.setdefault(index, set()).add(slot)
                if stopped:  # from where the scan stopped on, every rule on every text
                    every = set(range(self._slots))
                    for i in range(int(where[-1]), len(texts)):
                        flagged[i] = every
        for slot in self._per_text:
            regex = self.rules[slot - len(self.builtins)].regex
            for i, text in enumerate(texts):
                if regex.search(text) is not None:
                    flagged.setdefault(i, set()).add(slot)
        return flagged

    def _rewrite_one(self, text: bytes, slots: set[int]) -> bytes:
        count = self._count
        first_rule = len(self.builtins)
        original = text
        for slot in sorted(slots):
            if slot >= first_rule:
                break
            text = REWRITES[self.builtins[slot]](text, self.marks, count)
        # An operator rule sees what the built-ins left: once they changed the
        # text, its prefilter (run on the text as it came) says nothing more.
        changed = text != original
        for i, rule in enumerate(self.rules):
            if changed or first_rule + i in slots:
                text = rule.rewrite(text, self.marks, count)
        return text

    def _count(self, rule: str) -> None:
        self.counts[rule] += 1

    def readings(self, out: Readings) -> None:
        out.each(REDACTIONS, self.counts)

    def names(self) -> list[str]:
        return list(self.counts)


# The prefilter of an operator rule: a superset of its matches, multi-line so `^`
# and `$` match at every text's edges in the joined batch.
_OPERATOR_FLAGS = hyperscan.HS_FLAG_PREFILTER | hyperscan.HS_FLAG_MULTILINE


def _hyperscan_takes(pattern: str) -> bool:
    db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
    try:
        db.compile(expressions=[pattern.encode()], ids=[0], flags=[_OPERATOR_FLAGS])
    except hyperscan.error:
        return False
    return True


class _Hits(list[tuple[int, int]]):
    """Prefilter matches of one scan, up to `cap`."""

    def __init__(self, cap: int) -> None:
        super().__init__()
        self.cap = cap


def _on_match(slot: int, start: int, end: int, flags: int, hits: object) -> bool:
    assert isinstance(hits, _Hits)
    hits.append((slot, end))
    return len(hits) >= hits.cap  # True stops the scan


__all__ = ["BUILTINS", "REDACTIONS", "Redactor"]
