"""Extract frames of a video into a folder of PNGs, the data of `data.type: image_folder`:

    python src_new/scripts/video_to_frames.py VIDEO --every 10 --out data/frames [--size 200]
    python src_new/scripts/train.py --config configs/wgan_gp_frames.yaml   # trains on data/frames

Files are named frame_<index>.png by their frame number in the video.
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from src_new.datasets.video import extract_frames


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", help="video file (anything FFmpeg reads: mp4, avi, mkv, mov, webm, ...)")
    parser.add_argument("--every", type=int, default=10, help="keep every N-th frame (default: 10)")
    parser.add_argument("--out", required=True, help="output folder (must be new or empty, or --overwrite)")
    parser.add_argument("--size", type=int, help="scale each frame to cover SIZE x SIZE and center-crop "
                                                 "(default: keep the video's size)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty output folder")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.size is not None and args.size < 1:
        sys.exit(f"error: --size {args.size} must be a positive number of pixels")
    try:
        paths = extract_frames(args.video, args.out, args.every, args.size, args.overwrite)
    except (ValueError, FileNotFoundError, FileExistsError, PermissionError) as err:
        sys.exit(f"error: {err}")
    print(f"wrote {len(paths)} frames (one in {args.every}) to {args.out}; train on them with "
          f"data.type: image_folder, data.root_dir: {args.out} (see configs/wgan_gp_frames.yaml)")


if __name__ == "__main__":
    main()
