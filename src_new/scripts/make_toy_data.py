"""Generate the synthetic tire cross-section dataset (EPURE layout).

    python src_new/scripts/make_toy_data.py --out data/toy --n 4000 --seed 0
"""
import argparse
import time
from pathlib import Path

import _bootstrap  # noqa: F401

from src_new.datasets.synthetic import write_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/toy", help="output folder (default: data/toy)")
    parser.add_argument("--n", type=int, default=4000, help="number of samples (default: 4000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--test_fraction", type=float, default=0.2, help="share of test rows (default: 0.2)")
    parser.add_argument("--height", type=int, default=64, help="image height in pixels, 16-4096 (default: 64)")
    parser.add_argument("--width", type=int, default=32, help="image width in pixels, 8-4096 (default: 32)")
    args = parser.parse_args(argv)
    if not 2 <= args.n <= 10_000_000:
        parser.error("--n must be in [2, 10000000] (at least one train and one test sample)")
    if not 0 < args.test_fraction < 1 or args.n * args.test_fraction < 0.5 or args.n * (1 - args.test_fraction) < 0.5:
        parser.error(f"--test_fraction {args.test_fraction}: use a share in (0, 1) that leaves both splits non-empty")
    if not (16 <= args.height <= 4096 and 8 <= args.width <= 4096):
        parser.error(f"--height {args.height} --width {args.width}: the shapes need at least 16 x 8 pixels "
                     f"(and at most 4096 each)")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        parser.error(f"--out {args.out} is a file; give a folder (it is created when missing)")
    start = time.time()
    frame = write_dataset(args.out, args.n, args.seed, args.test_fraction, args.height, args.width)
    print(f"wrote {len(frame)} samples ({int(frame['train'].sum())} train, "
          f"{int((~frame['train']).sum())} test) to {args.out} in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
