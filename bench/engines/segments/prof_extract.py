import time, numpy as np
from logcaster.storage.blocks import encode_payload
from common import framed_batches
import fastindex as fi
bs = []
for i, texts in enumerate(framed_batches()):
    bs.append((texts, encode_payload(texts)))
    if i == 20: break
n = sum(len(t) for t, _ in bs)
for fb, pat, kind in [(None, fi.PATTERN, 'combined')]:
    t0 = time.perf_counter()
    for t, p in bs: pat.findall(b"\n" + p)
    print(kind, f"{(time.perf_counter()-t0)/n*1e6:.3f} us/ev")
import re
for name, pat in [("memchr \\n[", re.compile(rb"\n\[")), ("\\n only", re.compile(rb"\n"))]:
    t0 = time.perf_counter()
    for t, p in bs: pat.findall(p)
    print(name, f"{(time.perf_counter()-t0)/n*1e6:.3f} us/ev")
t0 = time.perf_counter()
sd = fi.ServiceDict()
for t, p in bs: fi.extract(p, t, 0, sd)
print("extract", f"{(time.perf_counter()-t0)/n*1e6:.3f} us/ev")
import cProfile, pstats
cProfile.run("for t, p in bs: fi.extract(p, t, 0, sd)", "/tmp/seg_prof")
pstats.Stats("/tmp/seg_prof").sort_stats("tottime").print_stats(12)
