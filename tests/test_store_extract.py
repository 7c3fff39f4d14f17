"""parsing/extract.py: the bulk (ts, level, service) columns equal `parse_event`'s, exactly.

Real data throughout: the bench corpora (seed-style and frequent) framed as the
server frames them, the simulator's text/JSON/syslog output, and the API's edges.
Generated texts around each line shape: tests/test_store_extract_generated.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from logcaster.options import MultilineConfig
from logcaster.parsing.codes import LEVEL_CODES, LEVEL_NAMES, ServiceCodes, level_code
from logcaster.parsing.extract import Extractor, Fields, extract
from logcaster.parsing.line_shapes import word_bytes
from logcaster.parsing.parse import parse_event
from logcaster.pipeline.framing import LineFramer
from logcaster.segments.blocks import BlockFormatError, encode_payload
from logcaster.simulate.formats import Stamps, json_batch, syslog_message, text_batch
from logcaster.simulate.generator import Generator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import _corpus  # noqa: E402

RECEIVED = 1768867200.0  # 2026-01-20T00:00Z: the corpus and simulator times are the day before


def frame(data: bytes) -> list[bytes]:
    framer = LineFramer(64 * 1024, MultilineConfig())
    return framer.feed(data) + framer.close()


def assert_parity(
    x: Extractor, texts: Sequence[bytes], fields: Fields, received: Sequence[float]
) -> None:
    """Every event's ts (bit for bit), level and service equal parse_event's."""
    assert len(fields) == len(texts)
    ts = fields.ts.tolist()
    level = fields.level.tolist()
    service = fields.service.tolist()
    bad = []
    for i, text in enumerate(texts):
        ev = parse_event(i, received[i], "test", text)
        got = (ts[i], LEVEL_NAMES[level[i]], x.services.name(service[i]))
        if got != (ev.ts, ev.level, ev.service) or np.float64(ev.ts).tobytes() != (
            fields.ts[i].tobytes()
        ):
            bad.append((text[:160], got, (ev.ts, ev.level, ev.service)))
    assert not bad, f"{len(bad)} events differ, first: {bad[:3]}"


def chunks(texts: list[bytes], size: int) -> Iterator[list[bytes]]:
    for a in range(0, len(texts), size):
        yield texts[a : a + size]


# ---------------------------------------------------------------------------
# Real data


@pytest.fixture(scope="module")
def corpus_texts(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    path = tmp_path_factory.mktemp("corpus") / "corpus.log"
    _corpus.generate(path, 200_000, seed=11)
    return frame(path.read_bytes())


def test_parity_on_the_bench_corpus_as_segment_payloads(corpus_texts: list[bytes]) -> None:
    """200k lines, mixed formats and multi-line traces, in blocks of 2,000 events with
    their own receive times, several blocks per extracted chunk (as the indexer reads)."""
    x = Extractor()
    fallback = 0
    for c, chunk in enumerate(chunks(corpus_texts, 16_000)):
        blocks = list(chunks(chunk, 2_000))
        payload = b"".join(encode_payload(b) for b in blocks)
        block_times = RECEIVED + c * 7.25 + np.arange(len(blocks), dtype=np.float64) * 0.001
        received = np.repeat(block_times, [len(b) for b in blocks])
        fields = x.extract(payload, received)
        assert_parity(x, chunk, fields, received.tolist())
        fallback += fields.fallback
    # The fast path does the work: ~0.2% of the corpus needs the full parser.
    assert 0 < fallback < len(corpus_texts) * 0.01
    assert set(x.services.names) >= {"payment-api", "sshd", "kernel"}


def test_parity_on_the_frequent_corpus(tmp_path: Path) -> None:
    """Web and app lines as shippers write them (zap JSON, slog text, access lines):
    the fast path takes them all, with parse_event's columns."""
    path = tmp_path / "frequent.log"
    _corpus.generate(path, 40_000, seed=11, corpus="frequent")
    texts = frame(path.read_bytes())
    x = Extractor()
    for c, chunk in enumerate(chunks(texts, 10_000)):
        received = RECEIVED + c
        fields = x.extract(encode_payload(chunk), received)
        assert_parity(x, chunk, fields, [received] * len(chunk))
        assert fields.fallback == 0
    assert set(x.services.names) >= {"checkout", "payments"}


def test_pairs_inside_zap_and_access_lines_among_logfmt_lines() -> None:
    """Zap JSON and access lines name no service or level of their own shape; a
    `service=` / `level=` / `ts=` pair in their text sets one (parse_event), so
    those lines leave the fast path, also when logfmt lines around them name the
    same keys in every line (lines_naming looks at the shapes that ask)."""
    stamp = "2026-01-19T08:00:00.003Z"
    texts = [
        f"time={stamp} level=INFO msg=ok service=checkout n=1".encode(),
        f'{{"level":"info","ts":"{stamp}","msg":"a service=billing"}}'.encode(),
        f'{{"level":"warn","ts":"{stamp}","msg":"plain"}}'.encode(),
        b'10.0.0.1 - - [19/Jan/2026:08:00:00 +0000] "GET /a?level=error HTTP/1.1" 200 5',
        b'10.0.0.2 - - [19/Jan/2026:08:00:00 +0000] "GET /b HTTP/1.1" 200 5 service=edge',
        b'10.0.0.3 - - [19/Jan/2026:08:00:00 +0000] "GET /c HTTP/1.1" 200 5 rt=0.1',
        f"ts={stamp} level=error service=payments msg=x".encode(),
        f'{{"level":"error","ts":"{stamp}","msg":"x","ts=":"{stamp}"}}'.encode(),
    ]
    x = Extractor()
    fields = x.extract(encode_payload(texts), RECEIVED)
    assert_parity(x, texts, fields, [RECEIVED] * len(texts))
    services = [x.services.name(c) for c in fields.service.tolist()]
    assert services[1] == "billing" and services[4] == "edge"
    assert LEVEL_NAMES[int(fields.level[3])] == "ERROR"


def test_texts_input_equals_payload_input(corpus_texts: list[bytes]) -> None:
    texts = corpus_texts[:20_000]
    a = Extractor().extract(encode_payload(texts), RECEIVED)
    x = Extractor()
    b = x.extract_texts(texts, RECEIVED)
    assert a.ts.tobytes() == b.ts.tobytes()
    assert (a.level == b.level).all() and (a.service == b.service).all()
    assert a.fallback == b.fallback
    c = extract(encode_payload(texts), RECEIVED, ServiceCodes(), texts)
    assert c.ts.tobytes() == a.ts.tobytes()
    # the blocks' payloads as the indexer passes them: joined by the extractor
    blocks = [encode_payload(list(part)) for part in chunks(texts, 3_000)]
    d = Extractor().extract(blocks, RECEIVED)
    assert d.ts.tobytes() == a.ts.tobytes() and (d.service == a.service).all()
    assert (d.level == a.level).all() and d.fallback == a.fallback
    with pytest.raises(BlockFormatError):
        Extractor().extract([b"a\n", b"b"], RECEIVED)


@pytest.mark.parametrize("fmt", ["text", "json", "syslog-text", "syslog-json"])
def test_parity_on_simulator_output(fmt: str) -> None:
    events = Generator(seed=5, error_rate=0.05).take(6_000)
    if fmt == "text":
        texts = frame(text_batch(events, Stamps()))
    elif fmt == "json":
        texts = frame(json_batch(events, Stamps()))
    else:
        stamps = Stamps()
        texts = [syslog_message(ev, stamps, fmt.removeprefix("syslog-")) for ev in events]
    x = Extractor()
    fields = x.extract(encode_payload(texts), RECEIVED)
    assert_parity(x, texts, fields, [RECEIVED] * len(texts))
    if fmt in ("text", "json"):  # the fast paths take the simulator's own formats
        # error events (5%) with JSON-escaped traces take the full parser
        assert fields.fallback < len(texts) // 10


def test_rfc3164_local_time_across_dst_and_the_year_cut() -> None:
    """RFC 3164 times depend on the local zone and the receive year; per-minute caching
    stays exact across a DST change, and the "a day ahead is last year" cut falls back."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        texts = [
            f"<34>{month} {day:2d} {hour:02d}:{mi:02d}:{sec:02d} h sshd: x".encode()
            # the 2026 DST changes: Mar 8 at 2:00, Nov 1 at 2:00
            for month, day, hour in (("Mar", 8, 1), ("Mar", 8, 2), ("Mar", 8, 3), ("Nov", 1, 1))
            for mi in (0, 30, 59)
            for sec in (0, 17, 59)
        ]
        texts.append(b"<13>Dec 31 23:59:59 host cron: new year")
        texts.append(b"<13>Feb 29 12:00:00 host cron: no such day this year")
        texts.append(b"<13>Jan  1 00:00:30 host cron: ahead of the receive time")
        x = Extractor()
        for received in (1772949600.0, 1762000000.0, 1767225600.0 - 1.5, 1767225630.0):
            fields = x.extract(encode_payload(texts), received)
            assert_parity(x, texts, fields, [received] * len(texts))
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


# ---------------------------------------------------------------------------
# API edges


def test_empty_payload() -> None:
    fields = Extractor().extract(b"", RECEIVED)
    assert len(fields) == 0 and fields.ts.dtype == np.float64
    assert fields.level.dtype == np.uint8 and fields.service.dtype == np.uint16


def test_bad_input_is_refused() -> None:
    x = Extractor()
    with pytest.raises(BlockFormatError):
        x.extract(b"no newline", RECEIVED)
    with pytest.raises(BlockFormatError):
        x.extract(b"ok\n#header-like\n", RECEIVED)
    with pytest.raises(ValueError):
        x.extract(b"a\nb\n", np.array([RECEIVED]))
    with pytest.raises(ValueError):
        x.extract(b"a\n", float("nan"))
    with pytest.raises(ValueError):
        x.extract(b"a\n", RECEIVED, [b"a", b"b"])


def test_level_codes() -> None:
    assert LEVEL_NAMES == (None, "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
    assert [level_code(n) for n in LEVEL_NAMES] == list(range(7))
    assert LEVEL_CODES["ERROR"] == 5
    with pytest.raises(ValueError):
        level_code("warning")


def test_service_codes_are_bounded_with_an_overflow_code() -> None:
    codes = ServiceCodes(capacity=3)
    assert codes.code(None) == ServiceCodes.NONE == 0
    assert [codes.code(n) for n in ("a", "b", "a", "c")] == [1, 2, 1, 3]
    assert codes.full
    assert codes.code("d") == codes.code("e") == ServiceCodes.OTHER == 65_535
    assert codes.get("d") is None and codes.get("b") == 2
    assert len(codes) == 3 and codes.names == ("a", "b", "c")
    assert codes.name(0) is None and codes.name(2) == "b"
    with pytest.raises(KeyError):
        codes.name(ServiceCodes.OTHER)
    with pytest.raises(ValueError):
        ServiceCodes(capacity=65_535)


def test_service_codes_overflow_in_extraction() -> None:
    texts = [f"[INFO] 2026-01-19 08:00:00.{i:03d} svc{i}/1 hi".encode() for i in range(10)]
    x = Extractor(ServiceCodes(capacity=4))
    fields = x.extract(encode_payload(texts), RECEIVED)
    assert fields.service.tolist() == [1, 2, 3, 4] + [ServiceCodes.OTHER] * 6
    assert x.services.names == ("svc0", "svc1", "svc2", "svc3")


def test_service_codes_json_round_trip() -> None:
    codes = ServiceCodes(capacity=10)
    for name in ("payment-api", "sshd", 'é/ü "quoted"', ""):
        codes.code(name)
    back = ServiceCodes.from_json(codes.to_json())
    assert back.names == codes.names and back.capacity == 10
    assert [back.get(n) for n in codes.names] == [1, 2, 3, 4]
    assert back.code("new") == 5
    for bad in ('{"version": 2, "names": [], "capacity": 1}', "[]", '{"version": 1}'):
        with pytest.raises(ValueError):
            ServiceCodes.from_json(bad)
    with pytest.raises(ValueError):
        ServiceCodes.from_json('{"version": 1, "names": ["a", "a"], "capacity": 5}')
    with pytest.raises(ValueError):
        ServiceCodes.from_json('{"version": 1, "names": ["a", "b"], "capacity": 1}')


def test_level_words_do_not_take_service_codes() -> None:
    x = Extractor()
    texts = [b"2026-01-19 08:00:05 INFO started", b"2026-01-19 08:00:06 WARN slow"]
    fields = x.extract(encode_payload(texts), RECEIVED)
    assert fields.fallback == 0 and fields.service.tolist() == [0, 0]
    assert len(x.services) == 0


def test_token_cache_reset_keeps_codes_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its bound the token cache starts over; the codes given stay the same."""
    import logcaster.parsing.extract as mod

    monkeypatch.setattr(mod, "_MAX_TOKENS", 8)
    texts = [
        f"<14>1 2026-01-19T08:00:0{i % 10}.00{i % 7}Z host app{i % 23} 1 - - hi".encode()
        for i in range(200)
    ]
    x = Extractor()
    for chunk in chunks(texts, 30):
        fields = x.extract(encode_payload(chunk), RECEIVED)
        assert fields.fallback == 0
        assert_parity(x, chunk, fields, [RECEIVED] * len(chunk))
    assert x.services.names == tuple(f"app{i}" for i in range(23))


def test_codes_do_not_depend_on_the_hash_seed() -> None:
    """Codes are given in order of first appearance, so an index rebuilt in another
    process (another hash seed) gets the same dictionary and columns."""
    script = (
        "import hashlib\n"
        "from logcaster.config import MultilineConfig\n"
        "from logcaster.pipeline.framing import LineFramer\n"
        "from logcaster.simulate.formats import Stamps, json_batch, text_batch\n"
        "from logcaster.simulate.generator import Generator\n"
        "from logcaster.segments.blocks import encode_payload\n"
        "from logcaster.parsing.extract import Extractor\n"
        "ev = Generator(seed=9).take(3000)\n"
        "x = Extractor()\n"
        "h = hashlib.sha256()\n"
        "for data in (json_batch(ev, Stamps()), text_batch(ev, Stamps())):\n"
        "    framer = LineFramer(64 * 1024, MultilineConfig())\n"
        "    texts = framer.feed(data) + framer.close()\n"
        "    f = x.extract(encode_payload(texts), 1.0)\n"
        "    h.update(f.ts.tobytes() + f.level.tobytes() + f.service.tobytes())\n"
        "print(h.hexdigest(), x.services.to_json())\n"
    )
    outs = [
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    ]
    assert outs[0] == outs[1] and '"names": ["' in outs[0]


def test_word_bytes_are_exactly_ascii_word_dot_and_dash() -> None:
    # Every byte value, in a 2-D window as the simulator shape reads it.
    rows = np.arange(256, dtype=np.uint8).reshape(16, 16)
    expected = [bool(re.fullmatch(rb"[A-Za-z0-9_.-]", bytes([b]))) for b in range(256)]
    assert word_bytes(rows).ravel().tolist() == expected
