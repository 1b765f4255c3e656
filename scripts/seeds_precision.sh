#!/usr/bin/env bash
# fp32 vs bf16 training of the toy config at equal wall clock, 3 seeds each, run seed by seed
# alternately (both designs share the machine's drift) -> bench/results/seeds.json.
#   BUDGET=400 bash scripts/seeds_precision.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-400}
for seed in ${SEEDS:-0 1 2}; do
    $PY bench/seeds.py --name "toy_fp32_${BUDGET}s" --budget "$BUDGET" --seeds "$seed" --set training.precision=fp32
    $PY bench/seeds.py --name "toy_bf16_${BUDGET}s" --budget "$BUDGET" --seeds "$seed" --set training.precision=bf16
done
$PY bench/seeds.py --compare "toy_fp32_${BUDGET}s" "toy_bf16_${BUDGET}s"
