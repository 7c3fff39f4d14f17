import time, statistics, hyperscan as hs, engine
S = engine.Store(); m = S.m
def med(f, r=5):
    f(); xs = []
    for _ in range(r):
        a = time.perf_counter(); f(); xs.append(time.perf_counter() - a)
    return statistics.median(xs) * 1000
nop = lambda *a: None
for lits in ([b"eout"], [b"fused"], [b"eout", b"fused"], [b"timeout", b"refused"], [b"within "], [b"thin "], [b"ithin"]):
    db = hs.Database(mode=hs.HS_MODE_BLOCK)
    db.compile(expressions=[engine._hs_lit(x) for x in lits], ids=list(range(len(lits))), flags=[0] * len(lits))
    print(f"{str(lits):28s} {med(lambda: db.scan(memoryview(m), match_event_handler=nop)):7.1f} ms")
