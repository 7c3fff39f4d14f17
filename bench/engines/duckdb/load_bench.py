"""Load-path benchmark: feed framed event texts (list[bytes] batches, as LogCaster's Batch.texts)
into a DuckDB file database and measure events/s, bytes on disk, RSS.

usage: python load_bench.py METHOD [--n N] [--batch B] [--db PATH] [--threads T] [--keep]
METHOD:
  raw        id/received/body only (no ts/level/service): lower bound of the storage cost
  sql        raw texts via Arrow -> INSERT .. SELECT with the SQL extraction (extract_sql.py)
  py         Batch.events() (Python parser) -> Arrow columns -> INSERT .. SELECT FROM arrow
  pyapp      Batch.events() -> Appender.append_rows (DuckDB 2.0 Python appender)
  pymany     Batch.events() -> executemany INSERT (use a small --n)
  rawstage   raw insert into a staging table; every --stage events one INSERT .. SELECT extraction
             into the main table + DELETE staging (extraction deferred, same total CPU)
"""
import argparse
import os
import resource
import time

import duckdb
import pyarrow as pa

from extract_sql import EXTRACT_SELECT, MACROS
from logcaster.event import Batch

RECEIVED = 1769040000.0
SCHEMA = """CREATE TABLE IF NOT EXISTS ev (id BIGINT {pk}, received DOUBLE, ts DOUBLE,
  level VARCHAR, service VARCHAR, body VARCHAR)"""

ap = argparse.ArgumentParser()
ap.add_argument("method")
ap.add_argument("--n", type=int, default=1_000_000)
ap.add_argument("--batch", type=int, default=10_000)
ap.add_argument("--stage", type=int, default=200_000)
ap.add_argument("--db", default="/work/engines/duckdb/data/load.duckdb")
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--keep", action="store_true", help="append to an existing db")
ap.add_argument("--set", action="append", default=[], help="extra SET statement, e.g. checkpoint_threshold='1GB'")
ap.add_argument("--temp", action="store_true", help="rawstage: staging table is TEMP (memory, not WAL-logged)")
ap.add_argument("--pk", action="store_true", help="id BIGINT PRIMARY KEY (ART index)")
ap.add_argument("--checkpoint", action="store_true", help="CHECKPOINT at the end (timed)")
args = ap.parse_args()

tbl = pa.ipc.open_file("/work/engines/duckdb/data/texts.arrow").read_all().slice(0, args.n)
texts = tbl["text"].to_pylist()  # list[bytes], like Batch.texts (not timed)
del tbl
if not args.keep:
    for suffix in ("", ".wal"):
        if os.path.exists(args.db + suffix):
            os.remove(args.db + suffix)
con = duckdb.connect(args.db)
con.execute(f"SET threads={args.threads}")
for s in args.set:
    con.execute(f"SET {s}")
con.execute(SCHEMA.format(pk='PRIMARY KEY' if args.pk else ''))
for m in MACROS:
    con.execute(m)
start_id = con.execute("SELECT coalesce(max(id) + 1, 0) FROM ev").fetchall()[0][0]

SQL_INSERT = "INSERT INTO ev " + EXTRACT_SELECT.format(src="batch_tbl", received=RECEIVED, year=2026)
if args.method == "rawstage":
    con.execute(f"CREATE {'TEMP ' if args.temp else ''}TABLE IF NOT EXISTS stage (id BIGINT, body VARCHAR)")
    STAGE_INSERT = "INSERT INTO ev " + EXTRACT_SELECT.format(src="stage", received=RECEIVED, year=2026)
if args.method == "pyapp":
    app = con.appender("ev")


def body_array(chunk):
    try:
        return pa.array(chunk, pa.string())  # validates UTF-8 in C
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return pa.array([t.decode("utf-8", "replace") for t in chunk], pa.string())


staged = 0
t_parse = t_db = 0.0
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 / 1e6


rss0 = rss_mb()
c0 = time.process_time()
t0 = time.perf_counter()
for off in range(0, len(texts), args.batch):
    chunk = texts[off : off + args.batch]
    first = start_id + off
    m = args.method
    if m in ("raw", "sql", "rawstage"):
        a = time.perf_counter()
        batch_tbl = pa.table({"id": pa.array(range(first, first + len(chunk)), pa.int64()),
                              "body": body_array(chunk)})
        b = time.perf_counter()
        if m == "raw":
            con.execute(f"INSERT INTO ev (id, received, body) SELECT id, {RECEIVED}, body FROM batch_tbl")
        elif m == "sql":
            con.execute(SQL_INSERT)
        else:
            con.execute("INSERT INTO stage SELECT * FROM batch_tbl")
            staged += len(chunk)
            if staged >= args.stage:
                con.execute("BEGIN")
                con.execute(STAGE_INSERT)
                con.execute("DELETE FROM stage")
                con.execute("COMMIT")
                staged = 0
        t_parse += b - a
        t_db += time.perf_counter() - b
    else:
        a = time.perf_counter()
        evs = Batch(first, RECEIVED, "corpus", chunk).events()
        b = time.perf_counter()
        if m == "py":
            batch_tbl = pa.table({
                "id": pa.array([e.id for e in evs], pa.int64()),
                "received": pa.array([e.received_at for e in evs], pa.float64()),
                "ts": pa.array([e.ts for e in evs], pa.float64()),
                "level": pa.array([e.level for e in evs], pa.string()),
                "service": pa.array([e.service for e in evs], pa.string()),
                "body": pa.array([e.body for e in evs], pa.string()),
            })
            con.execute("INSERT INTO ev SELECT * FROM batch_tbl")
        elif m == "pyapp":
            app.append_rows([(e.id, e.received_at, e.ts, e.level, e.service, e.body) for e in evs])
            app.flush()
        elif m == "pymany":
            con.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?, ?)",
                            [(e.id, e.received_at, e.ts, e.level, e.service, e.body) for e in evs])
        t_parse += b - a
        t_db += time.perf_counter() - b
if args.method == "rawstage" and staged:
    con.execute(STAGE_INSERT)
    con.execute("DELETE FROM stage")
t_load = time.perf_counter() - t0
cpu_load = time.process_time() - c0
t_ck = 0.0
if args.checkpoint:
    a = time.perf_counter()
    con.execute("CHECKPOINT")
    t_ck = time.perf_counter() - a
n = len(texts)
rss1 = rss_mb()
duck_mem = con.execute("SELECT memory_usage FROM pragma_database_size()").fetchall()[0][0]
cnt = con.execute("SELECT count(*) FROM ev").fetchone()[0]
con.close()
size = sum(os.path.getsize(args.db + s) for s in ("", ".wal") if os.path.exists(args.db + s))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
ru = resource.getrusage(resource.RUSAGE_SELF)
print(f"RESULT method={args.method}{' temp' if args.temp else ''} stage={args.stage} set={args.set} n={n} batch={args.batch} threads={args.threads} "
      f"load={t_load:.2f}s ev/s={n / t_load:,.0f} us/ev={t_load / n * 1e6:.2f} "
      f"(prep/parse {t_parse / n * 1e6:.2f} us/ev, db {t_db / n * 1e6:.2f} us/ev) "
      f"checkpoint={t_ck:.2f}s rows={cnt} disk={size / 1e6:.1f}MB "
      f"MB/Mev={size / 1e6 / (cnt / 1e6):.1f} maxRSS={rss:.0f}MB load_cpu={cpu_load / n * 1e6:.2f} cpu-us/ev RSS_growth_during_load={rss1 - rss0:.0f}MB duckdb_mem={duck_mem} pk={args.pk}")
