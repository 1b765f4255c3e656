#!/usr/bin/env bash
# The WGAN-GP ablation of docs/results.md: 400 generator steps per row on the toy config, each row
# adding one change, then bench/ablation.py scores every checkpoint with one protocol and appends
# a row to bench/results/ablation.json. About 6 minutes per row on 2 CPU cores.
#   bash scripts/ablation.sh            # all rows
#   ROWS="A2 B1" bash scripts/ablation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-outputs/wgan_gp/ablation}
PLAN="model.style_dim=0 model.critic_cond=concat model.critic_null_condition=false model.lambda_ms=0 model.minibatch_std_group=0"
declare -A ROW=(
  [A0]="4 $PLAN training.fresh_critic_batches=false"
  [A1]="20 $PLAN"
  [A2]="20 model.style_dim=0 model.critic_cond=concat model.lambda_ms=0 model.minibatch_std_group=0"
  [A3]="20 model.style_dim=128 model.critic_cond=concat model.lambda_ms=0 model.minibatch_std_group=0"
  [A4]="20 model.style_dim=128 model.critic_cond=projection model.lambda_ms=0 model.minibatch_std_group=0"
  [A5]="20 model.style_dim=128 model.critic_cond=projection model.lambda_ms=0.2 model.minibatch_std_group=0"
  [A6]="20 model.style_dim=128 model.critic_cond=projection model.lambda_ms=0.2 model.minibatch_std_group=4"
  [B1]="20 model.style_dim=0 model.critic_cond=projection model.lambda_ms=0 model.minibatch_std_group=0"
)
for name in ${ROWS:-A0 A1 A2 A3 A4 A5 A6 B1}; do
    read -r epochs switches <<< "${ROW[$name]}"
    sets=(); for s in $switches; do sets+=(--set "$s"); done
    $PY src_new/scripts/train.py --model wgan_gp --config configs/wgan_gp_toy.yaml --epochs "$epochs" \
        --run_name "$name" --overwrite --set "paths.output_dir=$OUT" --set training.check_every=100 "${sets[@]}"
    $PY bench/ablation.py --checkpoint "$OUT/$name/checkpoint_latest.pt" --name "$name" --time_steps 0
done
