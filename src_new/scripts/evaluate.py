"""Evaluate generated samples against the test split (writes metrics.json next to the samples):

    python src_new/scripts/evaluate.py --samples samples/wgan_gp/conditional
    python src_new/scripts/evaluate.py --samples samples/wgan_gp/conditional/samples.npz \\
        --config outputs/wgan_gp/demo/checkpoint_latest.pt --inception_weights pt_inception-2015-12-05-6726825d.pth
    python src_new/scripts/evaluate.py --compare samples/wgan_gp/conditional samples/ddpm/conditional
    python src_new/scripts/evaluate.py --likelihood outputs/wgan_gp/<run>/checkpoint_latest.pt   # flow prior
"""
import argparse
import sys

import _bootstrap  # noqa: F401

from src_new.pipeline.evaluate import compare, evaluate_samples, format_table
from src_new.evaluation.likelihood import SHIFT_PX, batched, likelihood_report


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
    parser.add_argument("--likelihood", metavar="CHECKPOINT",
                        help="WGAN-GP with a fitted flow prior: mean log p(E(x) | c) on the test split and the "
                             "AUROC of that score for real vs shuffled-condition and vs corrupted designs")
    parser.add_argument("--out", help="--likelihood: also write the result as JSON to this file")
    parser.add_argument("--full", action="store_true",
                        help="print every metric and reference (default: the mode's summary; all are in metrics.json)")
    return parser


def likelihood_main(args):
    """The test split's log-likelihoods under the flow prior and under N(0, I) (the baseline)."""
    from src_new.models import get_entry
    from src_new.utils.checkpoint import load_checkpoint
    from src_new.utils.io import write_json
    from src_new.datasets.multicomponent import MultiComponentDataset

    ckpt = load_checkpoint(args.likelihood)
    model_type = (ckpt.get("config") or {}).get("model", {}).get("type") if isinstance(ckpt, dict) else None
    if model_type != "wgan_gp":
        raise ValueError(f"--likelihood {args.likelihood}: a '{model_type}' checkpoint; likelihoods need a "
                         f"WGAN-GP with a flow prior")
    model, cfg = get_entry("wgan_gp", "sample").load_model_from_checkpoint(args.likelihood, ckpt=ckpt)
    test = MultiComponentDataset(cfg["data"], "test", cfg["model"]["image_size"], model.cond_normalizer,
                                 verbose=False)
    n = min(args.max_real, len(test))
    images = test.images_float[:n].numpy()
    cond = test.conditions[:n].numpy() if model.cond_dim > 0 else None

    report = likelihood_report({prior: batched(model.log_likelihood, prior=prior) for prior in ("flow", "normal")},
                               images, cond, dims=model.latent_dim, seed=args.seed)
    keys = list(report["flow"])
    print(f"test-split likelihoods of {args.likelihood} (n={n}; corrupted = one component shifted by "
          f"{SHIFT_PX} px; normal = E(x) under N(0, I))")
    print(f"{'metric':40s} {'flow':>10s} {'normal':>10s}")
    for k in keys:
        print(f"{k:40s} {report['flow'][k]:10.4g} {report['normal'][k]:10.4g}")
    if args.out:
        write_json({"checkpoint": str(args.likelihood), "n": n, "shift_px": SHIFT_PX, "scores": report}, args.out)
        print(f"wrote {args.out}")


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.samples and not args.compare and not args.likelihood:
        parser.error("give --samples (evaluate a run), --compare (tabulate evaluated runs) or --likelihood CKPT")
    try:
        if args.likelihood:
            likelihood_main(args)
        if args.samples:
            result = evaluate_samples(args.samples, args.config, max_real=args.max_real,
                                      references=not args.no_references,
                                      inception_weights=args.inception_weights, seed=args.seed)
            print(format_table(result, full=args.full))
            print(f"wrote {result['samples']}/metrics.json")
        if args.compare:
            print(compare(args.compare, full=args.full))
    except (ValueError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
