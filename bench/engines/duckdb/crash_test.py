"""kill -9 during a load: a child appends 10k-event batches (each INSERT auto-commits) and prints the
committed row count after each; the parent kills it with SIGKILL mid-load, reopens the db, counts.
usage: python crash_test.py [kill_after_seconds] [batch] [checkpoint_threshold]
"""
import os
import signal
import subprocess
import sys
import time

import duckdb

DB = "/work/engines/duckdb/data/crash.duckdb"
KILL_AFTER = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
BATCH = sys.argv[2] if len(sys.argv) > 2 else "10000"
THRESH = sys.argv[3] if len(sys.argv) > 3 else "16MB"
CHILD = r"""
import duckdb, pyarrow as pa, sys
t = pa.ipc.open_file('/work/engines/duckdb/data/texts.arrow').read_all().slice(0, 2_000_000)
con = duckdb.connect(sys.argv[1])
con.execute("SET threads=2")
con.execute(f"SET checkpoint_threshold='{sys.argv[3]}'")
B = int(sys.argv[2])
con.execute("CREATE TABLE ev (id BIGINT, body VARCHAR)")
print("ready", flush=True)
for off in range(0, len(t), B):
    b = t.slice(off, B)
    batch = pa.table({'id': b['id'], 'body': b['text'].cast(pa.string())})
    con.execute("INSERT INTO ev SELECT * FROM batch")
    print("committed", off + len(b), flush=True)
"""
for s in ("", ".wal"):
    if os.path.exists(DB + s):
        os.remove(DB + s)
p = subprocess.Popen([sys.executable, "-c", CHILD, DB, BATCH, THRESH], stdout=subprocess.PIPE, text=True)
assert p.stdout.readline().strip() == "ready"
t0 = time.time()
last = 0
os.set_blocking(p.stdout.fileno(), False)
while time.time() - t0 < KILL_AFTER:
    line = p.stdout.readline()
    if line.startswith("committed"):
        last = int(line.split()[1])
    elif not line:
        time.sleep(0.01)
os.kill(p.pid, signal.SIGKILL)
p.wait()
rest = p.stdout.read() or ""
for line in rest.splitlines():
    if line.startswith("committed"):
        last = int(line.split()[1])
sizes = {s: os.path.getsize(DB + s) for s in ("", ".wal") if os.path.exists(DB + s)}
a = time.perf_counter()
con = duckdb.connect(DB)
n, mx = con.execute("SELECT count(*), max(id) FROM ev").fetchall()[0]
dt = time.perf_counter() - a
bad = con.execute("SELECT count(*) FROM ev WHERE id <> (SELECT count(*) FROM ev e2 WHERE e2.id < ev.id)").fetchall()[0][0] if n < 0 else 0
print(f"batch={BATCH} checkpoint_threshold={THRESH}: killed after {KILL_AFTER}s; last commit acknowledged to child's stdout: {last}; files before reopen: {sizes}")
print(f"reopen+count took {dt:.2f}s; rows after reopen: {n} (max id {mx}); "
      f"lost acknowledged rows: {max(0, last - n)}; extra rows (committed, ack not yet printed): {max(0, n - last)}")
con.execute("CHECKPOINT")
print("after checkpoint:", {s: os.path.getsize(DB + s) for s in ("", ".wal") if os.path.exists(DB + s)})
