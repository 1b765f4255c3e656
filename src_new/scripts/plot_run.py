"""Draw the training curves of a run folder (losses.csv + the checkpoint's evaluations):

    python src_new/scripts/plot_run.py outputs/wgan_gp/demo                # -> outputs/wgan_gp/demo/curves.png
    python src_new/scripts/plot_run.py --compare outputs/wgan_gp/a outputs/wgan_gp/b --out ab.png

Works for any model and any run, old ones included (the columns present are drawn); the
model's healthy ranges (WGAN-GP: the bounds of its health checks, ``HEALTHY_RANGES`` in models/wgan_gp/train.py) are shaded.
"""
import argparse
import sys
from pathlib import Path

import _bootstrap  # noqa: F401

from src_new.models import get_entry
from src_new.utils.plots import plot_runs


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", nargs="?", help="a run folder (with losses.csv)")
    parser.add_argument("--compare", nargs="+", metavar="RUN_DIR", help="overlay several run folders")
    parser.add_argument("--out", help="output PNG (default: RUN_DIR/curves.png; with --compare: "
                                      "curves_compare.png in the current folder)")
    return parser


def healthy_ranges(run_dirs):
    """The model's shaded ranges, from the first run's config.yaml (empty if unknown)."""
    import yaml

    config = Path(run_dirs[0]) / "config.yaml"
    try:
        model_type = yaml.safe_load(config.read_text())["model"]["type"]
        return dict(getattr(get_entry(model_type, "train"), "HEALTHY_RANGES", {}))
    except (OSError, KeyError, TypeError, ValueError, yaml.YAMLError):
        return {}


def main(argv=None):
    args = build_parser().parse_args(argv)
    runs = ([args.run_dir] if args.run_dir else []) + list(args.compare or [])
    if not runs:
        sys.exit("error: give a run folder, or --compare RUN_A RUN_B")
    out = Path(args.out) if args.out else (Path("curves_compare.png") if len(runs) > 1 else Path(runs[0]) / "curves.png")
    try:
        plot_runs(runs, out, ranges=healthy_ranges(runs))
    except (ValueError, FileNotFoundError, OSError) as err:
        sys.exit(f"error: {err}")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
