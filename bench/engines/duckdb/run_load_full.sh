#!/bin/bash
# Full corpus (4,516,551 events) through the two main load paths. Run: flock /tmp/engine-bench.lock bash run_load_full.sh
cd /work/engines/duckdb; source ../venv/bin/activate
P="python load_bench.py"
T="checkpoint_threshold='4GB'"
$P raw --n 5000000 --batch 10000 --set "$T" --checkpoint --db data/full_raw.duckdb
$P sql --n 5000000 --batch 50000 --set "$T" --checkpoint --db data/full_sql.duckdb
python rss_query.py data/q.duckdb
python rss_query.py data/q_unc_enum.duckdb
