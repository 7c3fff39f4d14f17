import time, statistics, mmap, numpy as np, hyperscan as hs, engine
S = engine.Store()
m = S.m; data = m[:]
def t(f, r=5):
    f(); xs = []
    for _ in range(r):
        a = time.perf_counter(); f(); xs.append(time.perf_counter() - a)
    return statistics.median(xs) * 1000
db = engine.compile_db(engine.keyword_expr(b"timeout"))
dbn = engine.compile_db(engine.keyword_expr(b"zqxjkvw"))
cb = lambda *a: None
print("hs timeout mmap  %.1f ms" % t(lambda: db.scan(memoryview(m), match_event_handler=cb)))
print("hs timeout bytes %.1f ms" % t(lambda: db.scan(data, match_event_handler=cb)))
print("hs nomatch-literal bytes %.1f ms" % t(lambda: dbn.scan(data, match_event_handler=cb)))
db64 = engine.compile_db(engine.keyword_expr(b"timeout"))
# per-chunk scans (what a block-aware scanner does)
def per_chunk():
    mv = memoryview(m)
    for o, l in zip(S.off.tolist(), S.len.tolist()):
        db.scan(mv[o:o + l], match_event_handler=cb)
print("hs timeout per-chunk (611 scans) %.1f ms" % t(per_chunk))
print("numpy sum (touch all pages) %.1f ms" % t(lambda: np.frombuffer(m, np.uint8)[::4096].sum()))
