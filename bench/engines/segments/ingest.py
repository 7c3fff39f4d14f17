"""Build the store: escaped segment text (logcaster raw block encoding) + sidecar index.

store/seg.log       payloads of all chunks, back to back (one event per line)
store/chunks.npz    per chunk: byte offset/len, first id, count, ts min/max, level counts, service counts
store/ev_ts.npy     per event float64 ts      (mmap'able columns)
store/ev_level.npy  per event uint8 level code
store/ev_svc.npy    per event uint16 service code
store/lvts_<LEVEL>.npy  per level: float64 ts of that level's events, in id order (chunk offsets = cumsum of level counts)
store/services.json service dictionary
Usage: python ingest.py [--verify] [--gc-off]
"""
import json, os, sys, time
import numpy as np
from logcaster.storage.blocks import encode_payload
from common import framed_batches, STORE, LEVELS, RECEIVED
from fastindex import extract, ServiceDict

os.makedirs(STORE, exist_ok=True)
if "--gc-off" in sys.argv:   # the cyclic GC re-walks every live container as allocations pile up
    import gc
    gc.disable()
services = ServiceDict()
stats = {}
t_frame = t_enc = t_idx = t_write = 0.0
nrecv, lrecv = [], []
offs, lens, firsts, counts, tmin, tmax, lcounts, scounts = [], [], [], [], [], [], [], []
cts, clv, csv = [], [], []
lvts = {code: [] for code in range(1, len(LEVELS))}
n = 0
off = 0
seg = open(os.path.join(STORE, "seg.log"), "wb")
t = time.perf_counter()
it = framed_batches()
while True:
    t0 = time.perf_counter()
    texts = next(it, None)
    t1 = time.perf_counter()
    t_frame += t1 - t0
    if texts is None:
        break
    payload = encode_payload(texts)
    t2 = time.perf_counter()
    ts, lv, sv = extract(payload, texts, n, services, stats)
    offs.append(off); lens.append(len(payload)); firsts.append(n); counts.append(len(texts))
    # events without a time of their own carry the batch's receive time: keep that apart,
    # or every chunk's [tmin, tmax] spans corpus time .. replay time and nothing prunes
    own = ts != RECEIVED
    tmin.append(ts[own].min() if own.any() else np.inf); tmax.append(ts[own].max() if own.any() else -np.inf)
    nrecv.append(int(n_ev := len(ts)) - int(own.sum()))
    lrecv.append(np.bincount(lv[~own], minlength=len(LEVELS)))   # levels of receive-time events
    lcounts.append(np.bincount(lv, minlength=len(LEVELS)))
    scounts.append(np.bincount(sv))
    cts.append(ts); clv.append(lv); csv.append(sv)
    for code in range(1, len(LEVELS)):
        lvts[code].append(ts[lv == code])   # ts partitioned by level (Q4: one level's ts only)
    t3 = time.perf_counter()
    t_idx += t3 - t2
    seg.write(payload)
    t_write += time.perf_counter() - t3
    t_enc += t2 - t1
    off += len(payload)
    n += len(texts)
seg.close()
total = time.perf_counter() - t
ns = len(services.names)
sc = np.zeros((len(scounts), ns), np.uint32)
for i, c in enumerate(scounts):
    sc[i, : len(c)] = c
np.savez(os.path.join(STORE, "chunks.npz"), off=np.array(offs, np.int64), len=np.array(lens, np.int64),
         first=np.array(firsts, np.int64), count=np.array(counts, np.int64), tmin=np.array(tmin), tmax=np.array(tmax),
         nrecv=np.array(nrecv, np.int64), lrecv=np.array(lrecv, np.uint32), received=np.full(len(offs), RECEIVED),
         lcount=np.array(lcounts, np.uint32), scount=sc)
np.save(os.path.join(STORE, "ev_ts.npy"), np.concatenate(cts))
np.save(os.path.join(STORE, "ev_level.npy"), np.concatenate(clv))
np.save(os.path.join(STORE, "ev_svc.npy"), np.concatenate(csv))
for code, parts in lvts.items():
    np.save(os.path.join(STORE, f"lvts_{LEVELS[code]}.npy"), np.concatenate(parts))
json.dump(services.names, open(os.path.join(STORE, "services.json"), "w"))
print(f"events={n} chunks={len(offs)} bytes={off} services={ns-1} fallback={stats['fallback']} ({stats['fallback']/n*100:.2f}%)")
print(f"total {total:.2f}s = {n/total:,.0f} ev/s | framing {t_frame:.2f}s ({t_frame/n*1e6:.2f} us/ev) | "
      f"encode {t_enc:.2f}s ({t_enc/n*1e6:.2f} us/ev) | index {t_idx:.2f}s ({t_idx/n*1e6:.2f} us/ev, {n/t_idx:,.0f} ev/s) | write {t_write:.2f}s")
if "--verify" in sys.argv:
    tr = np.load("truth.npz")
    names = json.load(open("truth_services.json"))
    tnames = np.array([None] + names, dtype=object)
    mynames = np.array(services.names, dtype=object)
    ts = np.concatenate(cts); lv = np.concatenate(clv); sv = np.concatenate(csv)
    d_ts = np.flatnonzero(ts != tr["ts"]); d_lv = np.flatnonzero(lv != tr["level"])
    d_sv = np.flatnonzero(mynames[sv] != tnames[tr["service"]])
    print(f"disagreements vs full parser: ts={len(d_ts)} level={len(d_lv)} service={len(d_sv)}")
    for name, d in (("ts", d_ts), ("level", d_lv), ("service", d_sv)):
        for i in d[:3]:
            print(name, i, ts[i], tr["ts"][i], lv[i], tr["level"][i], mynames[sv[i]], tnames[tr["service"][i]])
