"""Where the budget goes: each model trained for several multiples of a wall-clock budget in one
run, and scored at every multiple, so a user knows whether the ranking holds when they train
longer (issue 27).

    python bench/trajectory.py --budget 600 --multiples 1 2 3            # both toy configs, seed 0

Each model's toy config (``configs/<model>_toy.yaml``) trains for ``--budget`` seconds of wall
clock (then SIGTERM: the trainer saves ``checkpoint_latest.pt`` and stops; neither toy config
has a learning-rate schedule, so a cut run is a finished one), is scored, resumes from that
checkpoint for another ``--budget`` seconds, is scored, and so on up to the largest multiple;
each resume's start-up counts in its budget, as a user's would. Scoring: ``sample.py`` with the
model's defaults (guidance, sampler), one conditional sample per test condition, evaluated as
``evaluate.py --samples`` evaluates a folder. Writes ``--out`` (refused when it exists, unless
``--overwrite``): per model and multiple the training seconds and steps so far and the figures,
with the provenance.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from seeds import TRAIN, run_for, train_command  # noqa: E402
from src_new.pipeline.evaluate import evaluate_samples  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import provenance, results_path  # noqa: E402

FIGURES = ("geometric_fd", "precision", "recall", "coverage", "condition_mae", "same_pieces_fraction")


def score(checkpoint, folder, n, seed):
    """Sample ``n`` conditional designs from ``checkpoint`` with its defaults into ``folder``
    and evaluate them -> {figure: value} (FIGURES) and the seconds per image."""
    subprocess.run([sys.executable, str(ROOT / "src_new" / "scripts" / "sample.py"), "--checkpoint", str(checkpoint),
                    "--mode", "conditional", "--num_samples", str(n), "--batch_sz", "250", "--seed", str(seed),
                    "--out", str(folder), "--overwrite"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    result = evaluate_samples(folder)
    return {**{k: result["metrics"][k] for k in FIGURES if k in result["metrics"]},
            "seconds_per_image": result.get("seconds_per_image")}


def trajectory(model, args):
    """One model's run over the multiples -> [{multiple, train_seconds, steps, **figures}]."""
    run_dir = ROOT / args.runs / f"{model}_s{args.seed}"
    checkpoint = run_dir / "checkpoint_latest.pt"
    fresh = train_command(f"configs/{model}_toy.yaml", run_dir, args.seed, args.set)
    resume = [sys.executable, str(TRAIN), "--resume", str(checkpoint), "--epochs", "100000"]
    rows, seconds = [], 0.0
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    for multiple in range(1, max(args.multiples) + 1):
        cmd = fresh if multiple == 1 else resume
        seconds += run_for(cmd, args.budget, run_dir.parent / f"{run_dir.name}_{multiple}x.log",
                           f"{model} at {multiple}x")
        if multiple not in args.multiples:
            continue
        kept = run_dir / f"checkpoint_{multiple}x.pt"
        shutil.copyfile(checkpoint, kept)
        steps = load_checkpoint(kept)["global_step"]
        figures = score(kept, ROOT / args.samples / f"{model}_{multiple}x", args.n, args.sampling_seed)
        rows.append({"multiple": multiple, "train_seconds": seconds, "steps": steps, **figures})
        print(f"{model} {multiple}x: {steps} steps in {seconds:.0f} s, FD {figures['geometric_fd']:.3f}, "
              f"recall {figures['recall']:.3f}", flush=True)
    return {"commands": [" ".join(fresh), " ".join(resume)], "rows": rows}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["wgan_gp", "ddpm"], choices=["wgan_gp", "ddpm"])
    p.add_argument("--budget", type=float, default=600, help="seconds of training per multiple (wall clock)")
    p.add_argument("--multiples", type=int, nargs="+", default=[1, 2, 3], help="where to score (>= 1)")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--sampling_seed", type=int, default=0)
    p.add_argument("--n", type=int, default=800, help="conditional samples per score (toy: one per test condition)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="config override for every model's first run (tests: a tiny model)")
    p.add_argument("--runs", default="outputs/trajectory")
    p.add_argument("--samples", default="samples/trajectory")
    p.add_argument("--out", default="bench/results/trajectory.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    args = p.parse_args(argv)
    out = results_path(p, ROOT / args.out, args.overwrite)
    if args.budget <= 0 or min(args.multiples) < 1:
        p.error(f"--budget must be > 0 and --multiples >= 1, got {args.budget} and {args.multiples}")
    torch.set_num_threads(2)
    models = {model: trajectory(model, args) for model in args.models}
    write_json({"provenance": provenance(argv, budget_seconds=args.budget, multiples=sorted(args.multiples),
                                         training_seed=args.seed, sampling_seed=args.sampling_seed, n=args.n),
                "models": models}, out)
    print(f"wrote {out}")
    return models


if __name__ == "__main__":
    main()
