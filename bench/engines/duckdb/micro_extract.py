"""Exploratory: cost of each SQL extraction piece over 300k events (in-memory, 2 threads)."""
import time, duckdb, pyarrow as pa
from extract_sql import MACROS, EXTRACT_SELECT
t = pa.ipc.open_file("data/texts.arrow").read_all().slice(0, 300000)
raw = pa.table({"id": t["id"], "body": t["text"].cast(pa.string())})
con = duckdb.connect(); con.execute("SET threads=2")
for m in MACROS: con.execute(m)
con.register("raw", raw)
exprs = {
 "count": "count(*)",
 "split_part": "max(length(split_part(body, chr(10), 1)))",
 "regexp_first_line": r"max(length(regexp_extract(body, '^[^\n]*')))",
 "sim_regex_all": r"""count(regexp_extract(body, '^\[([A-Za-z]+)\][ \t]+(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)(?:[ \t]+([\w.-]+)/([^\s:]+))?', ['lvl','ts','svc','ver']))""",
 "lw_regex_all": r"count(regexp_extract(body, '^\[?([A-Za-z]{3,11})\]?(?:[:|\]]|\s|$)', 1))",
 "norm_level": "count(norm_level(split_part(body, ']', 1)))",
 "iso_ts": "sum(iso_ts(substr(body, 9, 23)))",
 "strptime_only": "sum(epoch(try_strptime(substr(body, 9, 16), '%Y-%m-%d %H:%M')))",
 "json": "count(CASE WHEN left(body,1)='{' THEN json_extract_string(body, ['$.timestamp','$.level','$.service']) END)",
 "cast_ts": "sum(epoch(TRY_CAST(substr(body, 9, 16) || ':00' AS TIMESTAMP)))",
 "make_ts": "sum(epoch(make_timestamp(TRY_CAST(substr(body,9,4) AS BIGINT), TRY_CAST(substr(body,14,2) AS BIGINT), TRY_CAST(substr(body,17,2) AS BIGINT), TRY_CAST(substr(body,20,2) AS BIGINT), TRY_CAST(substr(body,23,2) AS BIGINT), 0.0)))",
 "cast_double": "sum(TRY_CAST(substr(body, 26, 6) AS DOUBLE))",
 "contains_x3": "count(*) filter (where contains(body,'ts=') or contains(body,'level=') or contains(body,'service='))",
 "date_arith": "sum((TRY_CAST(substr(body,9,10) AS DATE) - DATE '1970-01-01') * 86400 + TRY_CAST(substr(body,20,2) AS INT)*3600 + TRY_CAST(substr(body,23,2) AS INT)*60)",
 "full": f"sum(hash(ts, level, service)) FROM ({EXTRACT_SELECT.format(src='raw', received=1769040000.0, year=2026)})",
}
for name, e in exprs.items():
    q = f"SELECT {e}" + ("" if "FROM" in e else " FROM raw")
    con.execute(q).fetchall()
    ts = []
    for _ in range(3):
        a = time.perf_counter(); con.execute(q).fetchall(); ts.append(time.perf_counter() - a)
    print(f"{name:20s} {min(ts)/len(raw)*1e6:6.2f} us/ev")
