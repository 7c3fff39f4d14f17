"""Q2b variants: callbacks per scan and time (trailing '+' dropped: same per-line existence)."""
import time, statistics, engine
S = engine.Store()
def med(f, r=5):
    f(); xs = []
    for _ in range(r):
        a = time.perf_counter(); v = f(); xs.append(time.perf_counter() - a)
    return statistics.median(xs) * 1000, v
for rx in ("(timeout|refused).*within [0-9]+", "(timeout|refused).*within [0-9]"):
    db = engine.compile_db(engine.translate_regex(rx))
    calls = [0]
    def cb(*a): calls[0] += 1
    db.scan(memoryview(S.m), match_event_handler=cb)
    t, v = med(lambda: S.count_lines(db))
    t2, _ = med(lambda: db.scan(memoryview(S.m), match_event_handler=lambda *a: None))
    print(f"{rx:40s} callbacks={calls[0]:7d} count_lines {t:7.1f} ms ({v})  bare scan {t2:7.1f} ms")
