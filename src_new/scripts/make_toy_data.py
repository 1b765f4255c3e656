"""Generate the synthetic tire cross-section dataset (EPURE layout).

    python src_new/scripts/make_toy_data.py --out data/toy --n 4000 --seed 0
"""
import argparse
import time

import _bootstrap  # noqa: F401

from src_new.datasets.synthetic import write_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/toy", help="output folder (default: data/toy)")
    parser.add_argument("--n", type=int, default=4000, help="number of samples (default: 4000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--test_fraction", type=float, default=0.2, help="share of test rows (default: 0.2)")
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    args = parser.parse_args(argv)
    if args.n < 2:
        parser.error("--n must be at least 2 (one train and one test sample)")
    start = time.time()
    frame = write_dataset(args.out, args.n, args.seed, args.test_fraction, args.height, args.width)
    print(f"wrote {len(frame)} samples ({int(frame['train'].sum())} train, "
          f"{int((~frame['train']).sum())} test) to {args.out} in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
