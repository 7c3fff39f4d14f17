"""Frame the corpus once into event texts and a brute-force Python ground truth.

Outputs (in /work/engines/duckdb/data/):
  texts.arrow  : id int64, text binary   (framed event texts, LineFramer + MultilineConfig)
  truth.parquet: id, ts, level, service, body  (logcaster.pipeline.parse over every event)
  truth.json   : brute-force counts for Q1..Q5 + timing of the framing and Python parse
"""
import json
import os
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import re2

from logcaster.config import MultilineConfig
from logcaster.event import Batch
from logcaster.pipeline.framing import LineFramer

CORPUS = "/work/corpus/corpus-5M.log"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
RECEIVED = 1769040000.0  # fixed "received" time (2026-01-22 00:00 UTC) so runs are reproducible
os.makedirs(OUT, exist_ok=True)


def frame():
    fr = LineFramer(64 * 1024, MultilineConfig())
    texts = []
    with open(CORPUS, "rb") as f:
        while chunk := f.read(1 << 20):
            texts.extend(fr.feed(chunk))
    texts.extend(fr.close())
    return texts


t0 = time.perf_counter()
texts = frame()
t_frame = time.perf_counter() - t0
print(f"framed {len(texts)} events in {t_frame:.1f}s", flush=True)
ids = pa.array(range(len(texts)), pa.int64())
with pa.OSFile(f"{OUT}/texts.arrow", "wb") as sink:
    tbl = pa.table({"id": ids, "text": pa.array(texts, pa.binary())})
    with pa.ipc.new_file(sink, tbl.schema) as w:
        w.write_table(tbl, max_chunksize=50_000)

t0 = time.perf_counter()
events = Batch(0, RECEIVED, "corpus", texts).events()
t_parse = time.perf_counter() - t0
print(f"parsed in {t_parse:.1f}s = {t_parse / len(events) * 1e6:.2f} us/event", flush=True)

truth = pa.table(
    {
        "id": pa.array([e.id for e in events], pa.int64()),
        "ts": pa.array([e.ts for e in events], pa.float64()),
        "level": pa.array([e.level for e in events], pa.string()),
        "service": pa.array([e.service for e in events], pa.string()),
        "body": pa.array([e.body for e in events], pa.string()),
    }
)
pq.write_table(truth, f"{OUT}/truth.parquet")

# brute force counts
tss = sorted(e.ts for e in events if e.ts != RECEIVED)
mid = tss[len(tss) // 2]
lo = float(int(mid) // 3600 * 3600)
hi = lo + 3600.0
r1 = re2.compile(r"(timeout|refused).*user-7[0-9]{3}")
r2 = re2.compile(r"(timeout|refused).*within [0-9]+")
q1 = sum(1 for e in events if "timeout" in e.body)
q2a = sum(1 for e in events if r1.search(e.body) is not None)
q2b = sum(1 for e in events if r2.search(e.body) is not None)
q3 = sum(1 for e in events if e.level == "ERROR")
q4 = sum(1 for e in events if e.level == "ERROR" and lo <= e.ts <= hi)
q5 = [e.id for e in events if "timeout" in e.body][-100:][::-1]
res = dict(
    events=len(events), t_frame=t_frame, t_parse=t_parse, received=RECEIVED,
    ts_min=tss[0], ts_max=tss[-1], n_ts_fallback=len(events) - len(tss),
    window=[lo, hi], q1=q1, q2a=q2a, q2b=q2b, q3=q3, q4=q4, q5_ids=q5,
    invalid_utf8=sum(1 for e in events if "\ufffd" in e.body),
)
json.dump(res, open(f"{OUT}/truth.json", "w"), indent=1)
print({k: v for k, v in res.items() if k != "q5_ids"})
