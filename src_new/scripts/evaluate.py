"""Evaluate generated samples against the test split (metrics.json next to the samples):

    python src_new/scripts/evaluate.py --samples samples/wgan_gp/conditional
    python src_new/scripts/evaluate.py --compare samples/wgan_gp/conditional samples/ddpm/conditional
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from src_new.evaluation.evaluate import compare, evaluate_samples, format_table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", help="samples folder or its samples.npz")
    parser.add_argument("--config", help="YAML config or checkpoint for the data (default: the manifest's)")
    parser.add_argument("--max_real", type=int, default=2000, help="test samples used as the real set (default 2000)")
    parser.add_argument("--no_references", action="store_true", help="skip the sanity references")
    parser.add_argument("--inception_weights", help="pytorch-fid Inception weights (pt_inception-2015-12-05) for FID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", nargs="+", metavar="RUN", help="print a side-by-side table of metrics.json files")
    args = parser.parse_args(argv)
    try:
        if args.compare:
            print(compare(args.compare))
            return
        if not args.samples:
            parser.error("--samples (or --compare) is required")
        result = evaluate_samples(args.samples, args.config, args.max_real, not args.no_references,
                                  args.inception_weights, args.seed)
        print(format_table(result))
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
