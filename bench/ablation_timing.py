"""Time one training step (n_critic critic steps + one generator step, batch 32) of each
ablation row's design, side by side in one process, and store it in bench/results/ablation.json.

    python bench/ablation_timing.py [--steps 8] [--repeats 3]

Rows alternate their order each repeat; the median over repeats of each row's median step time
is stored as ``seconds_per_generator_step`` (the fresh-minibatch switch changes no compute).
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
from src_new.utils.config import apply_overrides, auto_complete_config, load_config, validate_config  # noqa: E402

PLAN = ["model.style_dim=0", "model.critic_cond=concat", "model.critic_null_condition=false", "model.lambda_ms=0",
        "model.minibatch_std_group=0"]
ROWS = {"A0_plan": PLAN, "A1_fresh": PLAN,
        "A2_jointnull": ["model.style_dim=0", "model.critic_cond=concat", "model.lambda_ms=0"],
        "A3_modulation": ["model.style_dim=128", "model.critic_cond=concat", "model.lambda_ms=0"],
        "A4_projection": ["model.style_dim=128", "model.lambda_ms=0"],
        "A5_msgan": ["model.style_dim=128", "model.lambda_ms=0.2"],
        "A6_mbstd": ["model.style_dim=128", "model.lambda_ms=0.2", "model.minibatch_std_group=4"],
        "B1_nomod_projection": ["model.style_dim=0", "model.lambda_ms=0"]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="bench/results/ablation.json")
    args = p.parse_args()
    torch.set_num_threads(2)
    cfgs = {name: validate_config(auto_complete_config(apply_overrides(load_config("configs/wgan_gp_toy.yaml"), sets),
                                                       verbose=False)) for name, sets in ROWS.items()}
    times = {name: [] for name in ROWS}
    names = list(ROWS)
    for r in range(args.repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(time_generator_step(cfgs[name], args.steps, cfgs[name]["training"]["batch_size"]))
    out = Path(args.out)
    rows = json.loads(out.read_text())
    for row in rows:
        key = next(k for k in ROWS if row["name"].startswith(k.split("_")[0] + "_"))
        row["seconds_per_generator_step"] = statistics.median(times[key])
        row["seconds_per_generator_step_all"] = times[key]
    out.write_text(json.dumps(rows, indent=1))
    for name in names:
        print(f"{name}: {statistics.median(times[name]):.3f} s per generator step ({times[name]})")


if __name__ == "__main__":
    main()
