"""Model-free inpainting references on the preserved sets of bench/inpaint_curve.py (IoU on the
generated components, the first ``--n`` test samples); writes a JSON file.

    python bench/inpaint_references.py --config configs/wgan_gp_toy.yaml \
        --out bench/results/inpaint_references.json

- ``nearest``: the nearest train sample on the known pixels (k = 1, the baseline evaluate.py
  reports) and the pixelwise majority of the k nearest (k > 1);
- ``posterior`` (only when the data is the built-in synthetic set, i.e. ``make_toy_data.py
  --seed S --n N`` regenerates the stored test images exactly): exact samples of the hidden
  components given the kept ones and the condition, made by redrawing the generator parameters
  that the kept components leave undetermined (the rules in ``HIDDEN``; every draw is checked
  to reproduce the kept pixels and the condition exactly). Their IoU is what a perfect model of
  p(hidden | kept, c) scores; the majority of ``--draws`` of them approximates the best point
  estimate. Analysis only: nothing in the models reads these rules.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from inpaint_curve import PRESERVED  # noqa: E402
from src_new.utils.geometry import measure_dimensions  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.datasets.synthetic import COMPONENTS, PARAM_RANGES, _sample_params, render_sample  # noqa: E402
from src_new.pipeline.evaluate import inpainting_metrics, nearest_train_inpainting  # noqa: E402
from src_new.pipeline.config import auto_complete_config, load_config, validate_config  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.masks import create_mask  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402


def redraw_tread_belt(q, rng):
    """Kept sidewall, carcass, crown: the crown's depth fixes t_tread + t_belt, not the split."""
    s = q["t_tread"] + q["t_belt"]
    q["t_tread"] = rng.uniform(max(PARAM_RANGES["t_tread"][0], s - PARAM_RANGES["t_belt"][1]),
                               min(PARAM_RANGES["t_tread"][1], s - PARAM_RANGES["t_belt"][0]))
    q["t_belt"] = s - q["t_tread"]
    q["belt_frac"] = rng.uniform(*PARAM_RANGES["belt_frac"])


def redraw_crown_side(q, rng):
    """Kept carcass, belt, tread: the crown's width and, unless the carcass rests on it, the
    sidewall's thickness are free."""
    q["crown_frac"] = rng.uniform(*PARAM_RANGES["crown_frac"])
    d_carcass = q["t_tread"] + q["t_belt"] + q["t_crown"]
    if q["t_side"] <= d_carcass:
        q["t_side"] = rng.uniform(PARAM_RANGES["t_side"][0], min(PARAM_RANGES["t_side"][1], d_carcass))


def redraw_all_but_tread(q, rng):
    """Kept tread: every other band and the bead cut are free (draws are kept only when the
    condition matches)."""
    for key in ("bottom_frac", "t_belt", "t_crown", "t_carcass", "t_side", "belt_frac", "crown_frac"):
        q[key] = rng.uniform(*PARAM_RANGES[key])


HIDDEN = dict(zip(PRESERVED, (redraw_tread_belt, redraw_crown_side, redraw_all_but_tread)))


def posterior_draws(params, truth, mask, redraw, draws, rng, max_tries=500):
    """(draws, N, C, H, W) exact posterior samples, and how many fell back to the truth after
    ``max_tries`` rejected redraws (then counted as the truth: an optimistic reference)."""
    out, fallbacks = np.empty((draws,) + truth.shape, np.float32), 0
    for j, q in enumerate(params):
        known, dims = truth[j] * mask[j], measure_dimensions(truth[j])
        for d in range(draws):
            for _ in range(max_tries):
                p = dict(q)
                redraw(p, rng)
                img = render_sample(p, *truth.shape[2:])
                if np.array_equal(img * mask[j], known) and np.array_equal(measure_dimensions(img), dims):
                    break
            else:
                img, fallbacks = truth[j], fallbacks + 1
            out[d, j] = img
    return out, fallbacks


def synthetic_params(cfg, test_truth, seed, n):
    """The generator parameters of the first test samples when the data is ``make_toy_data.py
    --seed seed --n n`` (checked by rendering them), else None."""
    import pandas as pd
    frame = pd.read_csv(cfg["data"]["condition_csv"])
    if list(cfg["data"]["component_dirs"]) != COMPONENTS or len(frame) != n:
        return None
    rng = np.random.default_rng(seed)
    params = [_sample_params(rng) for _ in range(n)]
    test = np.flatnonzero(~frame[cfg["data"]["split_column"]].astype(bool).to_numpy())[: len(test_truth)]
    chosen = [params[i] for i in test]
    same = all(np.array_equal(render_sample(q, *test_truth.shape[2:]), t) for q, t in zip(chosen, test_truth))
    return chosen if same else None


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="configs/wgan_gp_toy.yaml")
    p.add_argument("--n", type=int, default=160, help="the first n test samples (as inpaint_curve.py)")
    p.add_argument("--k", default="1,3,10,30", help="neighbour counts, comma-separated")
    p.add_argument("--draws", type=int, default=16, help="posterior samples per test sample")
    p.add_argument("--synthetic_seed", type=int, default=0, help="make_toy_data.py's --seed for the data")
    p.add_argument("--synthetic_n", type=int, default=4000, help="make_toy_data.py's --n for the data")
    p.add_argument("--out", default="bench/results/inpaint_references.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    out = results_path(p, Path(args.out), args.overwrite)
    cfg = validate_config(auto_complete_config(load_config(args.config), verbose=False))
    names = cfg["data"]["component_dirs"]
    sets = build_datasets(cfg, ("train", "test"), verbose=False)
    truth = sets["test"].images_float[: args.n].numpy()
    train = sets["train"].images_float.numpy()
    params = synthetic_params(cfg, truth, args.synthetic_seed, args.synthetic_n)
    if params is None:
        print("the data is not make_toy_data.py's (or other --synthetic_seed/--synthetic_n): no posterior reference")
    iou = lambda filled, mask: inpainting_metrics(truth * mask + filled * (1 - mask), truth, mask, names)["iou_generated"]
    rows, rng = [], np.random.default_rng(1)
    for keep in PRESERVED:
        mask = create_mask(list(keep), names, len(truth), cfg["model"]["image_size"]).numpy()
        row = {"preserved": list(keep),
               "nearest": {k: iou(nearest_train_inpainting(truth, mask, train, k=k), mask)
                           for k in map(int, args.k.split(","))}}
        if params is not None:
            draws, fallbacks = posterior_draws(params, truth, mask, HIDDEN[keep], args.draws, rng)
            single = [iou(d, mask) for d in draws]
            row["posterior"] = {"sample_iou": float(np.mean(single)), "sample_iou_sd": float(np.std(single)),
                                "majority_iou": iou((draws.mean(0) > 0.5).astype(np.float32), mask),
                                "draws": args.draws, "fallbacks": fallbacks}
        rows.append(row)
        print(json.dumps(row))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json({"provenance": provenance(argv, seeds={"posterior_draws": 1}, config_file=args.config),
                "config": args.config, "n": len(truth), "train_size": len(train), "rows": rows}, out)


if __name__ == "__main__":
    main()
