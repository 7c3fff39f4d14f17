"""Q1 variant: Hyperscan on a rarer piece of the keyword, exact check in the callback."""
import time, statistics, engine
S = engine.Store()
m = S.m
def med(f, r=5):
    f(); xs = []
    for _ in range(r):
        a = time.perf_counter(); v = f(); xs.append(time.perf_counter() - a)
    return statistics.median(xs) * 1000, v
KW = b"timeout"
for sub in (b"timeout", b"imeout", b"meout", b"eout", b"timeo"):
    k = KW.index(sub)
    db = engine.compile_db(engine._hs_lit(sub))
    def run():
        st = [0, -1]
        def cb(_i, _f, to, _fl, _c):
            if to > st[1] and m[to - len(sub) - k: to - len(sub) - k + len(KW)] == KW:
                st[0] += 1
                st[1] = m.find(b"\n", to)
        db.scan(memoryview(m), match_event_handler=cb)
        return st[0]
    calls = [0]
    db.scan(memoryview(m), match_event_handler=lambda *a: calls.__setitem__(0, calls[0] + 1))
    t, v = med(run)
    print(f"hs literal {sub.decode():8s} callbacks={calls[0]:8d}  {t:7.1f} ms  count={v}")
