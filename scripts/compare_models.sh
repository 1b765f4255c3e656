#!/usr/bin/env bash
# WGAN-GP vs DDPM at an equal wall-clock training budget on this machine, three training seeds each
# (README, "WGAN-GP vs DDPM"). For each seed, each toy config trains with a huge epoch count under
# `timeout -s TERM $BUDGET`; SIGTERM makes the trainer save checkpoint_latest.pt and stop (neither
# config has a learning-rate schedule, so a cut run is a finished run); progress grids and periodic
# checkpoints are off (as in bench/seeds.py), so the budget goes to training. Each run then samples with
# its model's defaults (guidance, unconditional mode; one sampling seed for all) and every folder
# is evaluated against the test split; bench/collect_results.py writes the per-seed figures, their
# mean and standard deviation per model and mode, and the provenance.
#   BUDGET=600 bash scripts/compare_models.sh            # seeds 0 1 2, both models
#   SEEDS="0" BUDGET=120 N=200 bash scripts/compare_models.sh   # a quick look (one seed)
# Writes bench/results/compare_models.json (RESULTS=path to write elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-600}     # seconds of training per model and seed (wall clock, start-up included)
SEEDS=${SEEDS:-0 1 2}     # training seeds
N=${N:-800}               # conditions per mode and model: one per test condition (toy: 800 test samples)
N_INPAINT=${N_INPAINT:-160}
OUT=samples/compare
RESULTS=${RESULTS:-bench/results/compare_models.json}
if [ -e "$RESULTS" ] && [ -z "${OVERWRITE:-}" ]; then
    echo "$RESULTS exists: set OVERWRITE=1 to replace it, or RESULTS=another/path.json" >&2; exit 1
fi

train_for_budget() {  # model seed -> trains under the budget; exit code 124 (timed out) is the normal end
    local rc=0
    timeout -s TERM "$BUDGET" $PY src_new/scripts/train.py --config "configs/$1_toy.yaml" --epochs 100000 \
        --seed "$2" --set "paths.output_dir=outputs/compare/s$2" --run_name "$1" --overwrite \
        --set training.eval_every=100000 --set training.check_every=100000 || rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then echo "training $1 (seed $2) failed (exit $rc)" >&2; exit "$rc"; fi
}

# Every training first, so that the budgeted runs share one stretch of the machine's time.
runs=()
for seed in $SEEDS; do
    for model in wgan_gp ddpm; do
        train_for_budget $model "$seed"
        runs+=(--run "outputs/compare/s$seed/$model" --train_seconds "$BUDGET")
    done
done
folders=()
for seed in $SEEDS; do
    for model in wgan_gp ddpm; do
        ckpt=outputs/compare/s$seed/$model/checkpoint_latest.pt; out=$OUT/s$seed
        uncond=(unconditional)
        [ $model = wgan_gp ] && uncond=(unconditional_null unconditional_marginal)
        for mode in "${uncond[@]}"; do
            how=(); [ "$mode" != unconditional ] && how=(--unconditional "${mode#unconditional_}")
            $PY src_new/scripts/sample.py --checkpoint "$ckpt" --mode unconditional "${how[@]}" --num_samples "$N" \
                --batch_sz 250 --out "$out/${model}_$mode" --overwrite
            folders+=("$out/${model}_$mode")
        done
        $PY src_new/scripts/sample.py --checkpoint "$ckpt" --mode conditional --num_samples "$N" --batch_sz 250 \
            --out "$out/${model}_conditional" --overwrite
        $PY src_new/scripts/sample.py --checkpoint "$ckpt" --mode inpainting --components fpu group_nc group_km \
            --num_samples "$N_INPAINT" --batch_sz 80 --out "$out/${model}_inpainting" --overwrite
        folders+=("$out/${model}_conditional" "$out/${model}_inpainting")
    done
done
for folder in "${folders[@]}"; do
    $PY src_new/scripts/evaluate.py --samples "$folder" > /dev/null
done
last=${SEEDS##* }
$PY src_new/scripts/evaluate.py --compare $OUT/s$last/*
$PY bench/collect_results.py --out "$RESULTS" "${runs[@]}" \
    --command "SEEDS=\"$SEEDS\" BUDGET=$BUDGET N=$N bash scripts/compare_models.sh" "${folders[@]}"
