"""Train one WGAN-GP design with several training seeds at a wall-clock budget, score every
seed with the ablation protocol (bench/ablation.py: one fixed sampling seed), and write the
per-seed figures with their mean and standard deviation.

    python bench/seeds.py --name toy_fp32 --budget 600                       # seeds 0 1 2
    python bench/seeds.py --name toy_bf16 --budget 600 --set training.precision=bf16
    python bench/seeds.py --compare toy_fp32 toy_bf16                         # gain / loss / within noise

Every seed also gets the inversion IoU of G(E(x)) on the full test images (bench/inversion.py)
and, when its flow prior is fitted (``training.flow_every``), the figures of flow-prior samples
and the flow likelihood's AUROC (``flow_figures``).
Each seed trains through the CLI (``train.py``) for ``--budget`` seconds of wall clock, then
gets SIGTERM (the trainer saves a checkpoint at the step it is on and stops), so a faster
design gets more steps in the same time. Results go to ``--out`` (bench/results/seeds.json),
one entry per ``--name`` with its provenance; an existing entry is replaced only with
``--replace`` (rows of the seeds named are measured again; the entry starts anew when the
design differs); ``--rescore NAME`` scores an entry's checkpoints again after the scoring
protocol changed or a flow prior was fitted to them afterwards (``training.phase=flow``; its
epochs are recorded; no training: the steps and times are kept); running new ``--seeds`` of an existing entry with the same config and overrides
adds them to it (so two designs can be run seed by seed, alternately, and share the machine's
drift). A difference counts as a gain or a loss only when the two means differ by more
than their standard errors added (sd / sqrt(n) each); otherwise it is "within noise".
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ablation import measure, one_per_condition, score  # noqa: E402
from inversion import inversion_iou  # noqa: E402
from src_new.datasets.factory import build_datasets  # noqa: E402
from src_new.evaluation.likelihood import batched, likelihood_report  # noqa: E402
from src_new.models.wgan_gp.sample import load_model_from_checkpoint  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import provenance  # noqa: E402

# The figures a verdict is given on, and which way is better.
HEADLINE = {"cond_fd": "lower", "cond_precision": "higher", "cond_recall": "higher", "cond_coverage": "higher",
            "cond_condition_mae": "lower", "cond_same_pieces_fraction": "higher", "uncond_null_fd": "lower",
            "uncond_marginal_fd": "lower", "within_condition_ratio": "higher", "inversion_iou": "higher",
            "seconds_per_step": "lower", "flow_cond_fd": "lower", "flow_cond_recall": "higher",
            "flow_cond_coverage": "higher", "flow_cond_condition_mae": "lower",
            "flow_auroc_shuffled_conditions": "higher"}
SAMPLING_SEED = 0
TRAIN = ROOT / "src_new" / "scripts" / "train.py"


def train_command(config, run_dir, seed, overrides=()):
    """The ``train.py`` command line of a fresh, budget-cut run of ``config`` with ``seed`` into
    ``run_dir`` (no evaluations or checks mid-run: the budget goes to training)."""
    cmd = [sys.executable, str(TRAIN), "--config", str(config),
           "--run_name", run_dir.name, "--overwrite", "--seed", str(seed), "--epochs", "100000",
           "--set", f"paths.output_dir={run_dir.parent}", "--set", "training.eval_every=100000",
           "--set", "training.check_every=100000"]
    return cmd + [x for item in overrides for x in ("--set", item)]


def train_for(config, run_dir, seed, budget, overrides):
    """Train ``config`` with ``seed`` for ``budget`` seconds (then SIGTERM) -> (seconds, command line)."""
    cmd = train_command(config, run_dir, seed, overrides)
    return run_for(cmd, budget, run_dir.parent / f"{run_dir.name}.log", f"seed {seed}"), " ".join(cmd)


def run_for(cmd, budget, log_path, what):
    """Run the training command ``cmd`` for ``budget`` seconds of wall clock, then SIGTERM (the
    trainer saves a checkpoint at the step it is on and exits 130), its output to ``log_path``
    -> seconds it ran. SystemExit naming ``what`` with the log's tail if it failed."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            proc.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=600)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 130):
        raise SystemExit(f"{what}: training failed (exit {proc.returncode}):\n{Path(log_path).read_text()[-2000:]}")
    return seconds


def full_inversion_iou(model, test):
    """IoU of G(E(x, c), c) against the full test images x of the ``test`` split (bench/inversion.py): the reach."""
    truth = test.images_float
    return inversion_iou(model, truth, torch.ones_like(truth), test.conditions if model.cond_dim else None)


def median_step_seconds(run_dir, cfg):
    """Median seconds of one training step (from losses.csv: images per step / images_per_s)."""
    import pandas as pd
    log = pd.read_csv(run_dir / "losses.csv")
    t = cfg["training"]
    per_step = t["batch_size"] * (cfg["model"]["n_critic"] if t["fresh_critic_batches"] else 1)
    return float((per_step / log["images_per_s"]).median())


def summarize(rows):
    """{metric: {mean, sd, n}} over the seeds' rows (sd with n - 1; 0 for one seed); a metric
    that is missing, not a number, or not finite (a degenerate set's NaN) in any row is left out."""
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not isinstance(r[key], bool)
                  and math.isfinite(r[key])]
        if len(values) == len(rows):
            out[key] = {"mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                        "n": len(values)}
    return out


def verdict(base, new, better):
    """'gain' | 'loss' | 'within noise': ``new`` vs ``base`` ({mean, sd, n} each) on a metric where
    ``better`` is 'lower', 'higher' or 'nearer 1' (a ratio to the real data's); a gain or loss needs
    the means apart by more than the two standard errors added."""
    se = base["sd"] / math.sqrt(base["n"]) + new["sd"] / math.sqrt(new["n"])
    if abs(new["mean"] - base["mean"]) <= se:
        return "within noise"
    if better == "nearer 1":
        return "gain" if abs(new["mean"] - 1) < abs(base["mean"] - 1) else "loss"
    return "gain" if (new["mean"] < base["mean"]) == (better == "lower") else "loss"


def compare(entries, base_name, new_name):
    base, new = entries[base_name]["summary"], entries[new_name]["summary"]
    lines = [f"{'metric':24s} {base_name:>20s} {new_name:>20s}  verdict"]
    for key, better in HEADLINE.items():
        if key in base and key in new:
            fmt = lambda s: f"{s['mean']:.3f} ± {s['sd']:.3f}"
            lines.append(f"{key:24s} {fmt(base[key]):>20s} {fmt(new[key]):>20s}  {verdict(base[key], new[key], better)}")
    return "\n".join(lines)


@torch.no_grad()
def flow_figures(model, cfg, sets, batch=256):
    """With a fitted flow prior: ``flow_cond_*``, the conditional figures of samples whose z the
    flow draws (one per test condition, the same sampling seed: compare with the ``cond_*``
    figures of z ~ N(0, I) from the same checkpoint), and the AUROC of the flow likelihood
    log p(E(x) | c) of the test designs against the same designs with shuffled conditions
    (``flow_auroc_shuffled_conditions``) and with one component shifted (``flow_auroc_corrupted``).
    sets: build_datasets' train and test splits of ``cfg``."""
    test = sets["test"]
    images = one_per_condition(model, test.conditions, torch.Generator().manual_seed(SAMPLING_SEED), batch, prior="flow")
    out = {f"flow_cond_{k}": v for k, v in
           measure(images, cfg, sets, test.raw_conditions.numpy(), SAMPLING_SEED)[0].items()}
    report = likelihood_report({"flow": batched(model.log_likelihood, batch)}, test.images_float.numpy(),
                               test.conditions.numpy(), dims=model.latent_dim, seed=SAMPLING_SEED)
    out.update({f"flow_{k}": report["flow"][k] for k in ("auroc_shuffled_conditions", "auroc_corrupted")
                if k in report["flow"]})
    return out


def figures(model, cfg):
    """A seed's quality figures: the ablation protocol's scores and the inversion IoU (and
    ``flow_figures`` when the checkpoint's flow prior is fitted)."""
    sets = build_datasets(cfg, ("train", "test"), verbose=False)
    out = {**score(model, cfg, seed=SAMPLING_SEED, sets=sets), "inversion_iou": full_inversion_iou(model, sets["test"])}
    if model.flow is not None and int(model.flow.fitted):
        out.update(flow_figures(model, cfg, sets))
    return out


def rescore(entry, name, runs, argv):
    """``entry`` with every seed's figures measured again from its checkpoint in ``runs``."""
    torch.set_num_threads(2)
    rows = []
    for row in entry["per_seed"]:
        path = runs / f"{name}_s{row['seed']}" / "checkpoint_latest.pt"
        ckpt = load_checkpoint(path)
        model, cfg = load_model_from_checkpoint(path, ckpt=ckpt)
        kept = {k: row[k] for k in ("seed", "train_seconds", "generator_steps", "seconds_per_step", "precision")}
        phase = ckpt.get("phase") or {}
        if phase.get("name") == "flow":    # a flow fitted afterwards (training.phase=flow): how long
            kept["flow_phase_epochs"] = ckpt["epoch"] - phase["start_epoch"]
        rows.append({**kept, **figures(model, cfg)})
        print(f"seed {row['seed']} rescored", flush=True)
    prov = dict(entry["provenance"], rescored=provenance(argv))
    return {"provenance": prov, "per_seed": rows, "summary": summarize(rows)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", help="the design's label (its entry in --out)")
    p.add_argument("--config", default="configs/wgan_gp_toy.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="what this design changes (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    p.add_argument("--budget", type=float, help="seconds of training per seed (wall clock, start-up included)")
    p.add_argument("--runs", default="outputs/wgan_gp/seeds", help="where the seeds' run folders go")
    p.add_argument("--out", default="bench/results/seeds.json")
    p.add_argument("--replace", action="store_true",
                   help="measure --seeds of an existing entry again (their rows are replaced; another design: anew)")
    p.add_argument("--compare", nargs=2, metavar=("BASE", "NEW"), help="print the verdicts of NEW vs BASE")
    p.add_argument("--rescore", metavar="NAME", help="score an entry's existing checkpoints again with today's "
                                                       "protocol (no training; the training figures are kept)")
    args = p.parse_args(argv)
    out = ROOT / args.out
    entries = json.loads(out.read_text()) if out.exists() else {}
    if args.rescore:
        if args.rescore not in entries:
            p.error(f"'{args.rescore}' not in {out}; entries: {sorted(entries)}")
        entries[args.rescore] = rescore(entries[args.rescore], args.rescore, ROOT / args.runs, argv)
        write_json(entries, out)
        print(f"rescored '{args.rescore}' in {out}")
        return entries
    if args.compare:
        missing = [n for n in args.compare if n not in entries]
        if missing:
            p.error(f"{missing} not in {out}; entries: {sorted(entries)}")
        print(compare(entries, *args.compare))
        return entries
    if not args.name or not args.budget or args.budget <= 0:
        p.error("--name and a positive --budget are needed to run a design (or use --compare BASE NEW)")
    previous = entries.get(args.name)
    if previous is not None:
        prov = previous["provenance"]
        same = (prov["config_file"], prov["overrides"], prov["budget_seconds"]) == (str(args.config), args.overrides,
                                                                                   args.budget)
        done = sorted(set(prov["seeds"]) & set(args.seeds))
        if not same and not args.replace:
            p.error(f"{out} already holds '{args.name}' as another design or budget ({prov['overrides']}, "
                    f"{prov['budget_seconds']} s); use another --name, or --replace to start it anew")
        if done and not args.replace:
            p.error(f"{out} already holds seeds {done} of '{args.name}' ({prov['date']}); pass --replace to "
                    f"measure them again (their rows are replaced), or use other --seeds")
        if not same:          # --replace with another design: the entry starts anew
            previous = None
    torch.set_num_threads(2)
    rows, commands = [], []
    for seed in args.seeds:
        run_dir = ROOT / args.runs / f"{args.name}_s{seed}"
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        seconds, command = train_for(args.config, run_dir, seed, args.budget, args.overrides)
        path = run_dir / "checkpoint_latest.pt"
        ckpt = load_checkpoint(path)
        model, cfg = load_model_from_checkpoint(path, ckpt=ckpt)
        row = {"seed": seed, "train_seconds": seconds, "generator_steps": ckpt["global_step"],
               "seconds_per_step": median_step_seconds(run_dir, cfg),
               "precision": cfg["training"]["precision"], **figures(model, cfg)}
        rows.append(row)
        commands.append(command)
        print(f"seed {seed}: {row['generator_steps']} steps in {seconds:.0f} s, FD {row['cond_fd']:.3f}, "
              f"recall {row['cond_recall']:.3f}, MAE {row['cond_condition_mae']:.3f} px", flush=True)
    if previous is not None:   # more seeds of the same design (--replace: these seeds measured again)
        kept = [i for i, r in enumerate(previous["per_seed"]) if r["seed"] not in args.seeds]
        rows = [previous["per_seed"][i] for i in kept] + rows
        commands = [previous["provenance"]["train_commands"][i] for i in kept] + commands
    entries[args.name] = {
        "provenance": provenance(argv, config_file=str(args.config), overrides=args.overrides,
                                 seeds=[r["seed"] for r in rows], sampling_seed=SAMPLING_SEED,
                                 budget_seconds=args.budget, train_commands=commands, resolved_config=cfg),
        "per_seed": rows, "summary": summarize(rows)}
    write_json(entries, out)
    s = entries[args.name]["summary"]
    print("\n".join(f"{k:24s} {s[k]['mean']:.4f} ± {s[k]['sd']:.4f} (n={s[k]['n']})" for k in HEADLINE if k in s))
    print(f"wrote {out}")
    return entries


if __name__ == "__main__":
    main()
