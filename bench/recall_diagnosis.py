"""What holds the WGAN-GP's recall down: per geometric feature, how much of the real spread at a
given condition the samples keep, and recall / FD / condition error against the latent's
temperature (z ~ N(0, tau^2 I); tau > 1 spreads the samples). Writes a JSON file.

    python bench/recall_diagnosis.py --checkpoint outputs/wgan_gp/quality/checkpoint_latest.pt \
        --out bench/results/recall_diagnosis.json --overwrite

Protocol of bench/ablation.py: one EMA sample per test condition (guidance 0), measured as
evaluate.py measures a samples folder (``ablation.measure``: the real test set with its
geometric features standardized by itself, equal n, k = 3, the condition error through the
conventions fitted on the train split; before, the bounding box).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation import measure, one_per_condition, spread_at_condition  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.evaluation import metrics as M  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.pipeline.evaluate import K  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402


@torch.no_grad()
def samples_at(model, cond, tau, seed=0, batch=256):
    """One EMA sample per (normalized) condition with z ~ N(0, tau^2 I) -> (N, C, H, W) numpy."""
    latents = lambda c, generator: tau * torch.randn(len(c), model.latent_dim, generator=generator)
    return one_per_condition(model, cond, torch.Generator().manual_seed(seed), batch, latents)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--temperatures", default="1.0,1.2,1.4,1.7")
    p.add_argument("--out", default="bench/results/recall_diagnosis.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    out_path = results_path(p, Path(args.out), args.overwrite)
    torch.set_num_threads(2)
    ckpt = load_checkpoint(args.checkpoint)
    model, cfg = load_model_from_checkpoint(args.checkpoint, ckpt=ckpt)
    if not model.cond_dim:
        raise SystemExit("recall_diagnosis.py reads the spread at a given condition: the checkpoint is unconditional")
    sets = build_datasets(cfg, ("train", "test"), verbose=False)
    test = sets["test"]
    names = M.geometric_feature_names(cfg["data"]["component_dirs"])
    raw = test.raw_conditions.numpy()
    rows = []
    for tau in (float(t) for t in args.temperatures.split(",")):
        images = samples_at(model, test.conditions, tau)
        figures, reference = measure(images, cfg, sets, raw)
        row = {"temperature": tau, **figures}
        if tau == 1.0:
            real, radii = reference.geometric, reference.geometric_radii      # standardized by the real set
            fake = (M.geometric_features(images) - reference.mean) / reference.std
            row["residual_spread_ratio"] = spread_at_condition(fake, reference, raw, names)
            # marginals, in standard deviations of the real feature (real is standardized)
            row["mean_shift"] = {n: float(v) for n, v in zip(names, fake.mean(0))}
            row["std_ratio"] = {n: float(v) for n, v in zip(names, fake.std(0))}
            # are the real images no sample comes near (coverage's sense) unusual ones?
            covered = np.asarray(M.pairwise_distances(real, fake)).min(1) < radii
            row["mean_abs_z_missed_vs_covered"] = [float(np.abs(real[~covered]).mean()),
                                                   float(np.abs(real[covered]).mean())]
        rows.append(row)
        print(json.dumps({k: round(v, 3) for k, v in row.items() if isinstance(v, float)}), flush=True)
    spread = next((r["residual_spread_ratio"] for r in rows if "residual_spread_ratio" in r), None)
    if spread:
        print("residual spread ratio (fake / real at a given condition):",
              json.dumps({k: round(v, 2) for k, v in spread.items()}))
    write_json({"provenance": provenance(argv, sampling_seed=0, training_seed=cfg["training"]["seed"],
                                         global_step=ckpt["global_step"]),
                "checkpoint": args.checkpoint, "n": len(test), "k": K, "rows": rows}, out_path)


if __name__ == "__main__":
    main()
