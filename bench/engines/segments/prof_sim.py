import time, re, numpy as np
from logcaster.storage.blocks import encode_payload
from common import framed_batches
bs = []
for i, texts in enumerate(framed_batches()):
    bs.append(b"\n" + encode_payload(texts))
    if i == 20: break
n = sum(p.count(b"\n[") for p in bs)
V = {
 "full": rb"\n\[(?:(TRACE|DEBUG|INFO|WARN|ERROR|FATAL)\] (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ([\w.-]+)/[^\s:\\]|)",
 "dot23": rb"\n\[(?:([A-Z]{4,5})\] (.{23}) ([\w.-]+)/[^\s:\\]|)",
 "onegroup": rb"\n\[(?:([A-Z]{4,5}\] .{23} [\w.-]+)/[^\s:\\]|)",
 "nogroup": rb"\n\[(?:[A-Z]{4,5}\] .{23} [\w.-]+/[^\s:\\]|)",
 "svc-only": rb"\n\[[A-Z]{4,5}\] .{23} ([\w.-]*)",
}
for k, v in V.items():
    p = re.compile(v)
    best = 9
    for r in range(3):
        t0 = time.perf_counter()
        for b in bs: p.findall(b)
        best = min(best, time.perf_counter() - t0)
    print(k, f"{best/n*1e6:.3f} us/sim-line")
