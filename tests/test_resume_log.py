"""A run's logs survive kills and rollbacks: on resume the rows (and TensorBoard events) a
killed run wrote after its last checkpoint are dropped, so every step is logged once, and
the resumed values equal those of an uninterrupted run."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from src_new.pipeline.training import trim_csv_log
from src_new.utils.checkpoint import load_checkpoint

from conftest import ROOT, make_cfg, run_script, write_yaml

STEPS_PER_EPOCH = 2      # 32 train samples, n_critic = 2 minibatches of 8 per step
LOSSES = ["critic_loss", "generator_loss", "wasserstein_distance", "gradient_penalty"]
ONE_THREAD = {"OMP_NUM_THREADS": "1"}   # the killed, resumed and uninterrupted runs compute alike


def latest_step(run_dir):
    """(checkpoint's global_step or None, last step in losses.csv or 0)."""
    try:
        step = load_checkpoint(run_dir / "checkpoint_latest.pt")["global_step"]
    except (FileNotFoundError, ValueError):   # not written yet
        step = None
    try:
        logged = pd.read_csv(run_dir / "losses.csv")["step"].max()
    except (FileNotFoundError, pd.errors.EmptyDataError, pd.errors.ParserError, KeyError):   # mid-write
        logged = 0
    return step, 0 if pd.isna(logged) else int(logged)


def kill_between_checkpoints(cfg_path, run_name, run_dir, resume=None, timeout=120):
    """Start train.py and SIGKILL it once losses.csv holds steps beyond checkpoint_latest.pt;
    returns the checkpoint's step (the kill is retried if a checkpoint lands in between)."""
    for _ in range(5):
        args = ["--resume", run_dir / "checkpoint_latest.pt"] if resume else ["--config", cfg_path, "--run_name", run_name]
        proc = subprocess.Popen([sys.executable, str(ROOT / "src_new/scripts/train.py"), *map(str, args)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONUNBUFFERED="1", **ONE_THREAD))
        end = time.time() + timeout
        while time.time() < end and proc.poll() is None:
            step, logged = latest_step(run_dir)
            if step is not None and logged > step:
                break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err
        step, logged = latest_step(run_dir)
        if step is not None and logged > step:
            return step
        resume = True    # a checkpoint landed between the check and the kill: go on and retry
    raise AssertionError("could not kill the run between two checkpoints")


def test_kill_between_checkpoints_then_resume_logs_every_step_once(toy_root, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    # checkpoints every 3 epochs (6 steps): a kill usually lands with steps logged after one
    cfg = make_cfg(toy_root, tmp_path / "out", training={"epochs": 200, "check_every": 3, "eval_every": 1000},
                   logging={"tensorboard": True})
    cfg_path = write_yaml(cfg, tmp_path / "c.yaml")
    run_dir = tmp_path / "out" / "killed"
    step = kill_between_checkpoints(cfg_path, "killed", run_dir)
    assert step % STEPS_PER_EPOCH == 0
    epochs = step // STEPS_PER_EPOCH + 2          # resume, and train past where the kill landed
    run_script("train.py", "--resume", run_dir / "checkpoint_latest.pt", "--epochs", epochs, env=ONE_THREAD)
    total = epochs * STEPS_PER_EPOCH
    log = pd.read_csv(run_dir / "losses.csv")
    assert log["step"].tolist() == list(range(1, total + 1))

    # TensorBoard: the killed run's events after the checkpoint are purged
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    assert [s.step for s in events.Scalars("critic_loss")] == list(range(1, total + 1))

    # the same values as a run never interrupted
    whole = make_cfg(toy_root, tmp_path / "out", training={"epochs": epochs, "check_every": 3, "eval_every": 1000})
    run_script("train.py", "--config", write_yaml(whole, tmp_path / "w.yaml"), "--run_name", "whole", env=ONE_THREAD)
    reference = pd.read_csv(tmp_path / "out" / "whole" / "losses.csv")
    assert np.array_equal(reference[LOSSES].to_numpy(), log[LOSSES].to_numpy())


def test_rollback_logs_the_retrained_steps_once(toy_root, tmp_path):
    from src_new.models.wgan_gp.train import WGANGPTrainer

    cfg = make_cfg(toy_root, tmp_path, training={"epochs": 2, "on_divergence": "rollback"})
    trainer = WGANGPTrainer(cfg, verbose=False)
    original, fired = trainer.model.critic_step, []

    def critic_step(real, cond=None, noise=None):      # NaN once, at step 4 (step 3 is logged)
        out = original(real, cond, noise)
        if trainer.step + 1 == 4 and not fired:
            fired.append(True)
            out["critic_loss"] = out["critic_loss"] * float("nan")
        return out
    trainer.model.critic_step = critic_step
    trainer.run()
    assert trainer.rollbacks == 1
    assert pd.read_csv(trainer.run_dir / "losses.csv")["step"].tolist() == [1, 2, 3, 4]


def test_trim_keeps_rows_up_to_the_step_byte_identical(tmp_path):
    path = tmp_path / "losses.csv"
    rows = ["step,epoch,loss\r\n"] + [f"{s},{(s + 1) // 2},{s / 7:.6g}\r\n" for s in range(1, 9)]
    path.write_bytes(("".join(rows) + "9,5,0.12").encode())          # a row torn by a kill
    assert trim_csv_log(path, 5) == 4
    kept = "".join(rows[:6]).encode()
    assert path.read_bytes() == kept
    assert trim_csv_log(path, 5) == 0 and path.read_bytes() == kept
    assert not list(tmp_path.glob(".*tmp*"))                         # the temp file was renamed
    assert trim_csv_log(tmp_path / "missing.csv", 3) == 0
