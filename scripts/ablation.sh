#!/usr/bin/env bash
# The WGAN-GP ablation of docs/results.md: 400 generator steps per row on the toy config, each row
# adding one change, then bench/ablation.py scores every checkpoint with one protocol and appends
# a row to bench/results/ablation.json. About 6 minutes per row on 2 CPU cores.
#   bash scripts/ablation.sh            # the A/B rows (equal steps)
#   ROWS="A2 B1" bash scripts/ablation.sh
# C rows tune the optimisation at equal wall clock instead: each trains for BUDGET seconds (SIGTERM
# saves the checkpoint; no evaluation or probe during training), so faster settings get more steps.
#   BUDGET=300 ROWS="C0 C1 C2 C3 C4 C5 C6" bash scripts/ablation.sh
# (rows C7/C8, a lazy gradient penalty, ran with commit 099fc90's training.gp_every, removed since.)
# D rows at the quality run's budget: BUDGET=1292 ROWS="D0 D1 D2 D3 D3s1 D4 D5 D6 D7" bash scripts/ablation.sh
# (C rows and D0-D2 ran before the toy config had the minibatch-std critic: they switch it off;
# D3 is the toy config now, D3s1 repeats it with seed 1, D4-D7 change it.)
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
  [C0]="budget model.minibatch_std_group=0"
  [C1]="budget model.minibatch_std_group=0 model.n_critic=2"
  [C2]="budget model.minibatch_std_group=0 model.n_critic=1"
  [C3]="budget model.minibatch_std_group=0 model.n_critic=1 training.lr_generator=0.0001 training.lr_critic=0.0004"
  [C4]="budget model.minibatch_std_group=0 training.batch_size=64"
  [C5]="budget model.minibatch_std_group=0 training.lr_generator=0.0004 training.lr_critic=0.0004"
  [C6]="budget model.minibatch_std_group=0 model.n_critic=10"
  [D0]="budget model.minibatch_std_group=0"
  [D1]="budget model.minibatch_std_group=0 model.style_dim=128"
  [D2]="budget model.minibatch_std_group=0 model.lambda_ms=0.05"
  [D3]="budget"
  [D3s1]="budget training.seed=1"     # D3 again with another seed: the rows' seed-to-seed noise
  [D4]="budget model.lambda_ms=0.01"
  [D5]="budget model.critic_dim=32"
  [D6]="budget training.batch_size=16"
  [D7]="budget model.cond_drop_prob=0.2"
)
for name in ${ROWS:-A0 A1 A2 A3 A4 A5 A6 B1}; do
    read -r epochs switches <<< "${ROW[$name]}"
    sets=(); for s in $switches; do sets+=(--set "$s"); done
    train=($PY src_new/scripts/train.py --model wgan_gp --config configs/wgan_gp_toy.yaml --run_name "$name"
           --overwrite --set "paths.output_dir=$OUT" --set training.check_every=100 "${sets[@]}")
    if [ "$epochs" = budget ]; then
        rc=0; timeout -s TERM "${BUDGET:?budget rows (C, D) need BUDGET=seconds}" "${train[@]}" --epochs 100000 \
            --set training.eval_every=100000 --set training.check_every=100000 || rc=$?
        [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ] || { echo "row $name failed (exit $rc)" >&2; exit "$rc"; }
        extra=(--train_seconds "$BUDGET")
    else
        "${train[@]}" --epochs "$epochs"; extra=()
    fi
    $PY bench/ablation.py --checkpoint "$OUT/$name/checkpoint_latest.pt" --name "$name" --time_steps 0 "${extra[@]}"
done
