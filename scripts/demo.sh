#!/usr/bin/env bash
# The demo: train the toy WGAN-GP on the synthetic dataset, sample the three modes, evaluate.
# Run through `make demo` (which installs requirements and generates data/toy first).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RUN=outputs/wgan_gp/demo
OUT=samples/wgan_gp/demo
start=$(date +%s)

$PY src_new/scripts/train.py --model wgan_gp --config configs/wgan_gp_toy.yaml --run_name demo --overwrite
CKPT=$RUN/checkpoint_latest.pt
$PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode unconditional --num_samples 512 --batch_sz 128 \
    --out $OUT/unconditional --overwrite
$PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode conditional --guidance_scale 0 --num_samples 512 \
    --batch_sz 128 --out $OUT/conditional_g0 --overwrite
$PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode conditional --guidance_scale 2 --num_samples 512 \
    --batch_sz 128 --out $OUT/conditional_g2 --overwrite
$PY src_new/scripts/sample.py --checkpoint "$CKPT" --mode inpainting --components fpu group_nc group_km \
    --num_samples 64 --batch_sz 64 --restarts 2 --out $OUT/inpainting --overwrite

for mode in unconditional conditional_g0 conditional_g2 inpainting; do     # each folder's table: evaluate.txt
    mkdir -p $OUT/$mode                                                   # (sample.py made it)
    $PY src_new/scripts/evaluate.py --samples $OUT/$mode > $OUT/$mode/evaluate.txt
done
$PY src_new/scripts/evaluate.py --compare $OUT/unconditional $OUT/conditional_g0 $OUT/conditional_g2 $OUT/inpainting
echo "demo finished in $(( $(date +%s) - start ))s: grids in $OUT/*/grid.png, inpainting triplets in" \
     "$OUT/inpainting/triplets.png, training curves in $RUN/curves.png ($RUN/losses.csv), every metric in" \
     "$OUT/*/metrics.json (evaluate.py --full)"
