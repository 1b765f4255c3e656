"""Time one training step (n_critic critic steps + one generator step) of each ablation row's
design, side by side in one process, and store it in bench/results/ablation.json.

    python bench/ablation_timing.py [--steps 8] [--repeats 3]

A row's design is the toy config with the row's recorded ``model`` values and batch size
(bench/ablation.py stores them), so no row's switches are spelled twice; rows of one design
are timed once. Designs alternate their order each repeat; the median over repeats of each
design's median step time is stored as ``seconds_per_generator_step`` (the fresh-minibatch
switch and the optimiser settings change no compute).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ablation import time_generator_step  # noqa: E402
from src_new.pipeline.config import auto_complete_config, load_config, validate_config  # noqa: E402


def row_config(row, base="configs/wgan_gp_toy.yaml"):
    """The resolved config of an ablation row's design: ``base`` with the row's model values
    and batch size (rows written before ``training`` was recorded ran at the base batch)."""
    cfg = load_config(base)
    cfg["model"].update(row["model"])
    cfg["training"]["batch_size"] = row.get("training", {}).get("batch_size", cfg["training"]["batch_size"])
    return validate_config(auto_complete_config(cfg, verbose=False))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench/results/ablation.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    out = Path(args.out)
    rows = json.loads(out.read_text())
    row_cfgs = [row_config(row) for row in rows]
    designs = [json.dumps([cfg["model"], cfg["training"]["batch_size"]], sort_keys=True) for cfg in row_cfgs]
    cfgs = dict(zip(designs, row_cfgs))
    times = {key: [] for key in cfgs}
    keys = list(cfgs)
    for r in range(args.repeats):
        for key in (keys if r % 2 == 0 else keys[::-1]):
            times[key].append(time_generator_step(cfgs[key], args.steps, cfgs[key]["training"]["batch_size"]))
    for row, key in zip(rows, designs):
        row["seconds_per_generator_step"] = statistics.median(times[key])
        row["seconds_per_generator_step_all"] = times[key]
        print(f"{row['name']}: {row['seconds_per_generator_step']:.3f} s per generator step")
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
