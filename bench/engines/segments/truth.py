"""Brute force: full parse of every event; columns + query truths saved to truth.npz."""
import time, json, numpy as np, re2
from logcaster.pipeline.parse import parse_event
from common import framed_batches, RECEIVED, LEVEL_CODE
from logcaster.query.model import compile_regex

R_A = compile_regex(r"(timeout|refused).*user-7[0-9]{3}").search
R_B = compile_regex(r"(timeout|refused).*within [0-9]+").search
t0 = time.perf_counter()
ts, lv, sv, kw, ra, rb = [], [], [], [], [], []
svc = {None: 0}
n = 0
for texts in framed_batches():
    for t in texts:
        ev = parse_event(n, RECEIVED, "corpus", t)
        n += 1
        ts.append(ev.ts); lv.append(LEVEL_CODE[ev.level])
        s = ev.service
        c = svc.get(s)
        if c is None:
            c = svc[s] = len(svc)
        sv.append(c)
        b = ev.body
        kw.append("timeout" in b)
        ra.append(R_A(b) is not None); rb.append(R_B(b) is not None)
dt = time.perf_counter() - t0
np.savez("truth.npz", ts=np.array(ts), level=np.array(lv, np.uint8), service=np.array(sv, np.uint32),
         kw=np.array(kw), ra=np.array(ra), rb=np.array(rb))
json.dump([k for k in svc if k is not None], open("truth_services.json", "w"))
print(f"events={n} parse+regex {dt:.1f}s {dt/n*1e6:.2f} us/event; services={len(svc)-1}")
print("kw", sum(kw), "ra", sum(ra), "rb", sum(rb), "ERROR", lv.count(LEVEL_CODE['ERROR']))
