"""All timed runs in one go (run it under: flock /tmp/engine-bench.lock venv/bin/python bench.py).
Medians of 5 warm runs; the segment is mmap'd (page cache warm: one untimed pass first)."""
import json, statistics, subprocess, sys, time
import numpy as np
import re2
import hyperscan as hs
import engine
from common import CORPUS, RECEIVED, LEVEL_CODE

REPS = 5
S = engine.Store()
tr = np.load("truth.npz")
R = {}


def med(fn, reps=REPS):
    fn()  # warm
    ts, out = [], None
    for _ in range(reps):
        t0 = time.perf_counter(); out = fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def rg(args, path=CORPUS):
    def f():
        return subprocess.run(["/usr/bin/rg", *args, path], capture_output=True).stdout.strip()
    return med(f)


def show(name, t, val, ref=None, truth=None):
    ok = "" if truth is None else ("OK" if val == truth else f"MISMATCH truth={truth}")
    rr = "" if ref is None else f"  {t/ref:6.2f}x rg  ({ref/t:6.1f}x faster)"
    print(f"{name:58s} {t*1000:9.2f} ms  -> {val!s:>10s} {ok}{rr}", flush=True)
    R[name] = dict(ms=round(t * 1000, 3), value=str(val), ratio_vs_rg=None if ref is None else round(t / ref, 3))


RA = "(timeout|refused).*user-7[0-9]{3}"
RB = "(timeout|refused).*within [0-9]+"
# ---- ripgrep references (same locked run) ----
rg_kw, v = rg(["-c", "timeout"]); show("rg -c timeout corpus", rg_kw, v.decode())
rg_ra, v = rg(["-c", RA]); show(f"rg -c '{RA}' corpus", rg_ra, v.decode() or "0")
rg_rb, v = rg(["-c", RB]); show(f"rg -c '{RB}' corpus", rg_rb, v.decode())
rg_err, v = rg(["-c", "ERROR"]); show("rg -c ERROR corpus (level ref)", rg_err, v.decode())
t, v = rg(["-c", "timeout"], S.f.name); show("rg -c timeout seg.log (escaped store)", t, v.decode())

T_KW, T_RA, T_RB = int(tr["kw"].sum()), int(tr["ra"].sum()), int(tr["rb"].sum())
# ---- Q1 ----
db_kw = engine.compile_db(engine.keyword_expr(b"timeout"))
t, v = med(lambda: S.count_lines(db_kw)); show("Q1 hyperscan 1 thread (mmap)", t, v, rg_kw, T_KW)
t, v = med(lambda: S.count_lines_threads(db_kw, 2)); show("Q1 hyperscan 2 threads (mmap halves)", t, v, rg_kw, T_KW)
ks = engine.KeywordScanner(S, b"timeout")
print("   rare piece:", ks.piece)
t, v = med(lambda: ks.count()); show("Q1 hyperscan 1 thread, rare piece + exact check", t, v, rg_kw, T_KW)


def find_loop(kw=b"timeout"):
    m, n, i = S.m, 0, 0
    while True:
        i = m.find(kw, i)
        if i < 0:
            return n
        n += 1
        i = m.find(b"\n", i) + 1
t, v = med(find_loop); show("Q1 mmap.find loop (CPython fastsearch)", t, v, rg_kw, T_KW)
data = S.m[:]  # a bytes copy, for APIs that want bytes
t, v = med(lambda: data.count(b"timeout")); show("Q1 bytes.count occurrences (not per line)", t, v, rg_kw)
r2kw = re2.compile(b"timeout")


def re2_loop(rx, d=data):
    n, i = 0, 0
    while True:
        mm = rx.search(d, i)
        if mm is None:
            return n
        n += 1
        i = d.find(b"\n", mm.end()) + 1
t, v = med(lambda: re2_loop(r2kw)); show("Q1 google-re2 search loop (bytes)", t, v, rg_kw, T_KW)

# ---- Q2 ----
for name, rx, rgt, truth in (("Q2a", RA, rg_ra, T_RA), ("Q2b", RB, rg_rb, T_RB)):
    expr = engine.translate_regex(rx)
    db = engine.compile_db(expr)
    t, v = med(lambda: S.count_lines(db)); show(f"{name} hyperscan 1 thread (boundary-anchored, exact)", t, v, rgt, truth)
    t, v = med(lambda: S.count_lines_threads(db, 2)); show(f"{name} hyperscan 2 threads", t, v, rgt, truth)
    plain = expr.replace(engine._BOUNDARY + b"(?:", b"", 1)[:-1] if expr.startswith(engine._BOUNDARY) else expr
    db2 = engine.compile_db(plain)
    t, v = med(lambda: S.count_lines(db2)); show(f"{name} hyperscan 1 thread, unanchored (exact iff no \\r escapes)", t, v, rgt, truth)
    rs = engine.RegexScanner(S, rx)
    t, v = med(lambda: rs.count()); show(f"{name} hyperscan 1 thread, RegexScanner: prefilter {rs.pieces} (None=full scan)", t, v, rgt, truth)
    r2 = re2.compile(plain)
    t, v = med(lambda: re2_loop(r2), 3); show(f"{name} google-re2 search loop (same translated pattern)", t, v, rgt, truth)

# ---- Q3 / Q4 ----
T_ERR = int(np.count_nonzero(tr["level"] == LEVEL_CODE["ERROR"]))
t, v = med(lambda: S.count_level("ERROR")); show("Q3 per-chunk level counts (sum)", t, v, rg_err, T_ERR)
t, v = med(lambda: int(np.count_nonzero(S.lv == LEVEL_CODE["ERROR"]))); show("Q3 np.count_nonzero over level column", t, v, rg_err, T_ERR)
tts = tr["ts"]; real = tts[tts != RECEIVED]
mid = (real.min() + real.max()) / 2
lo, hi = mid - 1800, mid + 1800
print(f"time range {real.min()}..{real.max()}  window [{lo}, {hi}]")
T_Q4 = int(np.count_nonzero((tts >= lo) & (tts <= hi) & (tr["level"] == LEVEL_CODE["ERROR"])))
t, v = med(lambda: S.count_level_window("ERROR", lo, hi)); show("Q4 chunk-pruned (counts + boundary chunks' columns)", t, v[0], rg_err, T_Q4)
print("   chunks fully inside / partial:", v[1], v[2])
t, v = med(lambda: S.count_level_window_lvts("ERROR", lo, hi)); show("Q4 per-level ts array (lvts_ERROR.npy, mmap)", t, v, rg_err, T_Q4)
t, v = med(lambda: S.count_level_window_columns("ERROR", lo, hi)); show("Q4 vectorized over all columns", t, v, rg_err, T_Q4)
# ---- Q5 ----
want = np.flatnonzero(tr["kw"])[::-1][:100].tolist()
t, v = med(lambda: S.newest_matching(db_kw, 100)); show("Q5 newest 100 'timeout' (newest chunks first)", t, len(v), None, 100)
ids = [i for i, _ in v]
print("   Q5 ids equal brute force:", ids == want, " all contain 'timeout':", all(b"timeout" in x for _, x in v))
R["Q5_ids_ok"] = ids == want
json.dump(R, open("bench_results.json", "w"), indent=1)
