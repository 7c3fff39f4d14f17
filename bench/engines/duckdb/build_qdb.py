"""Build the query database (4.5M events) from the Python-parsed ground truth (data/truth.parquet),
in id order (= arrival order; ts roughly increasing -> zone maps on id and ts are tight)."""
import os, sys, time, duckdb
db = sys.argv[1] if len(sys.argv) > 1 else "data/q.duckdb"
BODY = sys.argv[2] if len(sys.argv) > 2 else ""  # e.g. "USING COMPRESSION uncompressed"
LEVEL = sys.argv[3] if len(sys.argv) > 3 else "VARCHAR"  # or "ENUM"
for s in ("", ".wal"):
    if os.path.exists(db + s): os.remove(db + s)
con = duckdb.connect(db)
if LEVEL == "ENUM":
    con.execute("CREATE TYPE lvl AS ENUM ('TRACE','DEBUG','INFO','WARN','ERROR','FATAL')")
    LEVEL = "lvl"
con.execute("SET threads=2")
t0 = time.perf_counter()
con.execute(f"""CREATE TABLE ev (id BIGINT, received DOUBLE, ts DOUBLE, level {LEVEL}, service VARCHAR, body VARCHAR {BODY})""")
con.execute("INSERT INTO ev SELECT id, 1769040000.0, ts, level, service, body FROM 'data/truth.parquet' ORDER BY id")
con.execute("CHECKPOINT")
print(f"built {db} in {time.perf_counter()-t0:.1f}s, size {os.path.getsize(db)/1e6:.1f} MB")
print(con.sql("SELECT column_name, any_value(compression), count(*) segs FROM pragma_storage_info('ev') GROUP BY ALL ORDER BY 1").fetchall())
