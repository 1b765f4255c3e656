"""Evaluate a samples folder against the test split, with sanity references beside every
figure (computed by the same code), and compare runs side by side."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..utils.io import load_samples, write_json
from . import metrics as M

MAX_PIXEL_SET = 2000   # pixel-space kNN cost grows with N^2 * 10240


def load_config_for(samples_dir, config=None):
    """The config dict: a YAML path, a checkpoint path, or (default) the manifest's."""
    from ..utils.checkpoint import load_checkpoint
    from ..utils.config import auto_complete_config, load_config, validate_config

    if config is None:
        manifest = Path(samples_dir) / "manifest.json"
        if not manifest.is_file():
            raise FileNotFoundError(f"{manifest} not found; pass --config (YAML or checkpoint)")
        cfg = json.loads(manifest.read_text())["config"]
    elif str(config).endswith(".pt"):
        cfg = load_checkpoint(config)["config"]
    else:
        cfg = load_config(config)
    return validate_config(auto_complete_config(cfg, verbose=False))


class RealSet:
    """What every comparison needs from the real (test) images, computed once."""

    def __init__(self, real, rng):
        self.images = real
        self.geometric = M.geometric_features(real)
        self.pixels = M.pixel_features(real[rng.permutation(len(real))[:MAX_PIXEL_SET]])
        self.pieces = np.median(M.count_pieces(real), axis=0)      # typical piece count per component
        self.diversity = M.mean_pairwise_l1(real)


def distribution_metrics(fake, real, rng):
    """The mode-independent suite: fake (N, C, H, W) vs a RealSet."""
    g_real, g_fake = M.standardize(real.geometric, M.geometric_features(fake))
    kid_mean, kid_std = M.kernel_inception_distance(g_real, g_fake, num_subsets=20)
    precision, recall = M.precision_recall(g_real, g_fake)
    density, coverage = M.density_coverage(g_real, g_fake)
    px_fake = M.pixel_features(fake[rng.permutation(len(fake))[:MAX_PIXEL_SET]])
    px_precision, px_recall = M.precision_recall(real.pixels, px_fake)
    px_density, px_coverage = M.density_coverage(real.pixels, px_fake)
    conn = M.connectivity(fake, real.pieces)
    return {
        "geometric_fd": M.frechet_distance_features(g_real, g_fake), "geometric_kid": kid_mean,
        "geometric_kid_std": kid_std, "precision": precision, "recall": recall, "density": density,
        "coverage": coverage, "pixel_precision": px_precision, "pixel_recall": px_recall,
        "pixel_density": px_density, "pixel_coverage": px_coverage,
        "piece_count_error": float(conn["piece_count_error"].mean()),
        "same_pieces_fraction": conn["same_pieces_fraction"],
        "diversity_ratio": M.diversity_ratio(fake, None, real.diversity), "binarization": M.binarization(fake),
    }


def sanity_sets(train, n, rng):
    """Trivial "generators" built from the train split, each of size n."""
    base = train[rng.choice(len(train), min(n, len(train)), replace=False)]
    shifted = np.zeros_like(base)
    shifted[:, :, 2:] = base[:, :, :-2]                          # 2 pixels down
    shuffled = np.stack([base[rng.permutation(len(base)), c] for c in range(base.shape[1])], axis=1)
    mean = np.repeat(train.mean(0, keepdims=True), len(base), axis=0)
    return {"real_train": base, "shift_2px": shifted, "shuffled_components": shuffled, "mean_image": mean}


def inpainting_metrics(images, truth, mask, names):
    """IoU/Dice/CoM distance on the generated (not preserved) components; a check that the
    preserved ones are unchanged."""
    kept = mask.reshape(*mask.shape[:2], -1).max(2)[0] > 0          # components of sample 0
    free = [c for c in range(len(names)) if not kept[c]]
    iou, dice = M.iou_dice(images, truth)
    com = M.center_of_mass_distance(images, truth)
    out = {"preserved_max_abs_diff": float(np.abs(images - truth)[mask > 0].max()) if (mask > 0).any() else 0.0}
    for c in free:
        out[f"iou_{names[c]}"] = float(iou[:, c].mean())
        out[f"dice_{names[c]}"] = float(dice[:, c].mean())
        valid = ~np.isnan(com[:, c])     # NaN where a component is empty
        out[f"com_dist_{names[c]}"] = float(com[valid, c].mean()) if valid.any() else float("nan")
    out["iou_generated"] = float(iou[:, free].mean()) if free else float("nan")
    out["dice_generated"] = float(dice[:, free].mean()) if free else float("nan")
    return out


def nearest_train_inpainting(truth, mask, train):
    """Baseline that learns nothing: the train sample closest on the known pixels, pasted in."""
    known = mask[0] > 0
    d = M.pairwise_distances(truth[:, known], train[:, known])
    nearest = train[d.argmin(1)]
    return truth * mask + nearest * (1 - mask)


def evaluate_samples(samples_path, cfg=None, max_real=2000, references=True, inception_weights=None, seed=0):
    """Metrics for one samples folder (mode from its manifest) -> dict; writes metrics.json."""
    from ..datasets.multicomponent import build_datasets

    folder = Path(samples_path)
    folder = folder.parent if folder.suffix == ".npz" else folder
    arrays = load_samples(folder)
    manifest_path = folder / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    cfg = cfg if isinstance(cfg, dict) else load_config_for(folder, cfg)
    mode = manifest.get("mode", "unconditional")
    names = cfg["data"]["component_dirs"]
    rng = np.random.default_rng(seed)
    sets = build_datasets(cfg, ("train", "test"), verbose=False)
    train, test = sets["train"].images_float.numpy(), sets["test"].images_float.numpy()
    test_cond = sets["test"].raw_conditions.numpy()
    real = RealSet(test[:max_real], rng)
    fake = arrays["images"]
    result = {"samples": str(folder), "mode": mode, "model": manifest.get("model"), "num_samples": int(len(fake)),
              "num_real": int(len(real.images)), "options": manifest.get("options", {}),
              "seconds_per_image": manifest.get("seconds_per_image")}
    scores = distribution_metrics(fake, real, rng)
    refs = {}
    if references:
        for name, images in sanity_sets(train, len(fake), rng).items():
            refs[name] = distribution_metrics(images, real, rng)
    if mode in ("conditional", "unconditional") and cfg["data"].get("condition_columns"):
        if mode == "conditional" and "conditions" in arrays:
            requested = arrays["conditions"]
        else:   # unconditional: random test conditions = the "no conditioning" level
            requested = test_cond[rng.choice(len(test_cond), len(fake))]
        err = M.condition_error(fake, requested)
        scores.update(condition_mae_width=float(err[0]), condition_mae_height=float(err[1]),
                      condition_mae=float(err.mean()))
        if references:
            shuffled = M.condition_error(test, test_cond[rng.permutation(len(test_cond))])
            exact = M.condition_error(test, test_cond)
            refs.setdefault("real_test_shuffled_conditions", {})["condition_mae"] = float(shuffled.mean())
            refs.setdefault("real_test_own_conditions", {})["condition_mae"] = float(exact.mean())
    if mode == "inpainting":
        truth, mask = arrays["ground_truth"], arrays["mask"]
        scores.update(inpainting_metrics(fake, truth, mask, names))
        if references:
            baseline = nearest_train_inpainting(truth, mask, train)
            refs.setdefault("nearest_train", {}).update(inpainting_metrics(baseline, truth, mask, names))
    if "images_raw" in arrays:   # postprocessed run: report the raw figures too
        result["raw"] = distribution_metrics(arrays["images_raw"], real, rng)
    if inception_weights:
        from .inception import fid_from_weights
        scores["inception_fid"] = fid_from_weights(real.images, fake, inception_weights)
    result["metrics"], result["references"] = scores, refs
    write_json(result, folder / "metrics.json")
    return result


def _fmt(v):
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "-"
    return f"{v:.4g}" if isinstance(v, (float, int)) else str(v)


def format_table(result):
    """Rows = metrics; columns = the samples, then each sanity reference."""
    refs = result.get("references", {})
    columns = ["samples"] + list(refs) + (["raw (before clean)"] if "raw" in result else [])
    keys = list(result["metrics"])
    for ref in refs.values():
        keys += [k for k in ref if k not in keys]
    rows = [["metric"] + columns]
    for key in keys:
        row = [key, _fmt(result["metrics"].get(key))] + [_fmt(refs[r].get(key)) for r in refs]
        if "raw" in result:
            row.append(_fmt(result["raw"].get(key)))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    head = f"{result['mode']} samples: {result['samples']} (n={result['num_samples']}, real test n={result['num_real']})"
    return "\n".join([head] + ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows])


def compare(paths):
    """Side-by-side table of existing metrics.json files (folders or files)."""
    results = []
    for p in paths:
        p = Path(p)
        p = p / "metrics.json" if p.is_dir() else p
        if not p.is_file():
            raise FileNotFoundError(f"{p} not found; run evaluate.py --samples on that folder first")
        results.append(json.loads(p.read_text()))
    keys = []
    for r in results:
        keys += [k for k in r["metrics"] if k not in keys]
    names = [f"{r.get('model') or '?'}:{Path(r['samples']).name}" for r in results]
    rows = [["metric"] + names, ["seconds_per_image"] + [_fmt(r.get("seconds_per_image")) for r in results]]
    rows += [[k] + [_fmt(r["metrics"].get(k)) for r in results] for k in keys]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows)
