#!/bin/bash
# ART index (PRIMARY KEY) cost and RSS growth. Run as: flock /tmp/engine-bench.lock bash run_load3.sh
cd /work/engines/duckdb; source ../venv/bin/activate
P="python load_bench.py"
T="checkpoint_threshold='4GB'"
$P raw --n 1000000 --set "$T" --checkpoint
$P raw --n 1000000 --set "$T" --checkpoint --pk
$P sql --n 1000000 --batch 50000 --set "$T" --checkpoint --pk
