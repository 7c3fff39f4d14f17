#!/bin/bash
# Deferred-extraction variants (1M events). Run as: flock /tmp/engine-bench.lock bash run_load2.sh
cd /work/engines/duckdb; source ../venv/bin/activate
P="python load_bench.py"
T="checkpoint_threshold='4GB'"
$P rawstage --temp --n 1000000 --batch 10000 --stage 200000 --set "$T" --checkpoint
$P rawstage --temp --n 1000000 --batch 10000 --stage 500000 --set "$T" --checkpoint
$P rawstage --temp --n 1000000 --batch 10000 --stage 500000 --set "$T" --set "preserve_insertion_order=false" --checkpoint
$P sql --n 1000000 --batch 50000 --set "$T" --set "preserve_insertion_order=false" --checkpoint
