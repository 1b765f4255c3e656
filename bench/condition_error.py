"""Where the condition error comes from: for conditional samples folders, the absolute error of
each condition column (measured through the conventions fitted on the train split, as
evaluate.py measures it) as its mean (evaluate.py's condition MAE), median, 90th / 99th
percentile, the share of samples off by more than 2 px and the share on target (within half a
pixel), with the signed mean (a bias), on the raw samples and on the same
samples after ``clean`` (specks dropped, small holes filled; the mirror side read from the
data). A mean far above the median says that a few samples carry the error; a mean that the
clean-up lowers says that stray pieces stretching the measured extent are among them.

    python bench/condition_error.py samples/compare/s0/wgan_gp_conditional \
        samples/compare/s0/ddpm_conditional --out bench/results/condition_error.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src_new.evaluation import metrics as M  # noqa: E402
from src_new.evaluation.postprocess import clean  # noqa: E402
from src_new.pipeline.evaluate import condition_targets, load_evaluation  # noqa: E402
from src_new.utils.io import mirror_side, write_json  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402

OFF_PX = 2.0


def error_profile(errors):
    """Signed errors (N,) in px (measured - requested) -> the absolute error's {mean, median, p90,
    p99, share_above_2px}, the share exactly on target and the signed mean (a bias)."""
    signed = np.asarray(errors, np.float64)
    e = np.abs(signed)
    return {"mean": float(e.mean()), "median": float(np.median(e)), "p90": float(np.quantile(e, 0.9)),
            "p99": float(np.quantile(e, 0.99)), f"share_above_{OFF_PX:g}px": float((e > OFF_PX).mean()),
            "share_exact": float((e < 0.5).mean()), "mean_signed": float(signed.mean())}


def profile_folder(folder):
    """One conditional samples folder -> {n, mirror, raw: {column: profile}, cleaned: {...}}."""
    ev = load_evaluation(folder)
    if ev.mode != "conditional" or "conditions" not in ev.arrays:
        raise SystemExit(f"{folder}: needs conditional samples that store their conditions (mode {ev.mode!r})")
    requested, conventions = condition_targets(ev)
    images = ev.arrays.get("images_raw", ev.arrays["images"])      # never a post-processed set
    mirror = mirror_side(ev.train)
    out = {"n": int(len(images)), "mirror": mirror}
    for name, x in (("raw", images), ("cleaned", clean(images, mirror=mirror))):
        measured = M.predict_conditions(M.as_tensor(x), conventions, ev.columns)
        out[name] = {col: error_profile(measured[:, j] - requested[:, j]) for j, col in enumerate(ev.columns)}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folders", nargs="+", help="conditional samples folders (sample.py --mode conditional)")
    p.add_argument("--out", default="bench/results/condition_error.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    out = results_path(p, ROOT / args.out, args.overwrite)
    result = {"provenance": provenance(argv), "folders": {}}
    for folder in args.folders:
        result["folders"][folder] = profile = profile_folder(folder)
        for name in ("raw", "cleaned"):
            print(f"{folder} ({name}): " + "; ".join(
                f"{col} mean {v['mean']:.3f} median {v['median']:.3f} p99 {v['p99']:.2f}"
                for col, v in profile[name].items()), flush=True)
    write_json(result, out)
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
