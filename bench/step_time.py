"""Seconds per training step of several WGAN-GP designs, side by side in one process: the
trainer's own ``train_step`` (n_critic critic updates, the generator update with every term
the design switches on, EMA, the code-critic and encoder updates) on minibatches of the
training split. Writes JSON; one row per design.

    python bench/step_time.py --design base --design code1 model.encoder_pool=flatten \
        model.lambda_code=1 --out bench/results/step_time.json

The budgeted runs of bench/seeds.py report seconds per step too, but each design runs at its
own time, so a machine that slows down between runs reads as a slower design. Here the designs
alternate round by round (``bench_wgan.Timer.side_by_side``: order reversed every other round,
median over rounds), so they share the machine's state. Every step includes the encoder
update (``bench_wgan.BenchTrainer``), as training does at ``training.encoder_every: 1``.
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_wgan import BenchTrainer, Timer, spread  # noqa: E402
from designs import design_config, design_parser  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.models.wgan_gp import build_wgan_gp  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402


def design_trainer(cfg, train, seed=0):
    """A fresh model of ``cfg`` in a ``BenchTrainer``, set up as training sets it up from the
    train split ``train`` (the condition normalizer and the size term's fitted conventions)."""
    torch.manual_seed(seed)
    trainer = BenchTrainer(cfg, build_wgan_gp(cfg), cfg["training"]["precision"])
    trainer.model.cond_normalizer, trainer.data = train.normalizer, {"train": train}
    if trainer.model.lambda_size > 0:
        trainer.model.size_conventions = trainer.fit_size_conventions()
    return trainer


def step_batches(cfg, train, n=8):
    """The first ``n`` steps' worth of the train split: (real, cond) pairs of n_critic
    minibatches when the config draws fresh critic batches (as training does), else of one."""
    t = cfg["training"]
    per_step = t["batch_size"] * (cfg["model"]["n_critic"] if t["fresh_critic_batches"] else 1)
    cond = train.conditions if train.conditions is not None and train.conditions.shape[1] else None
    return [(train.images_float[i:i + per_step], None if cond is None else cond[i:i + per_step])
            for i in range(0, per_step * n, per_step)]


def one_step(trainer, batches):
    """-> a function running ``trainer.train_step`` on the next of ``batches`` (cycling)."""
    batches = itertools.cycle(batches)
    return lambda: trainer.train_step(*next(batches))


def main(argv=None):
    p = design_parser(__doc__, "bench/results/step_time.json")
    p.add_argument("--repeats", type=int, default=20, help="rounds (each times one step of every design)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    out_path = results_path(p, Path(args.out), args.overwrite)
    torch.set_num_threads(args.threads)
    steps, overrides = {}, {}
    for name, *changes in args.design:
        cfg = design_config(args.config, changes)
        train = build_datasets(cfg, ("train",), verbose=False)["train"]
        steps[name] = one_step(design_trainer(cfg, train), step_batches(cfg, train))
        overrides[name] = changes
    medians, times = Timer(torch.device("cpu")).side_by_side(steps, args.repeats, warmup=2)
    rows = [{"design": name, "overrides": overrides[name], "seconds_per_step": medians[name],
             "spread": spread(times[name])} for name in steps]
    for row in rows:
        print(json.dumps({k: row[k] for k in ("design", "overrides", "seconds_per_step")}))
    write_json({"provenance": provenance(argv), "config": args.config, "repeats": args.repeats,
                "threads": args.threads, "rows": rows}, out_path)


if __name__ == "__main__":
    main()
