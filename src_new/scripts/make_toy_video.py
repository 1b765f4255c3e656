"""Write the synthetic video of the picture path: coloured circles and rectangles moving on smooth
seeded paths over a colour gradient (PyAV, MPEG-4; deterministic for a seed, nothing downloaded).

    python src_new/scripts/make_toy_video.py --out data/toy_video.mp4 --frames 2000 --size 128 --seed 0
    python src_new/scripts/video_to_frames.py data/toy_video.mp4 --every 2 --size 64 --out data/frames_toy
    python src_new/scripts/train.py --config configs/wgan_gp_frames_toy.yaml

`make frames` (scripts/frames.sh) runs these, samples, evaluates and draws docs/frames_grid.png.
"""
import argparse
import sys
import time

import _bootstrap  # noqa: F401

from src_new.datasets.toy_video import MAX_SIZE, MIN_SIZE, PALETTE, write_toy_video


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/toy_video.mp4", help="video file to write (default: data/toy_video.mp4)")
    parser.add_argument("--frames", type=int, default=2000, help="number of frames, 1-1000000 (default: 2000)")
    parser.add_argument("--size", type=int, default=128,
                        help=f"frame side in pixels, even, {MIN_SIZE}-{MAX_SIZE} (default: 128)")
    parser.add_argument("--shapes", type=int, default=4, help=f"number of shapes, 1-{len(PALETTE)} (default: 4)")
    parser.add_argument("--fps", type=int, default=25, help="frames per second, 1-240 (default: 25)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the shapes and their paths (default: 0)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing video file")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 1 <= args.frames <= 1_000_000:
        parser.error(f"--frames {args.frames}: use 1 to 1000000 frames")
    if not (MIN_SIZE <= args.size <= MAX_SIZE and args.size % 2 == 0):
        parser.error(f"--size {args.size}: use an even number of pixels in [{MIN_SIZE}, {MAX_SIZE}] "
                     f"(the yuv420p video format halves the colour resolution)")
    if not 1 <= args.shapes <= len(PALETTE):
        parser.error(f"--shapes {args.shapes}: use 1 to {len(PALETTE)} (one colour each)")
    if not 1 <= args.fps <= 240:
        parser.error(f"--fps {args.fps}: use 1 to 240 frames per second")
    start = time.time()
    try:
        path = write_toy_video(args.out, args.frames, args.size, args.seed, args.fps, args.shapes, args.overwrite)
    except (ValueError, FileExistsError, PermissionError) as err:
        sys.exit(f"error: {err}")
    print(f"wrote {args.frames} frames of {args.size} x {args.size} ({args.shapes} shapes, seed {args.seed}) to "
          f"{path} in {time.time() - start:.1f}s; extract them with `python src_new/scripts/video_to_frames.py "
          f"{path} --every 2 --size 64 --out data/frames_toy`")


if __name__ == "__main__":
    main()
