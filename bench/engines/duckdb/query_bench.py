"""Q1-Q5 on the DuckDB file (data/q.duckdb), medians of 5 warm runs, with the ripgrep reference
measured in the same process/run. Run under the lock:
    flock /tmp/engine-bench.lock python query_bench.py [db] [threads]
"""
import json
import statistics
import subprocess
import sys
import time

import duckdb
import pyarrow.compute as pc
import pyarrow.parquet as pq

DB = sys.argv[1] if len(sys.argv) > 1 else "data/q.duckdb"
THREADS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
CORPUS = "/work/corpus/corpus-5M.log"
LO, HI = 1768811400.0, 1768815000.0  # 08:30-09:30 UTC, middle of 08:00-09:52
truth = json.load(open("data/truth.json"))

# brute force Q4 for this window (Python-parsed events)
t = pq.read_table("data/truth.parquet", columns=["ts", "level"])
q4_truth = pc.sum(pc.and_(pc.equal(t["level"], "ERROR"),
                          pc.and_(pc.greater_equal(t["ts"], LO), pc.less_equal(t["ts"], HI)))).as_py()
del t
EXPECT = {"Q1": truth["q1"], "Q2a": truth["q2a"], "Q2b": truth["q2b"], "Q3": truth["q3"], "Q4": q4_truth}

con = duckdb.connect(DB, read_only=True)
con.execute(f"SET threads={THREADS}")
MAXID = con.execute("SELECT max(id) FROM ev").fetchall()[0][0]


def med(fn, n=5):
    fn()  # warm-up
    ts = []
    for _ in range(n):
        a = time.perf_counter()
        r = fn()
        ts.append(time.perf_counter() - a)
    return statistics.median(ts), r


def sql(q):
    return lambda: con.execute(q).fetchall()


def rg(*args):
    return lambda: subprocess.run(["/usr/bin/rg", *args, CORPUS], capture_output=True).stdout


def q5_ranges():
    """newest-first: scan id ranges backwards (zone maps on id skip everything else)."""
    out, span, hi = [], 65536, MAXID + 1
    while len(out) < 100 and hi > 0:
        lo = max(0, hi - span)
        out += con.execute("SELECT id, ts, body FROM ev WHERE id >= ? AND id < ? AND contains(body, 'timeout') "
                           "ORDER BY id DESC", [lo, hi]).fetchall()
        hi, span = lo, span * 4
    return out[:100]


R2A = "(timeout|refused).*user-7[0-9]{3}"
R2B = "(timeout|refused).*within [0-9]+"
cases = [
    ("rg Q1", "Q1", rg("-c", "timeout")),
    ("Q1 contains", "Q1", sql("SELECT count(*) FROM ev WHERE contains(body, 'timeout')")),
    ("Q1 LIKE", "Q1", sql("SELECT count(*) FROM ev WHERE body LIKE '%timeout%'")),
    ("Q1 strpos", "Q1", sql("SELECT count(*) FROM ev WHERE strpos(body, 'timeout') > 0")),
    ("rg Q2a", None, rg("-c", R2A)),
    ("Q2a regexp_matches", "Q2a", sql(f"SELECT count(*) FROM ev WHERE regexp_matches(body, '{R2A}')")),
    ("Q2a prefilter+regexp", "Q2a", sql(f"SELECT count(*) FROM ev WHERE (contains(body,'timeout') OR contains(body,'refused')) AND regexp_matches(body, '{R2A}')")),
    ("rg Q2b", None, rg("-c", R2B)),
    ("Q2b regexp_matches", "Q2b", sql(f"SELECT count(*) FROM ev WHERE regexp_matches(body, '{R2B}')")),
    ("Q2b prefilter+regexp", "Q2b", sql(f"SELECT count(*) FROM ev WHERE (contains(body,'timeout') OR contains(body,'refused')) AND regexp_matches(body, '{R2B}')")),
    ("rg Q3 (rg -c ERROR)", None, rg("-c", "ERROR")),
    ("Q3 level=ERROR", "Q3", sql("SELECT count(*) FROM ev WHERE level = 'ERROR'")),
    ("Q4 level+ts window", "Q4", sql(f"SELECT count(*) FROM ev WHERE level = 'ERROR' AND ts BETWEEN {LO} AND {HI}")),
    ("Q5 ORDER BY id DESC LIMIT 100", "Q5", sql("SELECT id, ts, body FROM ev WHERE contains(body, 'timeout') ORDER BY id DESC LIMIT 100")),
    ("Q5 backwards id ranges", "Q5", q5_ranges),
]
results = {}
print(f"db={DB} threads={THREADS} window=[{LO},{HI}] expected={EXPECT}")
for name, key, fn in cases:
    t, r = med(fn)
    if name.startswith("rg"):
        results[name] = t
        print(f"{name:34s} {t * 1000:8.1f} ms  (rg count={r.decode().strip()})")
        continue
    if key == "Q5":
        ok = [row[0] for row in r] == truth["q5_ids"]
        got = f"{len(r)} rows, ids match={ok}"
    else:
        got = r[0][0]
        ok = got == EXPECT[key]
    ref = results["rg Q1"]
    ref_same = {"Q2a": results.get("rg Q2a"), "Q2b": results.get("rg Q2b")}.get(key) or ref
    print(f"{name:34s} {t * 1000:8.1f} ms  count={got} exact={ok}  "
          f"time/rg_timeout={t / ref:.2f}x  rg_same_query/time={ref_same / t:.1f}x")
