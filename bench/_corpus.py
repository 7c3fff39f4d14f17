"""Deterministic seed-style log corpus for the ingest benchmark.

The corpus mixes the formats LogCaster sees from the seed simulators: bracketed
`[LEVEL] date time service/version [pod/NAME]: message` lines, JSON lines,
`date time LEVEL: message` lines, syslog (RFC 5424 and 3164), logfmt, and
multi-line error blocks (Java stack traces and Python tracebacks, 15-30 lines
each, about 10% of all lines). Every block starts with a header line and every
other block line is a continuation line, so the block is one event.

Generation is seeded and fast (a few seconds for 5M lines): every single-line
format is pre-rendered into a pool of %-format strings, so a line costs one
random pool pick and one `%` with its timestamp and request id. The result is
written to `bench/out/corpus-<lines>.log` with a sidecar `.json` holding the
line, event and byte counts and the byte offsets where an event starts (the
only places the corpus may be split between connections).

`--corpus traces` (bench/_corpus_traces.py) swaps the seed-style blocks for
stack traces of every common language (Java, Python, Go, Node, Ruby, PHP, C#,
Dart; about 20% of lines) and adds single lines that only look like part of a
trace; its file is `corpus-traces-<lines>.log` and its sidecar says so.
`--corpus secrets` (bench/_corpus_secrets.py) is the default corpus with a
secret (card number, password, token, bearer header, AWS key) in ~10% of lines,
for `--redact`. `--corpus frequent` (bench/_corpus_frequent.py) is single-line
web and app logs (nginx access, slog text, JSON) where common words are common
(`timeout` in ~13% of events) and every event has request and trace ids; it has
no blocks, so it has its own line loop and shares only the file writing here.

The line formats are in bench/_corpus_lines.py, the multi-line blocks in
bench/_corpus_blocks.py and bench/_corpus_traces.py; this module owns the
generation loop (timestamps, request ids, the mix of kinds), the file and its
sidecar, the cache and the split into connections.
"""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import json
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from _corpus_blocks import Blocks, Pods, seed_blocks
from _corpus_frequent import frequent_chunks
from _corpus_lines import POOL_BITS, SINGLE_SHARES, build_pools, make_pods
from _corpus_secrets import secret_blocks
from _corpus_traces import trace_blocks

CORPUS_VERSION = 3
DEFAULT_SEED = 20260119

# Events per generation chunk; every chunk starts with an event, so each chunk
# start is a safe split point (about 256 KB apart).
_CHUNK_EVENTS = 2048
_START = dt.datetime(2026, 1, 19, 8, 0, 0, tzinfo=dt.UTC)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MS3 = tuple(f"{i:03d}" for i in range(1000))

# --corpus NAME -> what goes between its single lines (made after the line pools,
# from the same seeded generator).
CORPORA: dict[str, Callable[[random.Random, Pods, dict[str, list[str]]], Blocks]] = {
    "default": seed_blocks,
    "traces": trace_blocks,
    "secrets": secret_blocks,
}
# Every --corpus name: the seed-style ones above and `frequent`
# (bench/_corpus_frequent.py: single-line web and app logs, no blocks).
NAMES: tuple[str, ...] = (*CORPORA, "frequent")


@dataclass(frozen=True)
class CorpusInfo:
    """A generated corpus file and what the server should make of it."""

    path: Path
    lines: int
    events: int  # single lines + multi-line blocks: the server's expected Total
    nbytes: int
    blocks: int
    block_lines: int
    seed: int
    split_points: tuple[int, ...]  # byte offsets where an event starts, ascending, first 0
    generate_s: float  # seconds the generation took (0.0 when read from the cache)
    corpus: str = "default"  # the --corpus name (a key of CORPORA)

    def to_json(self) -> dict[str, object]:
        return {
            "version": CORPUS_VERSION,
            "corpus": self.corpus,
            "lines": self.lines,
            "events": self.events,
            "bytes": self.nbytes,
            "blocks": self.blocks,
            "block_lines": self.block_lines,
            "seed": self.seed,
            "split_points": list(self.split_points),
        }


# --------------------------------------------------------------------------- generation


def _event_weights(blocks: Blocks) -> tuple[list[str], list[float]]:
    """Kinds and their shares of *events*, so that lines come out in `SINGLE_SHARES`
    (times `blocks.singles_scale`) and `blocks.line_share`."""
    kinds = [kind for kind, _ in SINGLE_SHARES] + ["block"]
    scale = blocks.singles_scale
    weights = [share * scale for _, share in SINGLE_SHARES]
    weights.append(blocks.line_share / blocks.mean_lines)
    return kinds, weights


# One chunk of text as a corpus makes it: (text, lines, events, blocks, block lines).
Chunk = tuple[bytes, int, int, int, int]


def generate(
    path: Path, lines: int, seed: int = DEFAULT_SEED, corpus: str = "default"
) -> CorpusInfo:
    """Write a corpus of exactly `lines` lines to `path` (and its `.json` sidecar)."""
    if lines < 1:
        raise ValueError("a corpus needs at least one line")
    if corpus not in NAMES:
        raise ValueError(f"no corpus {corpus!r}: one of {', '.join(NAMES)}")
    started = time.perf_counter()
    rnd = random.Random(seed)
    if corpus == "frequent":
        chunks: Iterator[Chunk] = (
            (data, n, events, 0, 0)
            for data, n, events in frequent_chunks(rnd, lines, _START, _CHUNK_EVENTS)
        )
    else:
        chunks = _seed_style_chunks(rnd, lines, CORPORA[corpus])
    written = events = n_blocks = block_lines = 0
    nbytes = 0
    split_points: list[int] = []
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as f:
        for data, n_lines, n_events, n_chunk_blocks, n_block_lines in chunks:
            split_points.append(nbytes)
            f.write(data)
            nbytes += len(data)
            written += n_lines
            events += n_events
            n_blocks += n_chunk_blocks
            block_lines += n_block_lines
    info = CorpusInfo(
        path=path,
        lines=written,
        events=events,
        nbytes=nbytes,
        blocks=n_blocks,
        block_lines=block_lines,
        seed=seed,
        split_points=tuple(split_points),
        generate_s=time.perf_counter() - started,
        corpus=corpus,
    )
    assert written == lines, (written, lines)
    os.replace(tmp, path)
    _meta_path(path).write_text(json.dumps(info.to_json()) + "\n")
    return info


def _seed_style_chunks(
    rnd: random.Random,
    lines: int,
    make_blocks: Callable[[random.Random, Pods, dict[str, list[str]]], Blocks],
) -> Iterator[Chunk]:
    """The seed-style corpora (default, traces, secrets): single lines from the pools
    of bench/_corpus_lines.py and multi-line blocks, `lines` in all."""
    pods = make_pods(rnd)
    pools = build_pools(rnd, pods)
    blocks = make_blocks(rnd, pods, pools)
    make_block = blocks.make
    joins = blocks.joins
    last = ""  # the line written before, for `joins`
    kinds, weights = _event_weights(blocks)
    cum: list[float] = []
    acc = 0.0
    for w in weights:
        acc += w
        cum.append(acc)
    # Small ints are cheaper to dispatch on than strings in the hot loop.
    kind_ids = list(range(len(kinds)))
    k_info, k_debug, k_warn, k_json, k_plain, k_s5424, k_s3164, k_logfmt, k_block = kind_ids
    assert kinds[k_block] == "block" and kinds[k_logfmt] == "logfmt"
    p_info, p_debug, p_warn = pools["info"], pools["debug"], pools["warn"]
    p_json, p_plain, p_logfmt = pools["json"], pools["plain"], pools["logfmt"]
    p_s5424, p_s3164 = pools["syslog5424"], pools["syslog3164"]
    getrandbits = rnd.getrandbits
    choices = rnd.choices

    clock_ms = int(_START.timestamp() * 1000)
    cur_sec = -1
    sec_space = sec_t = sec_bsd = ""
    rid = 100_000
    written = 0
    while written < lines:
        # Near the end, fewer events than lines left, so blocks still fit.
        n_events = min(_CHUNK_EVENTS, max(1, (lines - written) * 9 // 10))
        # Lines a block may add beyond its own one, without overshooting `lines`.
        budget = lines - written - n_events
        out: list[str] = []
        append = out.append
        joined = n_blocks = block_lines = 0
        for kind in choices(kind_ids, cum_weights=cum, k=n_events):
            clock_ms += getrandbits(2)
            sec = clock_ms // 1000
            if sec != cur_sec:
                cur_sec = sec
                when = dt.datetime.fromtimestamp(sec, dt.UTC)
                day = f"{when.year:04d}-{when.month:02d}-{when.day:02d}"
                hms = f"{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
                sec_space = f"{day} {hms}"
                sec_t = f"{day}T{hms}"
                sec_bsd = f"{_MONTHS[when.month - 1]} {when.day:>2} {hms}"
            ms = _MS3[clock_ms % 1000]
            rid += 1
            if kind == k_info:
                append(p_info[getrandbits(POOL_BITS)] % (sec_space, ms, rid))
            elif kind == k_json:
                append(p_json[getrandbits(POOL_BITS)] % (sec_t, ms, rid))
            elif kind == k_warn:
                append(p_warn[getrandbits(POOL_BITS)] % (sec_space, ms))
            elif kind == k_logfmt:
                append(p_logfmt[getrandbits(POOL_BITS)] % (sec_t, ms, rid))
            elif kind == k_plain:
                append(p_plain[getrandbits(POOL_BITS)] % (sec_space,))
            elif kind == k_s5424:
                append(p_s5424[getrandbits(POOL_BITS)] % (sec_t, ms))
            elif kind == k_debug:
                append(p_debug[getrandbits(POOL_BITS)] % (sec_space, ms, rid))
            elif kind == k_s3164:
                append(p_s3164[getrandbits(POOL_BITS)] % (sec_bsd,))
            else:
                block = make_block(rnd, budget, f"{sec_space}.{ms}", rid)
                if block is None:  # no room left: a plain INFO line
                    append(p_info[getrandbits(POOL_BITS)] % (sec_space, ms, rid))
                    continue
                size = len(block)
                budget -= size - 1
                if joins is not None and joins(out[-1] if out else last, block):
                    joined += 1  # one event with the line before it
                out.extend(block)
                n_blocks += 1
                block_lines += size
        last = out[-1] if out else last
        out.append("")  # trailing newline
        written += len(out) - 1
        yield "\n".join(out).encode(), len(out) - 1, n_events - joined, n_blocks, block_lines


def _meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def corpus_path(out_dir: Path, lines: int, corpus: str = "default") -> Path:
    name = "corpus" if corpus == "default" else f"corpus-{corpus}"
    return out_dir / f"{name}-{lines}.log"


def load_cached(
    path: Path, lines: int, seed: int = DEFAULT_SEED, corpus: str = "default"
) -> CorpusInfo | None:
    """The cached corpus at `path` if it was made by this generator with these settings."""
    try:
        meta = json.loads(_meta_path(path).read_text())
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if (
        not isinstance(meta, dict)
        or meta.get("version") != CORPUS_VERSION
        or meta.get("lines") != lines
        or meta.get("seed") != seed
        or meta.get("bytes") != size
        or meta.get("corpus", "default") != corpus
    ):
        return None
    return CorpusInfo(
        path=path,
        lines=int(meta["lines"]),
        events=int(meta["events"]),
        nbytes=int(meta["bytes"]),
        blocks=int(meta["blocks"]),
        block_lines=int(meta["block_lines"]),
        seed=int(meta["seed"]),
        split_points=tuple(int(x) for x in meta["split_points"]),
        generate_s=0.0,
        corpus=corpus,
    )


def remove(info: CorpusInfo) -> None:
    """Delete a corpus file and its sidecar."""
    for p in (info.path, _meta_path(info.path)):
        p.unlink(missing_ok=True)


def split(data: memoryview, split_points: Sequence[int], parts: int) -> list[memoryview]:
    """Cut `data` into `parts` pieces of about equal size, only at event starts.

    Never cuts inside a multi-line block. With fewer split points than `parts`
    some pieces come out empty; callers should not ask for that many.
    """
    if parts < 1:
        raise ValueError("parts must be >= 1")
    total = len(data)
    points = sorted(set(split_points) | {0})
    cuts = [0]
    for k in range(1, parts):
        target = total * k // parts
        i = bisect.bisect_left(points, target)
        candidates = [points[j] for j in (i - 1, i) if 0 <= j < len(points)]
        best = min(candidates, key=lambda p: abs(p - target))
        cuts.append(max(best, cuts[-1]))
    cuts.append(total)
    return [data[a:b] for a, b in itertools.pairwise(cuts)]
