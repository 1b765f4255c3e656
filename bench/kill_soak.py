"""Kill soak: SIGKILL a training run at random instants, resume after each kill, and check
that nothing is lost or repeated.

    python bench/kill_soak.py --kills 50 --out bench/results/kill_soak.json

A tiny WGAN-GP trains on a synthetic dataset (one thread) with a checkpoint every epoch
(``--steps_per_epoch`` steps). Each round starts train.py (the first with --config, then
--resume checkpoint_latest.pt), waits until it has logged a step past its checkpoint, sleeps a
seeded random time in [0, --max_delay) s and SIGKILLs it. After every kill:
  - checkpoint_latest.pt must load and pass the sampler's validation (unloadable otherwise),
  - its step must not be behind the last step logged by more than the checkpoint interval,
    and never behind the previous kill's checkpoint;
a resume fails when the process exits on its own or logs no new step within --resume_timeout.
Then a final resume trains 2 more epochs to completion, and losses.csv (and the TensorBoard
scalars) must hold every step exactly once, in order, with the same losses as one
uninterrupted run of as many epochs (--no_reference skips that run).
Writes the figures and a provenance block to --out; exits 1 when any check fails.
"""
import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from src_new.datasets.synthetic import write_dataset  # noqa: E402
from src_new.models.wgan_gp.sample import check_checkpoint  # noqa: E402
from src_new.utils.checkpoint import load_checkpoint  # noqa: E402
from src_new.utils.io import write_json  # noqa: E402
from src_new.utils.provenance import provenance  # noqa: E402

BATCH, N_CRITIC = 8, 2            # a step draws N_CRITIC minibatches of BATCH
LOSSES = ["critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty"]


def tiny_config(root, out_dir, epochs, check_every, tensorboard):
    """The test suite's tiny WGAN-GP (fp32: exact resumes are compared bit for bit)."""
    return {
        "model": {"type": "wgan_gp", "image_size": [64, 32], "latent_dim_per_component": 2, "dim": 8,
                  "dim_mults": [1, 2, 4], "res_blocks": [1, 1, 1], "bottleneck_res_blocks": 1,
                  "critic_dim": 8, "encoder_dim": 8, "lambda_gp": 10, "n_critic": N_CRITIC},
        "data": {"root_dir": str(root), "condition_csv": str(Path(root) / "dimensions.csv"),
                 "component_dirs": ["group_nc", "group_km", "bt", "fpu", "tpc"],
                 "condition_columns": ["width_px", "height_px"], "prefix_column": "matching",
                 "filename_pattern": "mdbk_{prefix}_{component}.png", "split_column": "train",
                 "normalized": False},
        "training": {"epochs": epochs, "batch_size": BATCH, "num_workers": 0, "ema_decay": 0.99,
                     "ema_update_every": 1, "eval_every": 100000, "check_every": check_every, "seed": 0,
                     "device": "cpu", "encoder_every": 1, "precision": "fp32"},
        "paths": {"output_dir": str(out_dir)},
        "logging": {"tensorboard": tensorboard},
    }


def start(args, log_path):
    """train.py with ``args`` on one thread; output to ``log_path`` (a pipe could fill up)."""
    log = open(log_path, "a")
    proc = subprocess.Popen([sys.executable, str(ROOT / "src_new/scripts/train.py"), *map(str, args)], cwd=ROOT,
                            stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1"))
    log.close()
    return proc


def last_logged_step(csv_path):
    """The step of the last complete row of losses.csv (0 when none)."""
    try:
        lines = csv_path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    for line in reversed(lines[1:]):
        if line.endswith(b"\n"):
            try:
                return int(line.split(b",", 1)[0])
            except ValueError:
                return 0
    return 0


def trains(log_path, csv_path, resumed_from):
    """Whether the run has started training (its "training wgan_gp ..." line is out) and
    logged a step past ``resumed_from``."""
    try:
        started = b"training wgan_gp" in log_path.read_bytes()
    except FileNotFoundError:
        return False
    return started and last_logged_step(csv_path) > resumed_from


def checkpoint_step(path):
    """(global_step, None) of a checkpoint that loads and validates, else (None, the error)."""
    try:
        return check_checkpoint(load_checkpoint(path), path)["global_step"], None
    except (ValueError, FileNotFoundError) as err:
        return None, str(err)


def tensorboard_steps(folder, tag="critic_loss"):
    """The steps of one scalar in the run's TensorBoard events (None without tensorboard)."""
    import logging
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except ImportError:
        return None
    logging.getLogger("tensorboard").setLevel(logging.ERROR)   # it narrates each purge it applies
    events = EventAccumulator(str(folder))
    events.Reload()
    return [s.step for s in events.Scalars(tag)]


def soak(args, work):
    rng = random.Random(args.seed)
    root, out = work / "data", work / "out"
    train_size = args.steps_per_epoch * BATCH * N_CRITIC
    write_dataset(root, n=round(train_size / 0.8), seed=0, test_fraction=0.2)
    tensorboard = _has_tensorboard()
    cfg_path = work / "soak.yaml"
    cfg_path.write_text(yaml.safe_dump(tiny_config(root, out, 100000, 1, tensorboard)))
    run_dir, logs = out / "soak", work / "logs"
    logs.mkdir(exist_ok=True)
    latest, csv_path = run_dir / "checkpoint_latest.pt", run_dir / "losses.csv"
    interval = args.steps_per_epoch                      # steps between two checkpoints
    rounds, unloadable, failed_resumes, decreased, errors = [], 0, 0, 0, []
    previous = 0                                        # the last kill's checkpoint step
    began = time.time()
    for k in range(args.kills):
        first = not latest.exists()
        log_path = logs / f"round_{k:03d}.log"
        proc = start(["--config", cfg_path, "--run_name", "soak"] if first else ["--resume", latest], log_path)
        # wait until it trains: past its start (the logs are trimmed to the checkpoint then), and
        # a step logged beyond the checkpoint it resumed from
        deadline = time.time() + args.resume_timeout
        # (the first run: once it has written its first checkpoint, so that a kill has one to resume)
        while (not (trains(log_path, csv_path, previous) and latest.exists()) and proc.poll() is None
               and time.time() < deadline):
            time.sleep(0.01)
        if proc.poll() is not None or not (trains(log_path, csv_path, previous) and latest.exists()):
            failed_resumes += 1
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] if log_path.exists() else []
            why = f"exited with {proc.returncode}" if proc.poll() is not None else "logged no new step"
            errors.append(f"round {k}: the resume {why}: {tail}")
            proc.kill()
            proc.wait()
            continue
        delay = rng.uniform(0, args.max_delay)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        logged = last_logged_step(csv_path)
        in_save = bool(list(run_dir.glob(f".checkpoint_*.tmp{proc.pid}")))   # killed while writing one
        step, error = checkpoint_step(latest)
        if step is None:
            unloadable += 1
            errors.append(f"round {k}: {error}")
            break                                       # nothing to resume from
        rounds.append({"delay_s": round(delay, 3), "logged_step": logged, "checkpoint_step": step,
                       "back_steps": logged - step, "during_save": in_save})
        if step < previous:
            decreased += 1
            errors.append(f"round {k}: checkpoint step went from {previous} back to {step}")
        previous = step
    soak_s = time.time() - began

    # the last resume trains 2 more epochs to the end
    final_epochs = previous // interval + 2
    proc = start(["--resume", latest, "--epochs", final_epochs], logs / "final.log")
    final_ok = proc.wait(timeout=args.resume_timeout + 60) == 0
    failed_resumes += not final_ok
    log = pd.read_csv(csv_path)
    steps = log["step"].tolist()
    expected = list(range(1, final_epochs * interval + 1))
    result = {
        "kills": len(rounds), "rounds_run": args.kills, "checkpoint_interval_steps": interval,
        "unloadable_checkpoints": unloadable, "failed_resumes": failed_resumes,
        "kills_during_checkpoint_save": sum(r["during_save"] for r in rounds),
        "max_steps_back": max((r["back_steps"] for r in rounds), default=0),
        "step_went_back_beyond_interval": sum(r["back_steps"] > interval for r in rounds),
        "checkpoint_step_decreased": decreased,
        "rows_logged_again": sum(r["back_steps"] for r in rounds),
        "final_steps": len(expected), "losses_csv_rows": len(steps),
        "duplicate_steps": len(steps) - len(set(steps)), "missing_steps": len(set(expected) - set(steps)),
        "losses_csv_every_step_once_in_order": steps == expected,
        "soak_wall_s": round(soak_s, 1), "errors": errors,
    }
    if tensorboard:
        result["tensorboard_every_step_once"] = tensorboard_steps(run_dir / "tensorboard") == expected
    if args.reference:
        ref_path = work / "reference.yaml"
        ref_path.write_text(yaml.safe_dump(tiny_config(root, out, final_epochs, 100000, False)))
        ref = start(["--config", ref_path, "--run_name", "reference"], logs / "reference.log")
        ref.wait()
        reference = pd.read_csv(out / "reference" / "losses.csv")
        result["losses_equal_uninterrupted_run"] = bool(
            len(reference) == len(log) and np.array_equal(reference[LOSSES].to_numpy(), log[LOSSES].to_numpy()))
    result["rounds"] = rounds
    return result


def _has_tensorboard():
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=50, help="SIGKILLs (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill instants (default 0)")
    parser.add_argument("--max_delay", type=float, default=1.2,
                        help="a kill lands uniformly in [0, this) s after the run's first new step (default 1.2)")
    parser.add_argument("--steps_per_epoch", type=int, default=4,
                        help="training steps per epoch = between two checkpoints (default 4)")
    parser.add_argument("--resume_timeout", type=float, default=120,
                        help="a resume that logs no new step within this many seconds failed (default 120)")
    parser.add_argument("--no_reference", dest="reference", action="store_false",
                        help="skip the uninterrupted run the losses are compared to")
    parser.add_argument("--workdir", help="keep the data and run folders here (default: a deleted temp folder)")
    parser.add_argument("--out", help="write the result as JSON here (e.g. bench/results/kill_soak.json)")
    args = parser.parse_args(argv)
    began = time.time()
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        result = soak(args, Path(args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="kill_soak_") as work:
            result = soak(args, Path(work))
    result = {"provenance": provenance(sys.argv if argv is None else [__file__, *argv], "cpu", seed=args.seed,
                                       kills=args.kills, max_delay_s=args.max_delay,
                                       steps_per_epoch=args.steps_per_epoch, trainee_threads=1,
                                       wall_s=round(time.time() - began, 1)), **result}
    shown = {k: v for k, v in result.items() if k not in ("provenance", "rounds")}
    for key, value in shown.items():
        print(f"{key:40s} {value}")
    if args.out:
        write_json(result, args.out)
        print(f"wrote {args.out}")
    ok = (result["unloadable_checkpoints"] == 0 and result["failed_resumes"] == 0
          and result["step_went_back_beyond_interval"] == 0 and result["losses_csv_every_step_once_in_order"]
          and result.get("losses_equal_uninterrupted_run", True) and not result["errors"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
