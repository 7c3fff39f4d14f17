import time, re
from logcaster.storage.blocks import encode_payload
from common import framed_batches
import fastindex as fi
bs = []
for i, texts in enumerate(framed_batches()):
    bs.append((len(texts), b"\n" + encode_payload(texts)))
    if i == 20: break
n = sum(k for k, _ in bs)
src = fi.PATTERN.pattern
V = {"combined": src,
     "no-json-validate": src.replace(rb'(?:,"(?!(?:timestamp|level|service)")[A-Za-z0-9_]+":' + fi._JVAL + rb")*\}(?=\n|\\n)", b""),
     "no-service-lookahead": src.replace(rb"(?![^\n]*service=)", b""),
     "just-newline-group": rb"\n()",
     "prefix-only": rb"\n(?:(?:\[|\{|ts=|<|\d)([^/\" \n]*)|)"}
for k, v in V.items():
    p = re.compile(v)
    best = 9
    for r in range(3):
        t0 = time.perf_counter()
        for _, b in bs: p.findall(b)
        best = min(best, time.perf_counter() - t0)
    print(f"{k:22s} {best/n*1e6:.3f} us/ev")
