#!/usr/bin/env bash
# The picture path end to end on a 2-core CPU (README, "Pictures and video frames"): the synthetic
# clip (make_toy_video.py: coloured shapes moving over a gradient, 2000 frames of 128 x 128, seed 0)
# -> every 2nd frame at 64 x 64 in data/frames_toy (1000 frames: 800 train, 200 test) -> the
# WGAN-GP of configs/wgan_gp_frames_toy.yaml trained under `timeout -s TERM $BUDGET` (SIGTERM makes
# the trainer save checkpoint_latest.pt and stop; the config has no learning-rate schedule, so a cut
# run is a finished run) -> N unconditional samples -> evaluate.py (pixel-space FD/KID,
# precision/recall/coverage on pooled pictures, nearest-training-frame distances) -> real frames
# beside generated ones in docs/frames_grid.png -> bench/collect_results.py writes the figures with
# their provenance to bench/results/frames.json.
#   make frames                                      # BUDGET=480 s of training, N=200 samples
#   BUDGET=60 N=64 RESULTS=/tmp/frames.json WORK=/tmp/frames bash scripts/frames.sh   # a quick look
# RESULTS and the grid (GRID; default: docs/frames_grid.png with the default RESULTS, else
# RESULTS' name ending _grid.png) are refused when they exist, unless OVERWRITE=1. WORK (default:
# the repository) holds the run's data/, outputs/ and samples/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
BUDGET=${BUDGET:-480}     # seconds of training (wall clock, start-up included)
N=${N:-200}               # unconditional samples: as many as the test frames
FRAMES=${FRAMES:-2000}    # frames of the clip (every 2nd is kept)
WORK=${WORK:-.}
VIDEO=$WORK/data/toy_video.mp4
DATA=$WORK/data/frames_toy
RUNS=$WORK/outputs/wgan_gp
RUN=$RUNS/frames_toy
OUT=$WORK/samples/wgan_gp/frames_toy/unconditional
RESULTS=${RESULTS:-bench/results/frames.json}
# the grid goes with the results: docs/frames_grid.png beside the committed results, else next to RESULTS
[ "$RESULTS" = bench/results/frames.json ] && GRID=${GRID:-docs/frames_grid.png} || GRID=${GRID:-${RESULTS%.json}_grid.png}
for target in "$RESULTS" "$GRID"; do
    if [ -e "$target" ] && [ -z "${OVERWRITE:-}" ]; then
        echo "$target exists: set OVERWRITE=1 to replace it, or RESULTS= / GRID= another path" >&2; exit 1
    fi
done

$PY src_new/scripts/make_toy_video.py --out "$VIDEO" --frames "$FRAMES" --size 128 --seed 0 --overwrite
$PY src_new/scripts/video_to_frames.py "$VIDEO" --every 2 --size 64 --out "$DATA" --overwrite
rc=0
timeout -s TERM "$BUDGET" $PY src_new/scripts/train.py --config configs/wgan_gp_frames_toy.yaml --epochs 100000 \
    --set "data.root_dir=$DATA" --output_dir "$RUNS" --run_name frames_toy --overwrite || rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; then echo "training failed (exit $rc)" >&2; exit "$rc"; fi
$PY src_new/scripts/sample.py --checkpoint "$RUN/checkpoint_latest.pt" --mode unconditional --num_samples "$N" \
    --batch_sz 100 --out "$OUT" --overwrite
$PY src_new/scripts/evaluate.py --samples "$OUT"
$PY src_new/scripts/frames_grid.py --samples "$OUT" --out "$GRID" --n 16
$PY bench/collect_results.py --out "$RESULTS" --run "$RUN" --train_seconds "$BUDGET" \
    --command "BUDGET=$BUDGET N=$N bash scripts/frames.sh" "$OUT"
