#!/bin/bash
# Load-path figures (1M events unless noted). Run as: flock /tmp/engine-bench.lock bash run_load.sh
cd /work/engines/duckdb; source ../venv/bin/activate
P="python load_bench.py"
T="checkpoint_threshold='4GB'"
$P raw --n 1000000
$P raw --n 1000000 --set "$T" --checkpoint
$P sql --n 1000000 --batch 10000
$P sql --n 1000000 --batch 50000 --set "$T" --checkpoint
$P sql --n 1000000 --batch 50000 --threads 1 --set "$T"
$P rawstage --n 1000000 --batch 10000 --stage 200000 --set "$T"
$P py --n 200000 --batch 10000
$P pyapp --n 100000 --batch 10000
$P pymany --n 3000 --batch 1000
