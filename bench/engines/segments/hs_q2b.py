"""Attribution: escape-aware '.' vs plain '.' (plain is NOT exact on escaped lines), and raw corpus."""
import time, statistics, mmap, hyperscan as hs, engine
S = engine.Store()
_cf = open("/work/corpus/corpus-5M.log", "rb")
cm = mmap.mmap(_cf.fileno(), 0, access=mmap.ACCESS_READ)
def med(f, r=5):
    f(); xs = []
    for _ in range(r):
        a = time.perf_counter(); f(); xs.append(time.perf_counter() - a)
    return statistics.median(xs) * 1000
nop = lambda *a: None
for name, expr, buf in (("escape-aware . on seg.log", engine.translate_regex("(timeout|refused).*within [0-9]+"), S.m),
                        ("plain . on seg.log (inexact)", rb"(timeout|refused).*within [0-9]+", S.m),
                        ("plain . on raw corpus", rb"(timeout|refused).*within [0-9]+", cm),
                        ("literal timeout on raw corpus", rb"timeout", cm)):
    db = engine.compile_db(expr)
    print(f"{name:34s} {med(lambda: db.scan(memoryview(buf), match_event_handler=nop)):7.1f} ms")
