"""The reach of the WGAN-GP's encoder and generator without the game: train them as an
autoencoder (the reach term alone: BCE of G(E(x, c), c) against the real x, no critic) for a
wall-clock budget per design, and measure the IoU of G(E(x, c), c) against the full test
images as it goes. Writes JSON; one row per design.

    python bench/autoencoder.py --budget 240 --design mean model.encoder_pool=mean \
        --design flatten model.encoder_pool=flatten --out bench/results/autoencoder.json

It separates what the networks can reconstruct in the time from what the adversarial game
costs: a design that reconstructs poorly even here is limited by its networks, not the critic.
Same networks, optimizers (``train.make_optimizers``), batch size and precision as the
config's GAN training; minibatches drawn at random from the train split (seeded); the IoU is
``bench/inversion.py``'s (the live generator: there is no EMA here).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from designs import design_config, design_parser  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.evaluation.metrics import iou_dice  # noqa: E402
from src_new.models.wgan_gp import build_wgan_gp  # noqa: E402
from src_new.models.wgan_gp.losses import reach_loss  # noqa: E402
from src_new.models.wgan_gp.train import make_optimizers  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.precision import autocast  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402


@torch.no_grad()
def reconstruction_iou(model, test, names):
    """{iou: mean over samples and components, iou_<name>: per component} of G(E(x, c), c) vs x."""
    model.eval()
    cond = test.conditions if model.cond_dim else None
    iou, _ = iou_dice(model.generator(model.encoder(test.images_float, None, cond), cond), test.images_float)
    model.train()
    return {"iou": float(iou.mean()), **{f"iou_{n}": float(v) for n, v in zip(names, iou.mean(0))}}


def train_autoencoder(cfg, budget, eval_every, seed, say=print):
    """Train ``cfg``'s encoder and generator by the reach term alone for ``budget`` seconds ->
    list of {seconds, step, iou, iou_<component>} every ``eval_every`` seconds and at the end
    (evaluation time is not counted in the budget)."""
    torch.manual_seed(seed)
    model = build_wgan_gp(cfg)
    opt_g, _, opt_e = make_optimizers(model, cfg["training"])
    sets = build_datasets(cfg, ("train", "test"), verbose=False)
    train, test, names = sets["train"], sets["test"], cfg["data"]["component_dirs"]
    images, conds = train.images_float, (train.conditions if model.cond_dim else None)
    batch, precision = cfg["training"]["batch_size"], cfg["training"]["precision"]
    draw = torch.Generator().manual_seed(seed)
    trace, step, trained, next_eval = [], 0, 0.0, eval_every
    while trained < budget:
        start = time.perf_counter()
        idx = torch.randint(0, len(images), (batch,), generator=draw)
        with autocast(precision, "cpu"):
            loss = reach_loss(model.encoder, model.generator, images[idx],
                              None if conds is None else conds[idx])["reconstruction_loss"]
        opt_g.zero_grad(set_to_none=True)
        opt_e.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
        opt_e.step()
        step += 1
        trained += time.perf_counter() - start
        if trained >= next_eval or trained >= budget:
            trace.append({"seconds": round(trained, 1), "step": step, **reconstruction_iou(model, test, names)})
            say(json.dumps(trace[-1]))
            next_eval += eval_every
    return trace


def main(argv=None):
    p = design_parser(__doc__, "bench/results/autoencoder.json")
    p.add_argument("--budget", type=float, default=240, help="seconds of training per design")
    p.add_argument("--eval_every", type=float, default=60, help="seconds of training between evaluations")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out_path = results_path(p, Path(args.out), args.overwrite)
    torch.set_num_threads(2)
    rows = []
    for name, *overrides in args.design:
        cfg = design_config(args.config, overrides)
        print(f"design {name}: {' '.join(overrides) or 'the config as is'}")
        rows.append({"design": name, "overrides": overrides,
                     "trace": train_autoencoder(cfg, args.budget, args.eval_every, args.seed)})
    write_json({"provenance": provenance(argv), "config": args.config, "budget": args.budget,
                "seed": args.seed, "rows": rows}, out_path)


if __name__ == "__main__":
    main()
