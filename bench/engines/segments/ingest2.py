"""Two-process ingest: process A frames + encodes + appends to the segment (the existing hot
path); process B indexes each closed chunk from the segment file (os.pread, page cache), as a
server's indexer would. Prints wall time for both together. Writes store2/ (data + columns)."""
import multiprocessing as mp, os, sys, time
import numpy as np

STORE2 = "/work/engines/segments/store2"


class LazyTexts:
    """Original event text of line i, unescaped on demand (only the fallback parser asks)."""

    def __init__(self, payload):
        self.lines = payload.split(b"\n")[:-1]

    def __len__(self):
        return len(self.lines)

    def __getitem__(self, i):
        from logcaster.storage.blocks import _unescape_line
        x = self.lines[i]
        return _unescape_line(x) if b"\\" in x else x


def indexer(conn, path):
    from fastindex import extract, ServiceDict
    fd = os.open(path, os.O_RDONLY)
    sd, st, cols, busy = ServiceDict(), {}, [], 0.0
    while True:
        msg = conn.recv()
        if msg is None:
            break
        off, ln, first = msg
        t0 = time.perf_counter()
        payload = os.pread(fd, ln, off)
        cols.append(extract(payload, LazyTexts(payload), first, sd, st))
        busy += time.perf_counter() - t0
    ts = np.concatenate([c[0] for c in cols])
    np.save(os.path.join(STORE2, "ev_ts.npy"), ts)
    conn.send((len(ts), busy, st.get("fallback", 0)))


if __name__ == "__main__":
    os.makedirs(STORE2, exist_ok=True)
    path = os.path.join(STORE2, "seg.log")
    from logcaster.storage.blocks import encode_payload
    from common import framed_batches
    a, b = mp.Pipe()
    p = mp.get_context("fork").Process(target=indexer, args=(b, path))
    t0 = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
    p.start()
    off = n = 0
    busy_a = 0.0
    it = framed_batches()
    while True:
        ta = time.perf_counter()
        texts = next(it, None)
        if texts is None:
            break
        payload = encode_payload(texts)
        os.write(fd, payload)
        busy_a += time.perf_counter() - ta
        a.send((off, len(payload), n))
        off += len(payload)
        n += len(texts)
    t_a = time.perf_counter() - t0
    a.send(None)
    nb, busy_b, fb = a.recv()
    p.join()
    total = time.perf_counter() - t0
    print(f"events={n} (indexed {nb}, fallback {fb}) wall {total:.2f}s = {n/total:,.0f} ev/s on 2 processes | "
          f"A (frame+encode+write) done at {t_a:.2f}s, busy {busy_a:.2f}s | B (pread+index) busy {busy_b:.2f}s = {busy_b/n*1e6:.2f} us/ev")
    ok = (np.load(os.path.join(STORE2, "ev_ts.npy")) == np.load("/work/engines/segments/store/ev_ts.npy")).all()
    print("ts column equal to single-process store:", bool(ok))
