"""The WGAN-GP's sampling options, measured: condition error and distribution figures against
the classifier-free guidance scale for each guidance space (pixels, logits, style), the
truncation psi and the flow prior's temperature, on the checkpoints of a multi-seed design
(bench/seeds.py), one fixed sampling seed.

    python bench/guidance.py --design toy_bf16_400s --scales 1.5 2 3
    python bench/guidance.py --design reach20_400s --truncations 0.9 0.7 --out bench/results/guidance_reach20.json
    python bench/guidance.py --design reach20_400s --scales --flow_temperatures 1 1.5 2 3 \
        --encoder_reference --out bench/results/flow_temperature.json
    python bench/guidance.py --design planes_critic_900s --scales --candidates 2 4 --out bench/results/candidates.json

Every checkpoint samples the whole test split at its own conditions (the README protocol), for
every (space, scale), every truncation psi (``truncation@psi``, unguided: each style pulled
toward its condition's mean, the alternative to guidance) and every flow-prior temperature
(``flow@T``, unguided: z = flow(T u, c), u ~ N(0, I), on checkpoints with a fitted flow; T = 1
is ``--prior flow``, T > 1 spreads the flow's draws) and every number of candidates
(``best_of@k``, unguided: the latent the critic scores highest of k,
``WGANGP.sample(candidates=k)``); ``none@0`` is the plain sampler (z ~ N(0, I)). ``--encoder_reference`` adds ``encoder@test``: z = E(x, c) of each test design x,
decoded at its own condition: the latents a prior fitted to the encoder imitates, so about the
most such a prior can give.
Writes --out (refused when it exists, unless --overwrite): per seed and per setting {fd,
precision, recall, coverage, condition_mae, same_pieces_fraction, residual_spread_median: the
spread of the samples at a given condition over the real one, per geometric feature after a
least-squares fit on the condition (recall_diagnosis.py's), median over the features; 1 = as
varied at one size as the data}, and the mean and sd over
seeds; a setting is better than unguided only where the means differ by more than their
standard errors added (bench/seeds.py's verdict).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ablation import measure, one_per_condition, spread_at_condition  # noqa: E402
from seeds import summarize, verdict  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.evaluation import metrics as M  # noqa: E402
from src_new.models.wgan_gp.flow import require_fitted  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.pipeline.config import CHOICES  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402

FIGURES = {"fd": "lower", "precision": "higher", "recall": "higher", "coverage": "higher",
           "condition_mae": "lower", "same_pieces_fraction": "higher", "residual_spread_median": "nearer 1"}
SAMPLING_SEED = 0


def flow_latents(model, temperature):
    """-> fn(cond (B, k), generator) -> z (B, latent_dim) = flow(T u, c), u ~ N(0, I): the fitted
    flow prior at temperature T (1 = its own samples)."""
    flow = require_fitted(model.flow, f"flow@{temperature:g}")
    return lambda cond, generator: flow(temperature * torch.randn(len(cond), flow.dim, generator=generator), cond)[0]


@torch.no_grad()
def encoder_latents(model, test, batch=256):
    """z = E(x, c) of every test design (N, latent_dim): where the encoder maps the real designs."""
    return torch.cat([model.encoder(test.images_float[i:i + batch], None, test.conditions[i:i + batch])
                      for i in range(0, len(test), batch)])


@torch.no_grad()
def guided_figures(model, cfg, sets, space, scale, truncation_psi=1.0, latents=None, batch=256, candidates=1):
    """FIGURES of one sample per test condition (the figures ``measure`` gives that a checkpoint
    written before one of them existed lacks are left out); z from ``latents`` (one_per_condition's:
    a tensor or a function) when given, else N(0, I)."""
    test = sets["test"]
    gen = torch.Generator().manual_seed(SAMPLING_SEED)
    images = one_per_condition(model, test.conditions, gen, batch, latents, guidance_scale=scale,
                               guidance_space=space, truncation_psi=truncation_psi, candidates=candidates)
    raw = test.raw_conditions.numpy()
    figures, real = measure(images, cfg, sets, raw, seed=SAMPLING_SEED)
    out = {k: figures[k] for k in FIGURES if k in figures}
    # spread at a given condition, samples / real, median over the geometric features
    fake = (M.geometric_features(images) - real.mean) / real.std
    spread = spread_at_condition(fake, real, raw, M.geometric_feature_names(cfg["data"]["component_dirs"]))
    out["residual_spread_median"] = float(np.median(list(spread.values())))
    return out


def summarize_settings(per_seed):
    """{setting: {figure: {mean, sd, n}}} over the seeds."""
    return {setting: summarize([row["settings"][setting] for row in per_seed]) for setting in per_seed[0]["settings"]}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--design", default="toy_bf16_400s", help="bench/seeds.py design name")
    parser.add_argument("--runs", default="outputs/wgan_gp/seeds", help="folder of <design>_s<seed> runs")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--scales", type=float, nargs="*", default=[1.5, 2.0, 3.0],
                        help="guidance scales per space (none: measure only --truncations / --flow_temperatures)")
    parser.add_argument("--spaces", nargs="+", default=list(CHOICES["guidance_space"]),
                        choices=CHOICES["guidance_space"])
    parser.add_argument("--truncations", type=float, nargs="*", default=[],
                        help="truncation psi values in [0, 1) to measure unguided beside the guidance settings")
    parser.add_argument("--flow_temperatures", type=float, nargs="*", default=[],
                        help="flow-prior temperatures T > 0 to measure unguided (checkpoints with a fitted flow)")
    parser.add_argument("--candidates", type=int, nargs="*", default=[],
                        help="numbers of candidates k > 1 to measure unguided (best of k latents by the critic)")
    parser.add_argument("--encoder_reference", action="store_true",
                        help="also decode the encoder's latents of the test designs themselves (encoder@test)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "guidance.json"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = parser.parse_args(argv)
    results_path(parser, Path(args.out), args.overwrite)
    if any(not 0 <= psi < 1 for psi in args.truncations):
        parser.error(f"--truncations must lie in [0, 1) (1 is the plain sampler), got {args.truncations}")
    if any(t <= 0 for t in args.flow_temperatures):
        parser.error(f"--flow_temperatures must be > 0, got {args.flow_temperatures}")
    if any(k < 2 for k in args.candidates):
        parser.error(f"--candidates must be >= 2 (1 is the plain sampler), got {args.candidates}")
    # (label, guidance space, scale, truncation psi, z: None for N(0, I), a flow temperature, or
    # "encoder" for E(x, c) of the test designs, candidates)
    settings = ([("none@0", "pixels", 0.0, 1.0, None, 1)]
                + [(f"{space}@{scale:g}", space, scale, 1.0, None, 1) for space in args.spaces for scale in args.scales]
                + [(f"truncation@{psi:g}", "pixels", 0.0, psi, None, 1) for psi in args.truncations]
                + [(f"flow@{t:g}", "pixels", 0.0, 1.0, t, 1) for t in args.flow_temperatures]
                + [(f"best_of@{k}", "pixels", 0.0, 1.0, None, k) for k in args.candidates]
                + [("encoder@test", "pixels", 0.0, 1.0, "encoder", 1)] * args.encoder_reference)
    per_seed = []
    for seed in args.seeds:
        ckpt = ROOT / args.runs / f"{args.design}_s{seed}" / "checkpoint_latest.pt"
        model, cfg = load_model_from_checkpoint(str(ckpt))
        sets = build_datasets(cfg, ("train", "test"), verbose=False)
        row = {"seed": seed, "checkpoint": str(ckpt.relative_to(ROOT) if ckpt.is_relative_to(ROOT) else ckpt), "settings": {}}
        for label, space, scale, psi, z, k in tqdm(settings, desc=f"seed {seed}"):
            latents = (None if z is None else encoder_latents(model, sets["test"]) if z == "encoder"
                       else flow_latents(model, z))
            row["settings"][label] = guided_figures(model, cfg, sets, space, scale, psi, latents, candidates=k)
        per_seed.append(row)
    summary = summarize_settings(per_seed)
    verdicts = {setting: {k: verdict(summary["none@0"][k], summary[setting][k], better)
                          for k, better in FIGURES.items()} for setting in summary if setting != "none@0"}
    write_json({"provenance": provenance(argv, "cpu", design=args.design, sampling_seed=SAMPLING_SEED,
                                         training_seeds=args.seeds),
                "per_seed": per_seed, "summary": summary, "verdicts_vs_unguided": verdicts}, args.out)
    for setting, figures in summary.items():
        print(f"{setting:12s} " + "  ".join(f"{k} {v['mean']:.3f}±{v['sd']:.3f}" for k, v in figures.items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
