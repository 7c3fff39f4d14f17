"""Agreement of the SQL extraction (extract_sql.py) with the Python parser (data/truth.parquet).
usage: python check_extract.py [N]   (N first events; default all)
"""
import sys
import time

import duckdb
import pyarrow as pa

from extract_sql import EXTRACT_SELECT, MACROS

RECEIVED = 1769040000.0
n = int(sys.argv[1]) if len(sys.argv) > 1 else None
con = duckdb.connect()
con.execute("SET threads=2")
for m in MACROS:
    con.execute(m)
texts = pa.ipc.open_file("data/texts.arrow").read_all()
if n:
    texts = texts.slice(0, n)
raw = pa.table({"id": texts["id"], "body": texts["text"].cast(pa.string())})
con.register("raw", raw)
con.execute(f"CREATE TABLE truth AS SELECT * FROM 'data/truth.parquet' WHERE id < {n or 1 << 62}")
t0 = time.perf_counter()
con.execute(
    "CREATE TABLE x AS " + EXTRACT_SELECT.format(src="raw", received=RECEIVED, year=2026)
)
dt = time.perf_counter() - t0
print(f"extract {len(raw)} events: {dt:.2f}s = {len(raw) / dt:,.0f} ev/s")
print(con.sql("""
SELECT count(*) n,
  count(*) FILTER (WHERE x.level IS DISTINCT FROM t.level) level_diff,
  count(*) FILTER (WHERE x.service IS DISTINCT FROM t.service) service_diff,
  count(*) FILTER (WHERE abs(x.ts - t.ts) > 1e-6 OR (x.ts IS NULL) <> (t.ts IS NULL)) ts_diff,
  count(*) FILTER (WHERE x.ts <> t.ts) ts_bitdiff,
  count(*) FILTER (WHERE x.body <> t.body) body_diff
FROM x JOIN truth t USING (id)""").fetchall())
for col, cond in [("level", "x.level IS DISTINCT FROM t.level"), ("service", "x.service IS DISTINCT FROM t.service"),
                  ("ts", "abs(x.ts - t.ts) > 1e-6")]:
    print("---", col)
    for r in con.sql(f"SELECT x.{col}, t.{col}, left(t.body, 150) FROM x JOIN truth t USING (id) WHERE {cond} LIMIT 6").fetchall():
        print(r)
