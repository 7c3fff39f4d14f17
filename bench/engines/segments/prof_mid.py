import time, cProfile, pstats, sys
from logcaster.storage.blocks import encode_payload
from common import framed_batches
import fastindex as fi
lo, hi = int(sys.argv[1]), int(sys.argv[2])
bs = []
for i, texts in enumerate(framed_batches()):
    if i >= lo: bs.append((texts, encode_payload(texts)))
    if i == hi: break
n = sum(len(t) for t, _ in bs)
sd = fi.ServiceDict(); st = {}
t0 = time.perf_counter()
for t, p in bs: fi.extract(p, t, 0, sd, st)
print(f"batches {lo}-{hi}: extract {(time.perf_counter()-t0)/n*1e6:.3f} us/ev fallback {st['fallback']/n*100:.2f}%")
cProfile.run("for t, p in bs: fi.extract(p, t, 0, sd)", "/tmp/seg_prof2")
pstats.Stats("/tmp/seg_prof2").sort_stats("tottime").print_stats(8)
