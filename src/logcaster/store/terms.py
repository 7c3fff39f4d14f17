"""The store's token index: per chunk, its terms and the rows of its common ones.

A *term* is a maximal run of token bytes (ASCII letters, digits, `_`, `-`, and
every byte >= 0x80) in a chunk's escaped event lines. Every run of token bytes
of a keyword lies inside one term wherever the keyword occurs, so:

- a chunk whose terms contain no such run cannot hold the keyword (pruning is
  exact for any keyword with a run of 3+ token bytes, a regex's required
  literals too);
- for a keyword made only of token bytes, the rows holding it are exactly the
  rows holding a term that contains it (escaped bytes; a keyword starting
  with `n` or `r` may also match inside an escape such as `\\n`, so those
  rows are only candidates).

Per segment `X`, three append-only files (docs/store-design.md, "Token index"):

- `X.terms`: each chunk's distinct terms that have no bitmap, `\\n` before
  and after each one, shortest first, chunk after chunk;
- `X.tposts`: per chunk, its common terms (in at least 1/10 of its rows;
  `\\n`-separated), one row bitmap each (`ceil(rows / 8)` bytes), and a bloom
  filter of its other terms, of each term's rest after an escape letter, and of
  the ASCII runs of terms with other bytes, all but those of digits and `-`
  only (10 bits each; whole-term lookups of field values),
  a bitmap of its plain rows (ASCII without a backslash, store/bulk_rows.py),
  and where in its term list the terms of each length start (LENGTHS_SIZE);
- `X.tchunks`: one record per chunk indexed (TERM_DTYPE, CRC32C): which chunk
  (first id, count), where its sections are, and the layout (TERM_LAYOUT).

Records are written after their data, each fsynced, and a record is only read
if its CRC holds and its sections lie in the files: a crash leaves at most a
torn tail. Only chunks that can no longer grow get a record, so nothing is
ever rewritten. The token index is derived data, built by the indexer process
while it has no other work (`StoreIndexer.index_terms`); a chunk without it is
scanned.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import google_crc32c
import numpy as np
import numpy.typing as npt

from logcaster.parsing.line_shapes import ascii_alnum

TERMS_SUFFIX = ".terms"
POSTS_SUFFIX = ".tposts"
TCHUNKS_SUFFIX = ".tchunks"
SEGMENT_BLOOM_SUFFIX = ".sbloom"  # the segment's filter of whole terms (store/segment_bloom.py)
TERM_SUFFIXES = (TERMS_SUFFIX, POSTS_SUFFIX, TCHUNKS_SUFFIX, SEGMENT_BLOOM_SUFFIX)
BLOOM_BITS_PER_TERM = 10  # with 6 probes: about 1% false positives
BLOOM_PROBES = 6
COMMON_SHARE = 10  # a term in at least 1/COMMON_SHARE of a chunk's rows gets a bitmap
MAX_COMMON = 64  # bitmaps per chunk at most (the most frequent candidates)
_SAMPLE_STEP = 4  # common-term candidates come from every 4th token's counts
# A term list's offsets by length: entry L (0..MAX_LENGTH) is where the terms of
# L bytes or more start (at the b"\n" before the first one); longer lengths use
# the last entry. A piece of L bytes can only lie in a term of L bytes or more.
MAX_LENGTH = 64
LENGTHS_SIZE = 4 * (MAX_LENGTH + 1)  # uint32 each, at the end of a record's X.tposts section
# Records of another layout (the term list unsorted, no length offsets: layout 1,
# whose records were 52 bytes and had no such field) are never read as this one:
# their bytes fail the CRC or this field, and the writer cuts them (rebuilt).
TERM_LAYOUT = 2

TOKEN_BYTES = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-" + bytes(range(128, 256))
)
ESCAPE_LETTERS = frozenset(b"nr")  # a stored `\n` or `\r` puts one before a term
_SIGN_DIGITS = b"0123456789-"
ASCII_RUNS = re.compile(rb"[A-Za-z0-9_\-]+")  # token bytes but those >= 0x80
_MASK = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)  # the low k bytes
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
# Every other byte becomes a space, so bytes.split() cuts exactly at term bounds.
_TO_SPACES = bytes(c if c in TOKEN_BYTES else 32 for c in range(256))

_FIELDS = [
    ("first_id", "<u8"),
    ("count", "<u4"),
    ("terms_start", "<u8"),  # its section of X.terms
    ("terms_end", "<u8"),
    ("posts_start", "<u8"),  # its section of X.tposts: common terms, then bitmaps
    ("common_bytes", "<u4"),  # length of the common-term list
    ("common", "<u4"),  # number of common terms (= bitmaps)
    ("bloom_bits", "<u4"),  # size of the bloom filter after the bitmaps (a multiple of 64)
    ("layout", "<u4"),  # TERM_LAYOUT
]
_BODY_DTYPE = np.dtype(_FIELDS)
TERM_DTYPE = np.dtype([*_FIELDS, ("crc", "<u4")])
BODY_SIZE = _BODY_DTYPE.itemsize  # what the CRC covers


@dataclass(frozen=True, slots=True)
class ChunkTerms:
    """The token index of one chunk, as built."""

    terms: bytes  # b"\n" + each term without a bitmap followed by b"\n", shortest first
    common: list[bytes]  # terms with a bitmap, in bitmap order
    bitmaps: bytes  # len(common) row bitmaps, np.packbits order (row 0 = MSB of byte 0)
    bloom: bytes = b""  # every other term, for whole-term lookups (bloom_positions)
    plain: bytes = b""  # row bitmap: the line is ASCII without a backslash
    lengths: bytes = bytes(LENGTHS_SIZE)  # where terms of each length start (length_offsets)


def build_terms(text: bytes, rows: int) -> ChunkTerms:
    """The token index of a chunk's joined payload: `rows` lines, each ending in b"\\n"."""
    plain = plain_rows(text, rows)
    # The bitmaps' arrays are freed before the terms are split out: the token
    # process's peak is the larger of the two, not their sum (docs/memory.md).
    common, bitmaps = _bitmaps(text, rows) if rows else ([], b"")
    every = set(text.translate(_TO_SPACES).split())
    if not every or rows == 0:
        return ChunkTerms(b"\n", [], b"", make_bloom([]), plain, length_offsets([]))
    # Digits-only terms are left out of the list: no piece a query looks for is
    # digits only (term_lookup.piece_of), and none can lie inside one. Common
    # terms are listed with their bitmaps instead.
    distinct = every.difference(common)
    rare = [t for t in distinct if not t.isdigit()]
    rare.sort(key=len)  # a piece of L bytes is looked up in the terms of L bytes or more
    listed = b"\n" + b"\n".join(rare) + b"\n" if rare else b"\n"
    # A whole term right after an escaped newline or CR reads `n`/`r` + term
    # here: the bloom holds it both ways, so a field value is always found.
    after_escape = [t[1:] for t in every if t[0] in ESCAPE_LETTERS and len(t) > 1]
    # A parser may end a value at non-ASCII whitespace (U+00A0, U+2028), whose
    # bytes are token bytes here: the ASCII runs of such terms go in too.
    ascii_runs = [r for t in every if not t.isascii() for r in ASCII_RUNS.findall(t)]
    # Terms of digits and `-` only are left out: no whole-term lookup asks for
    # one (term_lookup.whole_term leaves such values to the scan).
    bloom = make_bloom(
        [t for t in (*distinct, *after_escape, *ascii_runs) if t.strip(_SIGN_DIGITS)]
    )
    return ChunkTerms(listed, common, bitmaps, bloom, plain, length_offsets(rare))


def length_offsets(rare: list[bytes]) -> bytes:
    """The length section of a term list (`rare`, shortest first): per length L in
    0..MAX_LENGTH, the offset of the b"\\n" before its first term of L bytes or more
    (the list's last b"\\n" when it has none), so that list[offset:] is a term list
    of those terms."""
    lengths = np.fromiter(map(len, rare), np.int64, len(rare))
    ends = np.concatenate(([0], np.cumsum(lengths + 1)))
    first = np.searchsorted(lengths, np.arange(MAX_LENGTH + 1), side="left")
    return ends[first].astype("<u4").tobytes()


def plain_rows(text: bytes, rows: int) -> bytes:
    """The row bitmap of lines that are ASCII without a backslash: there the stored
    line is the body, and a regex translated for the store is the regex itself."""
    a = np.frombuffer(text, np.uint8)
    bad = np.flatnonzero((a >= 128) | (a == 92))
    plain = np.ones(rows, np.bool_)
    if len(bad):
        plain[np.searchsorted(np.flatnonzero(a == 10), bad)] = False
    return np.packbits(plain).tobytes()


def term_hashes(terms: list[bytes]) -> npt.NDArray[np.uint64]:
    """The 32-bit hash (CRC-32) of each term, as the bloom filters use it."""
    return np.fromiter(map(zlib.crc32, terms), np.uint64, len(terms))


def bloom_positions(
    hashes: npt.NDArray[np.uint64], bits: npt.NDArray[np.uint64]
) -> npt.NDArray[np.uint64]:
    """Bit positions (hashes x BLOOM_PROBES) of each hash in filters of `bits` bits
    (broadcast: one filter size per hash, or one for all): double hashing."""
    h1 = hashes[..., None]
    h2 = ((h1 * np.uint64(0x9E3779B1)) >> np.uint64(16)) | np.uint64(1)
    probes = np.arange(BLOOM_PROBES, dtype=np.uint64)
    return (h1 + probes * h2) % bits[..., None]


def make_bloom(terms: list[bytes]) -> bytes:
    """A bloom filter of `terms`: BLOOM_BITS_PER_TERM bits each, BLOOM_PROBES probes."""
    size = max(64, -(-len(terms) * BLOOM_BITS_PER_TERM // 64) * 64)
    bloom = np.zeros(size // 8, np.uint8)
    if terms:
        at = bloom_positions(term_hashes(terms), np.array(size, np.uint64)).ravel()
        np.bitwise_or.at(
            bloom,
            (at >> np.uint64(3)).astype(np.int64),
            (1 << (at & np.uint64(7))).astype(np.uint8),
        )
    return bloom.tobytes()


def token_bytes(a: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Which bytes of `a` are in TOKEN_BYTES (vector comparisons, not a table)."""
    token: npt.NDArray[np.bool_] = ascii_alnum(a) | (a >= 128) | (a == ord("_")) | (a == ord("-"))
    return token


def _bitmaps(text: bytes, rows: int) -> tuple[list[bytes], bytes]:
    """The chunk's common terms (up to 16 bytes, not digits only) and their row bitmaps.

    Vectorised: each term of up to 16 bytes is keyed by its bytes as two
    integers and its length (an exact identity), candidates come from a sample
    of the keys, and their rows from one pass over all of them."""
    a = np.frombuffer(text + bytes(16), np.uint8)  # room to read 16 bytes past any start
    is_token = token_bytes(a)
    edges = np.diff(is_token.view(np.int8), prepend=np.int8(0))
    # Offsets in int32 (a chunk is a few MiB at most): half the memory of int64.
    starts = np.flatnonzero(edges == 1).astype(np.int32)
    if not len(starts):
        return [], b""
    length = np.flatnonzero(edges == -1).astype(np.int32) - starts
    del edges
    # Whether a term has a byte other than a digit: from its start up to the
    # next term's start only its own bytes can be token bytes.
    is_token &= a - np.uint8(ord("0")) >= 10  # not a digit (below '0' wraps around)
    eligible = (length <= 16) & np.logical_or.reduceat(is_token, starts)
    del is_token
    # The 8 bytes at every offset as one little-endian integer: a 1-D take of
    # them costs half a 2-D take of a sliding window's rows.
    words = np.ndarray((len(a) - 7,), "<u8", buffer=a, strides=(1,))
    low = words[starts] & _MASK[np.minimum(length, 8)]
    high = words[starts + 8] & _MASK[np.clip(length - 8, 0, 8)]
    key = (low * _K1) ^ (high * _K2) ^ length.astype(np.uint64)
    need = -(-rows // COMMON_SHARE)
    keys, counts = np.unique(key[eligible][::_SAMPLE_STEP], return_counts=True)
    top = np.argsort(-counts, kind="stable")[:MAX_COMMON]
    cutoff = max(1, need // (_SAMPLE_STEP * 2))  # generous: the exact count decides
    candidates = np.sort(keys[top[counts[top] >= cutoff]])
    if not len(candidates):
        return [], b""
    pos = np.minimum(np.searchsorted(candidates, key), len(candidates) - 1)
    match = eligible & (candidates[pos] == key)
    # A key names one candidate; its first token is the term. Two terms sharing a
    # key (a hash collision) must not share a bitmap: only exact equals count.
    first = np.full(len(candidates), -1, np.int64)
    hits = np.flatnonzero(match)
    first[pos[hits][::-1]] = hits[::-1]
    rep = first[pos]
    match &= (low == low[rep]) & (high == high[rep]) & (length == length[rep])
    hits = np.flatnonzero(match)
    line = np.searchsorted(np.flatnonzero(a == 10), starts[hits])
    present = np.zeros((len(candidates), rows), np.bool_)
    present[pos[hits], line] = True
    keep = np.flatnonzero(present.sum(axis=1) >= need)
    at = first[keep]
    common = [
        text[s : s + n] for s, n in zip(starts[at].tolist(), length[at].tolist(), strict=True)
    ]
    return common, np.packbits(present[keep], axis=1).tobytes()


def term_paths(base: Path) -> tuple[Path, Path, Path]:
    """(terms, posts, records) paths of the token index at `base`."""
    return (
        base.with_name(base.name + TERMS_SUFFIX),
        base.with_name(base.name + POSTS_SUFFIX),
        base.with_name(base.name + TCHUNKS_SUFFIX),
    )


def body_crc(body: bytes) -> int:
    return int(google_crc32c.value(body))


def post_sections(table: npt.NDArray[np.void]) -> dict[str, npt.NDArray[np.int64]]:
    """Where each record's X.tposts sections start (common-term list, bitmaps, bloom
    filter, plain-row bitmap, length offsets) and end, and its bitmaps' width: one
    place for the layout."""
    count = table["count"].astype(np.int64)
    width = (count + 7) // 8
    common = table["posts_start"].astype(np.int64)
    bitmaps = common + table["common_bytes"].astype(np.int64)
    bloom = bitmaps + table["common"].astype(np.int64) * width
    plain = bloom + table["bloom_bits"].astype(np.int64) // 8
    return {
        "common": common,
        "bitmaps": bitmaps,
        "bloom": bloom,
        "plain": plain,
        "lengths": plain + width,
        "end": plain + width + LENGTHS_SIZE,
        "width": width,
    }


def posts_size_of(rec: np.void) -> int:
    """Bytes of a record's X.tposts section: post_sections' sum for one record, in
    plain ints (load_terms checks every record with it)."""
    width = -(-int(rec["count"]) // 8)
    return (
        int(rec["common_bytes"])
        + (int(rec["common"]) + 1) * width
        + int(rec["bloom_bits"]) // 8
        + LENGTHS_SIZE
    )
