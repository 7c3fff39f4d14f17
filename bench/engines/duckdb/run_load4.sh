#!/bin/bash
# Big-batch SQL extraction (buffer arrow batches in Python, one INSERT..SELECT per 250k/500k events).
cd /work/engines/duckdb; source ../venv/bin/activate
P="python load_bench.py"
T="checkpoint_threshold='4GB'"
$P sql --n 2000000 --batch 250000 --set "$T" --checkpoint
$P sql --n 2000000 --batch 500000 --set "$T" --checkpoint
$P sql --n 2000000 --batch 500000 --set "$T" --set "preserve_insertion_order=false" --checkpoint
$P raw --n 2000000 --batch 500000 --set "$T" --checkpoint
