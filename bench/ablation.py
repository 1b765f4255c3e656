"""WGAN-GP ablation: score checkpoints with one protocol and append a row per run to a JSON file.

    python bench/ablation.py --name "+ modulation" --checkpoint outputs/.../checkpoint_latest.pt \
        --out bench/results/ablation.json

Protocol: one EMA sample per test condition (guidance 0); unconditional samples, as many,
both ``null`` (G(z, null)) and ``marginal`` (G(z, c ~ train conditions)); each set measured as
evaluate.py measures a samples folder of them (``measure``: the same real set, equal n, the
distribution metrics, the condition error through the conventions fitted on the train split),
so a row and evaluate.py agree on the same samples. ``cond_condition_mae`` is the mean over the
columns whose fitted convention holds; the rows already in bench/results/ablation.json (and
seeds.json) measured width / height as the bounding box instead, which differs wherever a
dataset's conditions are not the bounding box.
Within-condition spread: COND x DRAWS samples (DRAWS latents per test condition) vs real train
pairs whose conditions are within 1 px; z-sensitivity: mean per-pixel L1 change of G(z, c)
when z is redrawn, c fixed.
Time per generator step: ``--time_steps`` steps of the run's own config (warm-up excluded,
median), measured here so that every row's time comes from the same quiet machine.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.datasets.multicomponent import ConditionNormalizer  # noqa: E402
from src_new.evaluation import metrics as M  # noqa: E402
from src_new.models.wgan_gp import build_wgan_gp  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.pipeline.evaluate import comparison_sets, condition_targets, evaluation_of, sample_metrics  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402

COND, DRAWS = 100, 8
# beside fd (evaluate.py's geometric_fd); same_pieces_fraction: share of raw samples whose every
# component has the real (median) number of pieces
FIGURES = ("precision", "recall", "density", "coverage", "same_pieces_fraction")


def measure(images, cfg, sets, conditions=None, seed=0):
    """The row's figures of samples (N, C, H, W) in [0, 1], through evaluate.py's steps (a samples
    folder of them evaluated with ``seed`` gives the same values) -> ({fd, precision, recall,
    density, coverage, and condition_mae (px, fitted conventions) when drawn at the raw
    ``conditions`` (N, k)}, the RealSet they were compared with). sets: build_datasets' dict."""
    arrays = {"images": images} if conditions is None else {"images": images, "conditions": conditions}
    ev = evaluation_of(arrays, {"mode": "unconditional" if conditions is None else "conditional"}, cfg, sets,
                       seed=seed)
    rows, real, _ = comparison_sets(ev, inception=False)
    requested, conventions = condition_targets(ev)
    m = sample_metrics(ev, ev.arrays["images"], rows, real, requested, conventions)
    out = {"fd": m["geometric_fd"], **{k: m[k] for k in FIGURES}}
    if conditions is not None and "condition_mae" in m:
        out["condition_mae"] = m["condition_mae"]
    return out, real


def spread_at_condition(fake, reference, conditions, names):
    """Per geometric feature, the spread of the samples left after a least-squares fit on the raw
    ``conditions`` (N, k) over the same for the real set (``metrics.residual_spread_ratio``):
    fake (N, F) features standardized like ``reference`` (measure's RealSet); names: the F
    feature names. The measured width / height are left out: the condition (nearly) fixes them."""
    ratio = M.residual_spread_ratio(reference.geometric, fake, conditions[reference.index], conditions)
    return {n: float(r) for n, r in zip(names, ratio) if n not in M.MEASURED_COLUMNS}


@torch.no_grad()
def one_per_condition(model, conditions, generator, batch=256, latents=None, **sample_kw):
    """One sample of ``model`` per row of ``conditions`` (N, k), drawn in batches with one
    ``generator`` (so the draws follow its state) -> (N, C, H, W) numpy in [0, 1]. latents:
    optional z for each row, a (N, latent_dim) tensor or ``fn(cond (B, k), generator) -> z
    (B, latent_dim)`` (default: the sampler's prior); sample_kw: WGANGP.sample's options
    (guidance, prior, truncation)."""
    def one_batch(i):
        cond = conditions[i:i + batch]
        z = latents[i:i + batch] if torch.is_tensor(latents) else None if latents is None else latents(cond, generator)
        return model.sample(cond=cond, z=z, generator=generator, **sample_kw)
    return torch.cat([one_batch(i) for i in range(0, len(conditions), batch)]).numpy()


@torch.no_grad()
def score(model, cfg, seed=0, sets=None):
    """The ablation protocol's figures of ``model`` (``sets``: build_datasets' train and test splits
    of ``cfg``, built here when not given)."""
    sets = sets or build_datasets(cfg, ("train", "test"), verbose=False)
    train, test = sets["train"], sets["test"]
    real = test.images_float.numpy()
    gen = torch.Generator().manual_seed(seed)
    n = len(test)

    out = {}
    cond = one_per_condition(model, test.conditions, gen)
    out.update({f"cond_{k}": v for k, v in measure(cond, cfg, sets, test.raw_conditions.numpy(), seed)[0].items()})
    for how in ("null", "marginal"):
        unc = np.concatenate([model.sample(batch_size=min(256, n - i), generator=gen, unconditional=how).numpy()
                              for i in range(0, n, 256)])
        out.update({f"uncond_{how}_{k}": v for k, v in measure(unc, cfg, sets, seed=seed)[0].items()})
    # Within-condition spread over z, vs real pairs of nearly equal conditions.
    n_cond = min(COND, n)         # the first COND test conditions (all of a smaller split)
    c = test.conditions[:n_cond].repeat_interleave(DRAWS, 0)
    z = torch.randn(len(c), model.latent_dim, generator=gen)
    groups = model.sample(z=z, cond=c).view(n_cond, DRAWS, *real.shape[1:])
    real_spread = M.real_pair_diversity(train.images_float, train.raw_conditions.numpy(), max_pairs=2000)[0]
    out["within_condition_spread"] = M.within_condition_diversity(groups)
    out["real_near_condition_spread"] = real_spread
    out["within_condition_ratio"] = out["within_condition_spread"] / real_spread
    z2 = torch.randn(len(c), model.latent_dim, generator=gen)
    out["z_sensitivity_l1"] = float((model.sample(z=z2, cond=c) - groups.flatten(0, 1)).abs().mean())
    return out


def time_generator_step(cfg, steps, batch):
    """Median seconds of one full training step (n_critic critic steps on fresh batches + one
    generator step) of a fresh model built from ``cfg``, on random data."""
    torch.manual_seed(0)
    model = build_wgan_gp(cfg)
    if model.lambda_size > 0:   # what training fits on the data; on random data any convention costs the same
        model.cond_normalizer = ConditionNormalizer.identity(model.cond_dim)
        model.size_conventions = [{"measure": "width", "slope": 1.0, "intercept": 0.0}] * model.cond_dim
    opt_g = torch.optim.Adam(model.generator.parameters(), 1e-4, betas=(0.0, 0.9))
    opt_c = torch.optim.Adam(model.critic.parameters(), 1e-4, betas=(0.0, 0.9))
    real = (torch.rand(batch, model.channels, *model.image_size) > 0.9).float()
    cond = torch.randn(batch, model.cond_dim) if model.cond_dim else None
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        for _ in range(model.n_critic):
            opt_c.zero_grad(set_to_none=True)
            model(real, cond=cond, step="critic")["critic_loss"].backward()
            opt_c.step()
        opt_g.zero_grad(set_to_none=True)
        model(real, cond=cond, step="generator")["generator_loss"].backward()
        opt_g.step()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--name", required=True, help="the row's label, e.g. '+ modulation'")
    p.add_argument("--out", default="bench/results/ablation.json")
    p.add_argument("--time_steps", type=int, default=10)
    p.add_argument("--train_seconds", type=float, default=None,
                   help="the run's wall-clock training budget (equal-time rows), recorded in the row")
    args = p.parse_args()
    torch.set_num_threads(2)
    ckpt = load_checkpoint(args.checkpoint)
    model, cfg = load_model_from_checkpoint(args.checkpoint, ckpt=ckpt)
    row = {"name": args.name, "checkpoint": args.checkpoint, "generator_steps": ckpt["global_step"],
           "model": dict(cfg["model"]),     # the whole design (ablation_timing.py rebuilds it)
           "training": {k: cfg["training"][k] for k in ("batch_size", "lr_generator", "lr_critic")},
           "fresh_critic_batches": cfg["training"]["fresh_critic_batches"]}
    if args.train_seconds is not None:
        row["train_seconds"] = args.train_seconds
    row.update(score(model, cfg))
    if args.time_steps:
        row["seconds_per_generator_step"] = time_generator_step(cfg, args.time_steps, cfg["training"]["batch_size"])
    out = Path(args.out)
    rows = json.loads(out.read_text()) if out.exists() else []
    rows = [r for r in rows if r["name"] != args.name] + [row]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
