"""Evaluate generated samples against the test split (writes metrics.json next to the samples):

    python src_new/scripts/evaluate.py --samples samples/wgan_gp/conditional
    python src_new/scripts/evaluate.py --samples samples/wgan_gp/conditional/samples.npz \\
        --config outputs/wgan_gp/demo/checkpoint_latest.pt --inception_weights pt_inception-2015-12-05-6726825d.pth
    python src_new/scripts/evaluate.py --compare samples/wgan_gp/conditional samples/ddpm/conditional
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from src_new.evaluation.evaluate import compare, evaluate_samples, format_table


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", help="samples folder or its samples.npz")
    parser.add_argument("--config", help="YAML config or checkpoint .pt for the data (default: the manifest's)")
    parser.add_argument("--max_real", type=int, default=2000,
                        help="at most this many test samples as the real set, and per reference (default 2000)")
    parser.add_argument("--no_references", action="store_true", help="skip the sanity references (faster)")
    parser.add_argument("--inception_weights",
                        help="pytorch-fid Inception weights (pt_inception-2015-12-05-*.pth) for the classic FID")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsets and references (default 0)")
    parser.add_argument("--compare", nargs="+", metavar="RUN",
                        help="print a side-by-side table of existing metrics.json files (folders or files)")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.samples and not args.compare:
        parser.error("give --samples (evaluate a run) or --compare (tabulate evaluated runs)")
    try:
        if args.samples:
            result = evaluate_samples(args.samples, args.config, max_real=args.max_real,
                                      references=not args.no_references,
                                      inception_weights=args.inception_weights, seed=args.seed)
            print(format_table(result))
            print(f"wrote {result['samples']}/metrics.json")
        if args.compare:
            print(compare(args.compare))
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
