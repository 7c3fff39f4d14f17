#!/bin/bash
# exploratory load configs, 300k events each; run as: flock /tmp/engine-bench.lock bash run_load_explore.sh
cd /work/engines/duckdb; source ../venv/bin/activate
P="python load_bench.py"
$P raw --n 300000
$P raw --n 300000 --set "checkpoint_threshold='4GB'"
$P sql --n 300000
$P sql --n 300000 --set "checkpoint_threshold='4GB'"
$P sql --n 300000 --batch 50000 --set "checkpoint_threshold='4GB'"
$P rawstage --n 300000 --stage 100000 --set "checkpoint_threshold='4GB'"
