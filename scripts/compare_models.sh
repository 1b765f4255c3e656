#!/usr/bin/env bash
# WGAN-GP vs DDPM at an equal wall-clock training budget on this machine (README, "WGAN-GP vs DDPM").
# Each toy config trains with a huge epoch count under `timeout -s TERM $BUDGET`; SIGTERM makes the
# trainer save checkpoint_latest.pt and stop (neither config has a learning-rate schedule, so a cut
# run is a finished run). Then both sample the same modes and counts and are evaluated side by side.
#   BUDGET=1020 bash scripts/compare_models.sh                 # trains both
#   WGAN_CKPT=outputs/wgan_gp/quality/checkpoint_latest.pt BUDGET=<its training seconds> \
#       bash scripts/compare_models.sh                         # reuses a WGAN-GP run, trains the DDPM
# WGAN_INPAINT_ARGS: extra sample.py flags for the WGAN-GP's inpainting (a reused checkpoint
# carries the sampling settings of its day), e.g. "--inpaint_loss mse --restarts 2 --inpaint_steps 100".
# Writes bench/results/compare_models.json (RESULTS=path to write elsewhere) with provenance.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-900}     # seconds of training per model
N=${N:-800}               # conditions per mode and model: one per test condition (toy: 800 test samples)
K=${K:-1}                 # draws per condition (K >= 2 adds the within-condition diversity; N*K samples)
N_INPAINT=${N_INPAINT:-160}
OUT=samples/compare

train_for_budget() {  # model -> trains under the budget; exit code 124 (timed out) is the normal end
    local rc=0
    timeout -s TERM "$BUDGET" $PY src_new/scripts/train.py --config "configs/$1_toy.yaml" --epochs 100000 \
        --run_name compare --overwrite || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then echo "training $1 failed (exit $rc)" >&2; exit "$rc"; fi
}

WGAN_CKPT=${WGAN_CKPT:-}
if [ -z "$WGAN_CKPT" ]; then train_for_budget wgan_gp; WGAN_CKPT=outputs/wgan_gp/compare/checkpoint_latest.pt; fi
train_for_budget ddpm
DDPM_CKPT=outputs/ddpm/compare/checkpoint_latest.pt

for model in wgan_gp ddpm; do
    ckpt=$WGAN_CKPT; [ $model = ddpm ] && ckpt=$DDPM_CKPT
    $PY src_new/scripts/sample.py --checkpoint "$ckpt" --mode unconditional --num_samples "$N" --batch_sz 250 \
        --out $OUT/${model}_unconditional --overwrite
    for g in 0 2; do
        $PY src_new/scripts/sample.py --checkpoint "$ckpt" --mode conditional --guidance_scale $g \
            --num_samples $(( N * K )) --per_condition "$K" --batch_sz 250 --out $OUT/${model}_conditional_g$g --overwrite
    done
    extra=(); [ $model = wgan_gp ] && read -r -a extra <<< "${WGAN_INPAINT_ARGS:-}"
    $PY src_new/scripts/sample.py --checkpoint "$ckpt" --mode inpainting --components fpu group_nc group_km \
        --num_samples "$N_INPAINT" --batch_sz 80 --out $OUT/${model}_inpainting --overwrite "${extra[@]}"
done
runs=()
for mode in unconditional conditional_g0 conditional_g2 inpainting; do
    for model in wgan_gp ddpm; do
        $PY src_new/scripts/evaluate.py --samples $OUT/${model}_$mode > /dev/null
        runs+=("$OUT/${model}_$mode")
    done
done
$PY src_new/scripts/evaluate.py --compare "${runs[@]}"
run_args=(--run "$(dirname "$WGAN_CKPT")" --run "$(dirname "$DDPM_CKPT")")
$PY bench/collect_results.py --out "${RESULTS:-bench/results/compare_models.json}" "${run_args[@]}" \
    --train_seconds "$BUDGET" --train_seconds "$BUDGET" --command "BUDGET=$BUDGET bash scripts/compare_models.sh" "${runs[@]}"
