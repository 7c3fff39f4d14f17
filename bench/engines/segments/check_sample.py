import os, sys, time, numpy as np
from logcaster.storage.blocks import encode_payload
from logcaster.pipeline.parse import parse_event
from common import framed_batches, RECEIVED, LEVEL_CODE
from fastindex import extract, ServiceDict
sd = ServiceDict(); st = {}; n = 0; bad = 0; tx = 0
for texts in framed_batches():
    p = encode_payload(texts)
    t0 = time.perf_counter(); ts, lv, sv = extract(p, texts, n, sd, st); tx += time.perf_counter() - t0
    for i, t in enumerate(texts):
        ev = parse_event(n + i, RECEIVED, "c", t)
        if ev.ts != ts[i] or LEVEL_CODE[ev.level] != lv[i] or ev.service != sd.names[sv[i]]:
            bad += 1
            if bad < 5: print("DIFF", t[:150], ev.ts, ts[i], ev.level, lv[i], ev.service, sd.names[sv[i]])
    n += len(texts)
print("events", n, "bad", bad, "fallback", st, f"extract {tx/n*1e6:.2f} us/ev")
