#!/usr/bin/env bash
# The quality run of the README: the toy WGAN-GP trained for 100 epochs (2000 generator steps: each
# step draws n_critic = 5 fresh minibatches of 32, so an epoch of 3200 images is 20 steps; about
# 20 minutes on 2 CPU cores), then an encoder-only phase against the final EMA generator (the
# inpainting initialiser), one unconditional sample per test sample (null and marginal modes), K = 5 conditional
# draws for each test condition (the first feeds FD/precision/recall/coverage, all five the
# within-condition diversity), inpainting with three sets of preserved components, every
# folder evaluated against the test split.
# Run through `make quality` (which installs requirements and generates data/toy first); it writes
# bench/results/quality.json (RESULTS=path to write elsewhere) with the provenance of the run; an
# existing results file is refused unless OVERWRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
EPOCHS=${EPOCHS:-100}
ENCODER_EPOCHS=${ENCODER_EPOCHS:-10}   # encoder-only phase after GAN training (200 steps)
N=${N:-800}                 # unconditional samples, and conditions (one per test sample; toy: 800)
K=${K:-5}                   # conditional draws per condition (N*K samples)
N_INPAINT=${N_INPAINT:-160} # test samples per inpainting set (latent optimization is the slow part)
RUN=outputs/wgan_gp/quality
OUT=samples/wgan_gp/quality
RESULTS=${RESULTS:-bench/results/quality.json}
if [ -e "$RESULTS" ] && [ -z "${OVERWRITE:-}" ]; then
    echo "$RESULTS exists: set OVERWRITE=1 to replace it, or RESULTS=another/path.json" >&2; exit 1
fi
start=$(date +%s)

$PY src_new/scripts/train.py --model wgan_gp --config configs/wgan_gp_toy.yaml --epochs "$EPOCHS" \
    --run_name quality --overwrite
train_done=$(date +%s)
CKPT=$RUN/checkpoint_latest.pt
$PY src_new/scripts/train.py --resume "$CKPT" --set training.phase=encoder --epochs "$ENCODER_EPOCHS"
for how in null marginal; do
    $PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode unconditional --unconditional $how --num_samples "$N" \
        --batch_sz 250 --out $OUT/unconditional_$how --overwrite
done
for g in 0 2; do
    $PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode conditional --guidance_scale $g \
        --num_samples $(( N * K )) --per_condition "$K" --batch_sz 250 --out $OUT/conditional_g$g --overwrite
done
# preserved sets: carcass+crown+sidewall (belt and tread generated), carcass+belt+tread, tread only
$PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode inpainting --components fpu group_nc group_km \
    --num_samples "$N_INPAINT" --batch_sz 80 --out $OUT/inpainting_keep_nc_km_fpu --overwrite
$PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode inpainting --components group_nc bt tpc \
    --num_samples "$N_INPAINT" --batch_sz 80 --out $OUT/inpainting_keep_nc_bt_tpc --overwrite
$PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode inpainting --components tpc \
    --num_samples "$N_INPAINT" --batch_sz 80 --out $OUT/inpainting_keep_tpc --overwrite

runs=(unconditional_null unconditional_marginal conditional_g0 conditional_g2 inpainting_keep_nc_km_fpu inpainting_keep_nc_bt_tpc inpainting_keep_tpc)
for mode in "${runs[@]}"; do
    $PY src_new/scripts/evaluate.py --samples $OUT/$mode
done
$PY src_new/scripts/evaluate.py --compare "${runs[@]/#/$OUT/}"
$PY bench/collect_results.py --out "$RESULTS" --run "$RUN" \
    --train_seconds $(( train_done - start )) --command "EPOCHS=$EPOCHS bash scripts/quality.sh" "${runs[@]/#/$OUT/}"
echo "quality run finished in $(( $(date +%s) - start ))s (training $(( train_done - start ))s):" \
     "samples and metrics.json in $OUT/*, training curves in $RUN/losses.csv"
