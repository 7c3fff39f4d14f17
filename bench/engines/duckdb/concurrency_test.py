"""Queries while another thread appends (one cursor per thread on one database instance).
Phase 1: appends alone (10k-event raw batches) for D seconds. Phase 2: appends + a thread running
Q1 (contains 'timeout' count, a full scan) back to back. Reports append ev/s, per-batch max latency
(does a long query block the appender?), query latencies, and whether queries see fresh rows.
usage: python concurrency_test.py [seconds_per_phase]
"""
import os
import statistics
import sys
import threading
import time

import duckdb
import pyarrow as pa

D = float(sys.argv[1]) if len(sys.argv) > 1 else 8.0
DB = "/work/engines/duckdb/data/conc.duckdb"
for s in ("", ".wal"):
    if os.path.exists(DB + s):
        os.remove(DB + s)
src = pa.ipc.open_file("/work/engines/duckdb/data/texts.arrow").read_all()
body = src["text"].cast(pa.string())
base = duckdb.connect(DB)
base.execute("SET threads=2")
base.execute("CREATE TABLE ev (id BIGINT, body VARCHAR)")
# preload 2M events so queries have real work
pre = pa.table({"id": src["id"].slice(0, 2_000_000), "body": body.slice(0, 2_000_000)})
base.execute("INSERT INTO ev SELECT * FROM pre")
base.execute("CHECKPOINT")
next_off = 2_000_000
stop = threading.Event()
lock = threading.Lock()


def appender(stats):
    global next_off
    cur = base.cursor()
    lat = []
    n = 0
    t0 = time.perf_counter()
    while not stop.is_set():
        off = next_off if next_off + 10_000 <= len(src) else 0
        batch = pa.table({"id": pa.array(range(next_off, next_off + 10_000), pa.int64()),
                          "body": body.slice(off % 4_000_000, 10_000)})
        a = time.perf_counter()
        cur.execute("INSERT INTO ev SELECT * FROM batch")
        lat.append(time.perf_counter() - a)
        next_off += 10_000
        n += 10_000
    stats.update(ev_s=n / (time.perf_counter() - t0), max_ms=max(lat) * 1000,
                 p50_ms=statistics.median(lat) * 1000, batches=len(lat))


def querier(stats):
    cur = base.cursor()
    lat, fresh = [], []
    while not stop.is_set():
        before = next_off
        a = time.perf_counter()
        n_rows, q1 = cur.execute("SELECT count(*), count(*) FILTER (WHERE contains(body, 'timeout')) FROM ev").fetchall()[0]
        lat.append(time.perf_counter() - a)
        fresh.append(n_rows >= before)
    stats.update(queries=len(lat), p50_ms=statistics.median(lat) * 1000, max_ms=max(lat) * 1000,
                 saw_rows_committed_before_start=all(fresh))


for phase, with_q in (("appends alone", False), ("appends + Q1 scans", True)):
    stop.clear()
    sa, sq = {}, {}
    ts = [threading.Thread(target=appender, args=(sa,))]
    if with_q:
        ts.append(threading.Thread(target=querier, args=(sq,)))
    for t in ts:
        t.start()
    time.sleep(D)
    stop.set()
    for t in ts:
        t.join()
    wal = os.path.getsize(DB + ".wal") if os.path.exists(DB + ".wal") else 0
    print(f"{phase}: append {sa['ev_s']:,.0f} ev/s, batch p50 {sa['p50_ms']:.1f} ms max {sa['max_ms']:.1f} ms; "
          f"queries {sq or '-'}; wal={wal / 1e6:.1f}MB")
print("rows:", base.execute("SELECT count(*) FROM ev").fetchall()[0][0])
