"""parsing/extract.py: the bulk (ts, level, service) columns equal `parse_event`'s, exactly.

Real data throughout: the bench corpus framed as the server frames it, the
simulator's text/JSON/syslog output, and hypothesis texts built around the line
shapes the fast path accepts, with the edits that must push an event to the
full parser (duplicate keys, pairs later in the body, escapes, bad UTF-8).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logcaster.options import MultilineConfig
from logcaster.parsing.codes import LEVEL_CODES, LEVEL_NAMES, ServiceCodes, level_code
from logcaster.parsing.extract import Extractor, Fields, extract
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
# Hypothesis: the shapes the fast path accepts, and edits that must not fool it

_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "WARNING", "Info", "NOTE"]
_STAMPS = [
    "2026-01-19 08:00:00.003",
    "2026-01-19 23:59:59.999",
    "1970-01-01 00:00:00.000",  # 0.0: parse_event keeps the receive time
    "2024-02-29 12:00:00.500",
    "2026-02-29 12:00:00.500",  # no such day
    "2026-13-01 00:00:00.000",
    "2026-01-20 00:00:00.000",  # equals the receive time below
    "9999-12-31 23:59:59.999",
]
_TRICKY = [
    "",
    " service=billing",
    " ts=2026-01-18T00:00:00.000Z",
    " time=2026-01-18T00:00:00Z",
    " timestamp=2026-01-18 00:00:01",
    "\\nts=2026-01-18T00:00:00Z",
    " level=error",
    '"quoted"',
    "\\",
    "\\n",
    "\n",
    "\r",
    "\r\n",
    "\n#comment",
    "\nservice=late",
    "é",
    "\u00a0",
    "\u2028",
    " a=1,b=2",
    ' msg="x y"',
    "{",
    "}",
    ":",
    "/",
    "[pid]",
]


# BSD-header variants (parsing/syslog.py): the fast path takes only the
# classic `Mmm dd hh:mm:ss host app[pid]:` and must leave every other to the parser.
_BSD_TIMES = [
    "Jan 19 08:00:00 ",
    "Jan  9 08:00:00 ",
    "Jan 9 08:00:00 ",
    "JAN 19 08:00:00 ",
    "jan 19 08:00:00 ",
    "Jan 19 2025 08:00:00: ",
    "Jan 19 08:00:00.250: ",
    "2026-01-19T08:00:00.003+02:00 ",
    "2026-01-19T08:00:00Z ",
    "12: *Jan 19 08:00:00.123: ",
    " Jan 19 08:00:00 ",
    "Feb 30 08:00:00 ",
    "Jan 19 08:00:00",
]
_BSD_HOSTS = ["host ", "10.0.0.99 ", "fe80::1 ", "0002:: ", "- ", "a/b@c ", "h{x} ", "", "h  "]
_BSD_TAGS = [
    "SVC[1]:",
    "SVC:",
    "SVC[1]",
    "SVC[-]:",
    "SVC:x",
    "%LINK-3-UPDOWN:",
    "Use the BFG!",
    '{"k": 1}',
    "k=v:",
    "a]b:",
    "run-parts(/etc/cron.daily)[9]:",
    "",
]


@st.composite
def event_text(draw: st.DrawFn) -> bytes:
    stamp = draw(st.sampled_from(_STAMPS))
    iso = stamp.replace(" ", "T") + "Z"
    lvl = draw(st.sampled_from(_LEVELS))
    svc = draw(st.sampled_from(["api", "payment-api", "a.b_c", "INFO", "-", "x" * 45, "sv€"]))
    tail = "".join(draw(st.lists(st.sampled_from(_TRICKY), max_size=3)))
    word = draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=6))
    shape = draw(st.integers(0, 10))
    if shape == 0:
        text = f"[{lvl}] {stamp} {svc}/1.2.{draw(st.integers(0, 9))} {word}{tail}"
    elif shape == 1:
        keys = draw(
            st.lists(
                st.sampled_from(["msg", "ts", "time", "timestamp", "level", "service", "a_b"]),
                max_size=3,
            )
        )
        extra = "".join(f',"{k}":{json.dumps(word)}' for k in keys)
        text = f'{{"timestamp":"{iso}","level":"{lvl.lower()}","service":"{svc}"{extra}}}{tail}'
    elif shape == 2:
        text = f"ts={iso} level={lvl.lower()} service={svc} {word}{tail}"
    elif shape == 3:
        pri = draw(st.integers(0, 999))
        text = f"<{pri}>1 {iso} host {svc} 12 ID{tail} - {word}{tail}"
    elif shape == 4:
        pri = draw(st.integers(0, 999))
        day = draw(st.sampled_from(["Jan 19", "Feb 29", "Dec 31", "Jan  1", "Foo 19"]))
        text = f"<{pri}>{day} {stamp[11:19]} host {svc}[1]:{tail} {word}"
    elif shape == 5:
        text = f"{stamp[:19]} {lvl}{draw(st.sampled_from(['', ':']))} {word}{tail}"
    elif shape == 8:  # the BSD header as senders really write it
        bsd_pri = draw(st.sampled_from(["13", "0", "191", "192", "013", "00", "7", "999"]))
        when = draw(st.sampled_from(_BSD_TIMES))
        host = draw(st.sampled_from(_BSD_HOSTS))
        tag = draw(st.sampled_from(_BSD_TAGS)).replace("SVC", svc)
        text = f"<{bsd_pri}>{when}{host}{tag} {word}{tail}"
    elif shape == 6:
        text = f"#{lvl} {word}{tail}"
    elif shape == 7:  # the simulator's Python-style header: no time of its own
        ver = draw(st.sampled_from(["v1.2", "1", "x1", "v", "2:3"]))
        sep = draw(st.sampled_from([": ", ":  ", " ", ":"]))
        text = f"{lvl}{sep}{svc}/{ver} pod/p-1 {word}{tail}"
    else:
        text = f"{word}{tail}"
    raw = text.encode()
    if draw(st.integers(0, 7)) == 0:  # bytes that are not UTF-8, anywhere
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3", b"\xe2\x82", b"\x00"])) + raw[at:]
    return raw


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    texts=st.lists(event_text() | st.binary(max_size=40), min_size=1, max_size=25),
    received=st.sampled_from([RECEIVED, 1768809600.003, 1768780800.003, 0.0]),
)
def test_parity_on_generated_texts(texts: list[bytes], received: float) -> None:
    # 1768809600.003 is 2026-01-19T05:20:00.003Z ... and 1768780800.003 the
    # 2026-01-19 00:00:00.003 stamp's own time: a received time equal to an event's.
    x = Extractor()
    fields = x.extract(encode_payload(texts), received)
    assert_parity(x, texts, fields, [received] * len(texts))
    again = x.extract_texts(texts, received)
    assert again.ts.tobytes() == fields.ts.tobytes()


def test_parity_on_syslog_variants() -> None:
    """Every BSD/RFC 5424 variant the parser reads (docs/parsing.md, "Syslog"):
    the classic shapes stay on the fast path, the others fall back."""
    classic = [
        b"<13>Jan 19 08:00:00 host app[12]: fast",
        b"<191>Jan  9 08:00:00 10.0.0.99 %LINK-3-UPDOWN: fast, Cisco tag behind a host",
        b"<0>Jan 19 08:00:00 - app: fast, a nil host",
        b"<14>1 2026-01-19T08:00:00.003Z host app 12 - - fast",
    ]
    variants = [
        b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!",
        b"<13>Feb  5 17:32:18 fe80::1 app[3]: an IPv6 host",
        b"<13>Feb  5 17:32:18 0002:: app: an IPv6 host",
        b"<7>2006-11-10T10:43:21.156+02:00 host prog[1]: RFC 3339 in a BSD header",
        b"<13>Mar 7 10:00:00 host app: unpadded day",
        b"<13>NOV 22 10:00:00 host app: upper-case month",
        b"<189>Apr 15 2007 21:28:13: %LINK-3-UPDOWN: Interface Gi0/1, changed state to up",
        b"<189>52: *Mar  1 00:00:50.123: %SYS-5-CONFIG_I: Configured from console",
        b"<13>Feb  5 17:32:18 host prog[77] a tag without a colon",
        b"<13>Feb  5 17:32:18 host {not a tag}: x",
        b"<192>Jan 19 08:00:00 host app[12]: invalid PRI",
        b"<013>Jan 19 08:00:00 host app[12]: leading zero",
        b"<999>1 2026-01-19T08:00:00.003Z host app 12 - - invalid PRI",
        b"<1a>Jan 19 08:00:00 host app: not a PRI level=error service=s",
        rb'<14>1 2026-01-19T08:00:00.003Z h app - - [a@1 k="\\ \"q\" \]"] escapes',
    ]
    x = Extractor()
    for received in (RECEIVED, 1768809600.003):
        fields = x.extract(encode_payload(classic + variants), received)
        assert_parity(x, classic + variants, fields, [received] * len(classic + variants))
    # (1768809600.003 is the RFC 5424 line's own time: that one falls back by design)
    assert x.extract(encode_payload(classic), RECEIVED).fallback == 0


def test_received_equal_to_the_own_time_keeps_parse_event_semantics() -> None:
    # ts= / time= later in the body replace a time that equals the receive time.
    own = "2026-01-19T08:00:00.003Z"
    received = parse_event(0, 0.0, "", f"ts={own}".encode()).ts
    texts = [
        f"ts={own} level=info service=api time=2026-01-18T00:00:00Z".encode(),
        f'{{"timestamp":"{own}","level":"info","service":"api","time":"2026-01-18T00:00:00Z"}}'.encode(),
        f"[INFO] {own[:10]} {own[11:23]} api/1 ts=2026-01-18T00:00:00Z".encode(),
    ]
    x = Extractor()
    fields = x.extract(encode_payload(texts), received)
    assert_parity(x, texts, fields, [received] * len(texts))
    assert fields.fallback == len(texts)


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
