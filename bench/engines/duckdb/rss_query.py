"""RSS of a process that opens the 4.5M-event db and runs Q1/Q3/Q5 (warm)."""
import resource, sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=True); con.execute("SET threads=2")
def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096 / 1e6
print(f"after open: {rss():.0f} MB")
for _ in range(2):
    con.execute("SELECT count(*) FROM ev WHERE contains(body, 'timeout')").fetchall()
    con.execute("SELECT count(*) FROM ev WHERE level = 'ERROR'").fetchall()
    con.execute("SELECT id, ts, body FROM ev WHERE contains(body, 'timeout') ORDER BY id DESC LIMIT 100").fetchall()
print(f"after Q1/Q3/Q5 warm: {rss():.0f} MB, maxrss {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024:.0f} MB, duckdb memory_usage {con.execute('SELECT memory_usage FROM pragma_database_size()').fetchall()[0][0]}")
